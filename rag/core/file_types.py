"""The built-in file types and the extensions read as each: shared by the loaders (rag.ingest.detect), the search
filters' checks (rag.retrieve.filter_check) and the chat UI's uploader. A plug-in loader adds its own type."""

from __future__ import annotations

SUPPORTED_TYPES = ("pdf", "docx", "html", "markdown", "text", "jsonl")
FILE_TYPES = (*SUPPORTED_TYPES, "external")  # every built-in type a source can have; "external": LangChain / LlamaIndex objects

# file extension -> loader type: also the upload types the chat UI offers
EXTENSION_TYPES = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".log": "text",
    ".csv": "text",
    "": "text",
}
