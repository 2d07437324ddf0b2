"""rag: offline-first retrieval-augmented generation with verified citations.

The package root stays import-light on purpose: `rag --help` must be instant, so heavy
dependencies (chromadb, onnxruntime, openai) are imported inside the functions that use them.
"""

__version__ = "0.1.0"
