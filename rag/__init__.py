"""rag: offline-first retrieval-augmented generation with verified citations.

The public Python API, importable from here (see docs/python-api.md):

    import rag

    rag.add(".rag/mine", paths=["docs/"])                     # files and folders, or documents=[rag.Document(...)]
    with rag.open(".rag/mine") as pipeline:                   # defaults from rag.load_config()
        answer = pipeline.ask("How many vacation days do new employees get?")
        # await pipeline.aask(...), async for event in pipeline.astream(...)

The package root stays import-light on purpose: `rag --help` must be instant, so each name below is imported
only when first used (and heavy dependencies such as chromadb and onnxruntime later still, inside functions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.version import __version__

if TYPE_CHECKING:
    from rag.api import add, open
    from rag.config import RagConfig, load_config
    from rag.core.access import Access
    from rag.core.results import AnswerOut
    from rag.core.trace import Trace
    from rag.errors import RagError
    from rag.ingest.report import IngestReport
    from rag.pipeline import RagPipeline, Retrieved, StreamEvent
    from rag.retrieve.filters import Filters
    from rag.retrieve.query import Query
    from rag.types import Answer, Citation, Document, Passage

# public name -> the module that defines it
_EXPORTS = {
    "open": "rag.api", "add": "rag.api",  # not "ingest": that is the rag.ingest package
    "RagConfig": "rag.config", "load_config": "rag.config",
    "Access": "rag.core.access", "AnswerOut": "rag.core.results", "Trace": "rag.core.trace",
    "RagError": "rag.errors", "IngestReport": "rag.ingest.report",
    "RagPipeline": "rag.pipeline", "Retrieved": "rag.pipeline", "StreamEvent": "rag.pipeline",
    "Filters": "rag.retrieve.filters", "Query": "rag.retrieve.query",
    "Answer": "rag.types", "Citation": "rag.types", "Document": "rag.types", "Passage": "rag.types",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562), so `import rag` costs nothing."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
