"""Ingestion: detect, load, chunk, embed and write documents into the index."""
