"""The loader contract (`rag.ingest.loaders.Loader`) as a test suite, the span rule first.

The span rule: every page and section of a document is a span of its `text`, and every chunk cut from it
(by the project's chunker) is a span of the same text, `text[chunk.start:chunk.end] == chunk.text`, on the
page and under the heading it says. Citations are checked against these spans, so a loader that breaks
them breaks citations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import ChunkingConfig
from rag.errors import LoadError
from rag.ingest.chunking import Chunker
from rag.ingest.loaders import Loader
from rag.types import Document, LoadedSource, Page, Section

SMALL_CHUNKS = ChunkingConfig(size=48, overlap=8)  # many chunks, so many spans to check


def _spans_in_order(spans: list[Page] | list[Section], text: str) -> None:
    previous_end = 0
    for span in spans:
        assert 0 <= span.start < span.end <= len(text), f"{span} is not a non-empty span of a {len(text)}-character text"
        assert span.start >= previous_end, f"{span} overlaps the span before it"
        previous_end = span.end


class LoaderContract:
    """Provide `loader` (a `Loader`) and `sample` (a file it reads); optionally `unreadable`, a file it must
    refuse with `LoadError` (e.g. a corrupt one), and `strategy` ("heading" or "recursive") for the chunker."""

    strategy = "auto"

    @pytest.fixture
    def loaded(self, loader: Loader, sample: Path) -> LoadedSource:
        return loader.load(sample, sample.as_posix())

    def test_documents_have_text(self, loaded: LoadedSource) -> None:
        assert isinstance(loaded, LoadedSource) and loaded.documents
        assert all(isinstance(d, Document) and d.text.strip() for d in loaded.documents)
        assert isinstance(loaded.file_type, str) and loaded.file_type

    def test_document_ids_are_unique(self, loaded: LoadedSource) -> None:
        ids = [d.doc_id for d in loaded.documents]
        assert len(ids) == len(set(ids)) and all(ids)

    def test_pages_and_sections_are_spans_of_the_text(self, loaded: LoadedSource) -> None:
        for document in loaded.documents:
            _spans_in_order(document.pages, document.text)
            _spans_in_order(document.sections, document.text)
            assert all(section.heading_path for section in document.sections)
            numbers = [page.number for page in document.pages]
            assert numbers == sorted(set(numbers)), "page numbers rise"

    def test_every_chunk_is_a_span_of_its_document(self, loaded: LoadedSource) -> None:
        config = SMALL_CHUNKS.model_copy(update={"strategy": self.strategy})
        chunker = Chunker(config, "contract")
        for document in loaded.documents:
            chunks = chunker.chunk(document, "/contract/source", loaded.file_type)
            assert chunks, f"document {document.doc_id!r} gives no chunks"
            for chunk in chunks:
                assert document.text[chunk.start : chunk.end] == chunk.text
                if document.pages:
                    assert any(p.number == chunk.page and p.start <= chunk.start and chunk.end <= p.end for p in document.pages), (
                        f"chunk {chunk.start}-{chunk.end} is not inside its page {chunk.page}"
                    )
                if chunk.heading_path:
                    assert any(
                        s.heading_path == chunk.heading_path and s.start < chunk.end and chunk.start < s.end for s in document.sections
                    ), f"chunk {chunk.start}-{chunk.end} is not under its heading {chunk.heading_path}"

    def test_an_unreadable_file_is_refused_with_a_reason(self, loader: Loader, request: pytest.FixtureRequest) -> None:
        try:
            path: Path = request.getfixturevalue("unreadable")
        except pytest.FixtureLookupError:
            pytest.skip("no `unreadable` fixture: give one to check how the loader refuses a bad file")
        with pytest.raises(LoadError) as refused:
            loader.load(path, path.as_posix())
        assert str(refused.value).strip()
