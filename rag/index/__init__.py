"""The index: manifest (SQLite), embeddings, vector store (Chroma) and BM25, kept in agreement."""
