"""The one-line Python API: open an index to ask it questions, add (ingest) files or documents to it.

`add`, not `ingest`: `rag.ingest` is the ingest package.

    import rag

    rag.add(".rag/mine", paths=["handbook.pdf"])
    with rag.open(".rag/mine") as pipeline:
        print(pipeline.ask("How many vacation days do new employees get?").answer)

Both take the configuration from `rag.load_config()` (built-in defaults, ./rag.yaml, RAG_* variables) unless a
`config` is given; `overrides` are `section.key=value` strings as for `--set`.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Sequence
from typing import Any

from rag.config import RagConfig, load_config
from rag.errors import RagError
from rag.core.progress import Progress
from rag.index.store import Index
from rag.ingest.external import ingest_documents
from rag.ingest.pipeline import Ingestor
from rag.ingest.report import IngestReport
from rag.pipeline import RagPipeline

DEFAULT_INDEX = ".rag/index"  # what `rag ingest` and `rag ask` use without --index


def _config(config: RagConfig | None, overrides: Sequence[str]) -> RagConfig:
    if config is not None and overrides:
        raise ValueError("give either config or overrides (use load_config(path, overrides) for both)")
    return config if config is not None else load_config(None, list(overrides))


def open(  # noqa: A001 - `rag.open(...)` reads as the one obvious way in, like `open()` for files
    location: str | os.PathLike[str] = DEFAULT_INDEX, config: RagConfig | None = None, overrides: Sequence[str] = ()
) -> RagPipeline:
    """The question-answering pipeline over the index at `location` (a folder or a backend URL), read-only.

    Use it as a context manager (or call `close()`); it notices what writers commit while it is open."""
    return RagPipeline.open(location, _config(config, overrides))


def add(
    location: str | os.PathLike[str] = DEFAULT_INDEX,
    *,
    paths: Iterable[str | os.PathLike[str]] = (),
    documents: Iterable[Any] = (),
    source: str = "python:documents",
    config: RagConfig | None = None,
    overrides: Sequence[str] = (),
    tags: list[str] | None = None,
    groups: list[str] | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Add or update files and folders (`paths`, incrementally, as `rag ingest` does) and in-memory `documents`
    (`rag.Document`s, or LangChain / LlamaIndex documents) into the index at `location`, creating it if needed.

    `documents` are kept together as the one source `source`: ingesting again under the same name replaces
    them. `tags` label the sources for filters; `groups` say who may read files through the server. Returns
    the report of the paths, with the documents' counts added."""
    _refuse_while_a_child_imports_the_script()
    wanted = [os.fspath(path) for path in paths]
    given = list(documents)
    if not wanted and not given:
        raise ValueError("nothing to ingest: give paths=[...] and/or documents=[...]")
    with Index.open(location, _config(config, overrides), writable=True) as index:
        report = Ingestor(index, progress, tags, groups).ingest(wanted) if wanted else IngestReport()
        if given:
            report = _combined(report, ingest_documents(index, given, source, tags=tags, progress=progress))
    return report


def _refuse_while_a_child_imports_the_script() -> None:
    """Files are read in a child process, which multiprocessing starts by re-running the caller's script. A script
    that calls `rag.add` at its top level would then ingest again from inside that child, against the index its
    parent holds, and the child would die; say why and how to fix it instead. (`_inheriting` is the flag
    multiprocessing itself checks before refusing to start processes from there.)"""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RagError(
            "rag.add() was called while a child process of rag (the file reader) was importing your script",
            'put the call under `if __name__ == "__main__":` (multiprocessing re-runs the main script in each child)',
        )


def _combined(first: IngestReport, second: IngestReport) -> IngestReport:
    """One report for both runs: counts and seconds added, problems listed together."""
    both = IngestReport()
    for name in ("new", "changed", "unchanged", "removed", "chunks_added", "chunks_removed", "texts_embedded", "seconds"):
        setattr(both, name, getattr(first, name) + getattr(second, name))
    for name in ("failed", "skipped", "notes"):
        setattr(both, name, getattr(first, name) + getattr(second, name))
    both.repaired = first.repaired or second.repaired
    return both
