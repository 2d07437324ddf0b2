"""Property test of the span rule (issue 18): on any Unicode text, every chunk is an exact slice of its document.

Hypothesis draws text mixing combining marks, right-to-left scripts, lone surrogates, NUL and very long words;
the chunker (sections, pages and the token-aware splitter) must cut spans with `text[start:end] == chunk.text`.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.config import ChunkingConfig
from rag.ingest.chunking import Chunker
from rag.ingest.loaders.builder import TextBuilder
from rag.types import Document

_PIECES = st.one_of(
    st.text(min_size=1, max_size=40),  # any code point, lone surrogates included
    st.sampled_from(["e\u0301", "\u05e9\u05dc\u05d5\u05dd", "\u0627\u0644\u0633\u0644\u0627\u0645", "\u200f", "\u202e", "\x00", "\ud800", "\udfff", "🙂\u200d🙂"]),
    st.integers(min_value=200, max_value=3000).map(lambda n: "w" * n),  # one word longer than a chunk
    st.sampled_from([" ", "\n", "\n\n", "\t", ". "]),
)
_CHUNKER = Chunker(ChunkingConfig(size=64, overlap=8), "property-test")


@st.composite
def documents(draw: st.DrawFn) -> Document:
    """A document built as loaders build them: headings, blocks and pages through `TextBuilder`."""
    builder = TextBuilder()
    for number in range(1, draw(st.integers(1, 3)) + 1):
        builder.start_page(number)
        for _ in range(draw(st.integers(1, 4))):
            if draw(st.booleans()):
                builder.add_heading(draw(st.integers(1, 3)), draw(st.text(min_size=1, max_size=20)))
            builder.add_block("".join(draw(st.lists(_PIECES, min_size=1, max_size=12))))
    return builder.build("doc")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.sampled_from(["text", "markdown"]))
def test_every_chunk_span_slices_the_document_text_exactly(document: Document, file_type: str) -> None:
    chunks = _CHUNKER.chunk(document, "/tmp/doc.txt", file_type)
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= len(document.text)
        assert document.text[chunk.start : chunk.end] == chunk.text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    if document.text.strip():
        assert chunks, "a document with text yields chunks"
