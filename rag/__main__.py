"""`python -m rag` is the same as the `rag` command."""

from rag.cli.main import run

run()
