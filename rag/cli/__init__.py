"""The `rag` command line: a thin layer over the library."""
