"""Retrieval: filters, dense and BM25 retrievers, fusion, query rewriting, reranking, context assembly."""
