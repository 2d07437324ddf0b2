"""Chunking: token-aware sizes, overlap, stable ids, and heading-aware vs recursive strategies.

How the splitter counts: semantic-text-splitter sizes chunks with the embedding tokenizer's
`encode(text, add_special_tokens=False)`, so `size` bounds the content tokens; [CLS] and [SEP]
add two more when the chunk is embedded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rag.config import ChunkingConfig, load_config
from rag.ingest.chunking import Chunker, splitting_tokenizer
from rag.ingest.loaders.builder import TextBuilder
from rag.ingest.loaders.markdown import markdown_sections
from rag.types import Document, Section

WORDS = (
    "the quick brown fox jumps over the lazy dog while seventeen purple elephants debate photosynthesis "
    "antidisestablishmentarianism Tidewater's 4.2.3 release, $1,450/month, e-mail: ops@lumenharbor.example"
).split()


def word_soup(count: int, newline_every: int = 0) -> str:
    """Long text with no paragraph breaks (optionally single line breaks) and mixed token lengths."""
    parts = []
    for i in range(count):
        parts.append(WORDS[(i * 7) % len(WORDS)])
        if newline_every and i % newline_every == newline_every - 1:
            parts.append("\n")
    return " ".join(parts).replace(" \n ", "\n")


def content_tokens(text: str) -> int:
    return len(splitting_tokenizer().encode(text, add_special_tokens=False).ids)  # type: ignore[attr-defined]


def all_tokens(text: str) -> int:
    return len(splitting_tokenizer().encode(text).ids)  # type: ignore[attr-defined]


def chunk_text(text: str, size: int, overlap: int, file_type: str = "text", strategy: str = "auto"):
    chunker = Chunker(ChunkingConfig(size=size, overlap=overlap, strategy=strategy), "fp")
    return chunker.chunk(Document("doc", text), "source.txt", file_type)


# --- sizes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [16, 64, 200])
def test_no_chunk_exceeds_size_in_content_tokens(size: int) -> None:
    text = word_soup(3000, newline_every=23)
    chunks = chunk_text(text, size, size // 8)
    counts = [content_tokens(c.text) for c in chunks]
    assert max(counts) <= size
    assert max(all_tokens(c.text) for c in chunks) <= size + 2  # [CLS] and [SEP] on top
    # the capacity is used, not just respected: chunks are not tiny
    assert sum(counts) / len(counts) >= size * 0.6


@pytest.mark.parametrize("size", [16, 64, 256])
def test_chunks_of_one_token_words_fill_size_exactly(size: int) -> None:
    # "cat" is one token, so a greedy token-aware splitter reaches the size exactly and never passes it.
    chunks = chunk_text(("cat " * (size * 5)).strip(), size, 0)
    counts = [content_tokens(c.text) for c in chunks]
    assert counts[:-1] == [size] * (len(counts) - 1)
    assert 0 < counts[-1] <= size
    assert all(c.text.split() == ["cat"] * content_tokens(c.text) for c in chunks)


def test_size_bounds_tokens_not_characters() -> None:
    # The same number of characters is far more tokens in digits-and-symbols than in plain words.
    plain = ("elephant " * 600).strip()
    dense = ("8#3$1%9^2&" * 540)[: len(plain)]
    plain_chunks = chunk_text(plain, 64, 0)
    dense_chunks = chunk_text(dense, 64, 0)
    assert max(content_tokens(c.text) for c in dense_chunks) <= 64
    assert len(dense_chunks) > 2 * len(plain_chunks)


def test_default_chunks_fit_the_embedding_window() -> None:
    config = load_config(None, [])
    chunker = Chunker(config.chunking, "fp")
    chunks = chunker.chunk(Document("doc", ("cat " * 3000).strip()), "s", "text")  # "cat" is one token
    assert max(all_tokens(c.text) for c in chunks) <= config.embedding.max_tokens


# --- overlap -------------------------------------------------------------------------------
def test_consecutive_chunks_of_a_long_paragraphless_text_overlap() -> None:
    text = word_soup(2500)
    assert "\n" not in text
    chunks = chunk_text(text, 64, 16)
    assert len(chunks) > 10
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start < a.end < b.end, "consecutive chunks must share text and move forward"
        assert 1 <= content_tokens(text[b.start : a.end]) <= 16 + 1


def test_zero_overlap_means_no_shared_text() -> None:
    text = word_soup(2500)
    chunks = chunk_text(text, 64, 0)
    assert len(chunks) > 10
    for a, b in zip(chunks, chunks[1:]):
        assert a.end <= b.start


# --- ids -----------------------------------------------------------------------------------
DOC_TEXT = "\n\n".join(f"Paragraph {n} is about topic number {n} and says a few more words." for n in range(30))


def _ids(fingerprint: str, source: str = "a.txt", text: str = DOC_TEXT) -> list[str]:
    chunker = Chunker(ChunkingConfig(size=64, overlap=8), fingerprint)
    return [c.chunk_id for c in chunker.chunk(Document("doc", text), source, "text")]


def test_chunk_ids_are_deterministic_and_unique() -> None:
    first, second = _ids("fp-1"), _ids("fp-1")
    assert len(first) > 3
    assert first == second
    assert len(set(first)) == len(first)


def test_chunk_ids_are_the_same_in_another_process() -> None:
    code = (
        "import json\n"
        "from rag.config import ChunkingConfig\n"
        "from rag.ingest.chunking import Chunker\n"
        "from rag.types import Document\n"
        f"text = {DOC_TEXT!r}\n"
        "chunks = Chunker(ChunkingConfig(size=64, overlap=8), 'fp-1').chunk(Document('doc', text), 'a.txt', 'text')\n"
        "print(json.dumps([c.chunk_id for c in chunks]))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == _ids("fp-1")


def test_chunk_ids_change_with_fingerprint_and_source() -> None:
    base = _ids("fp-1")
    assert not set(base) & set(_ids("fp-2"))
    assert not set(base) & set(_ids("fp-1", source="b.txt"))


def test_appending_text_keeps_the_ids_of_unchanged_chunks() -> None:
    before = _ids("fp-1")
    after = _ids("fp-1", text=DOC_TEXT + "\n\nA closing paragraph added later.")
    assert after[: len(before) - 1] == before[:-1]
    assert after != before


# --- strategies ----------------------------------------------------------------------------
SECTIONED_MD = "# Guide\n\nIntro words.\n\n" + "".join(
    f"## Part {n}\n\nShort body {n} here.\n\n### Detail {n}\n\nDetail text {n}.\n\n" for n in range(1, 9)
)


def _markdown_document() -> Document:
    sections, title = markdown_sections(SECTIONED_MD)
    assert len(sections) == 17
    return Document("guide.md", SECTIONED_MD, title, sections)


def _builder_document() -> Document:
    builder = TextBuilder()
    builder.add_heading(1, "Policy")
    builder.add_block("Opening words.")
    for n in range(1, 8):
        builder.add_heading(2, f"Rule {n}")
        builder.add_block(f"Rule {n} says a short thing.")
    return builder.build("policy.docx")


def _holding_section(document: Document, chunk) -> list:
    return [s for s in document.sections if s.start <= chunk.start and chunk.end <= s.end]


@pytest.mark.parametrize("make, file_type", [(_markdown_document, "markdown"), (_builder_document, "docx")])
def test_recursive_strategy_ignores_headings(make, file_type: str) -> None:
    document = make()
    chunker = Chunker(ChunkingConfig(size=128, overlap=0, strategy="recursive"), "fp")
    chunks = chunker.chunk(document, "src", file_type)
    assert all(c.heading_path == () for c in chunks)
    assert any(not _holding_section(document, c) for c in chunks), "tiny sections should be merged"
    assert len(chunks) < len(document.sections)


@pytest.mark.parametrize("strategy", ["heading", "auto"])
@pytest.mark.parametrize("make, file_type", [(_markdown_document, "markdown"), (_builder_document, "docx")])
def test_heading_strategies_never_cross_a_section_boundary(make, file_type: str, strategy: str) -> None:
    document = make()
    chunker = Chunker(ChunkingConfig(size=128, overlap=0, strategy=strategy), "fp")
    chunks = chunker.chunk(document, "src", file_type)
    assert len(chunks) >= len(document.sections)
    for c in chunks:
        holding = _holding_section(document, c)
        assert holding, f"chunk {c.text!r} crosses a section boundary"
        assert c.heading_path == holding[0].heading_path
    if file_type == "markdown":
        detail = [c for c in chunks if "Detail text 3." in c.text]
        assert [c.heading_path for c in detail] == [("Guide", "Part 3", "Detail 3")]


def test_auto_without_headings_is_plain_recursive() -> None:
    text = word_soup(800, newline_every=30)
    auto = chunk_text(text, 64, 8, strategy="auto")
    recursive = chunk_text(text, 64, 8, strategy="recursive")
    assert [(c.start, c.end) for c in auto] == [(c.start, c.end) for c in recursive]


def test_chunks_never_cross_pages_and_sections_together() -> None:
    builder = TextBuilder()
    builder.start_page(1)
    builder.add_heading(1, "Alpha")
    builder.add_block("Alpha words on page one. " * 3)
    builder.start_page(2)
    builder.add_block("Still alpha, now on page two. " * 3)
    builder.add_heading(1, "Beta")
    builder.add_block("Beta words on page two. " * 3)
    document = builder.build("doc.pdf")
    chunker = Chunker(ChunkingConfig(size=256, overlap=0), "fp")
    chunks = chunker.chunk(document, "doc.pdf", "pdf")
    places = [(c.page, c.heading_path) for c in chunks]
    assert places == [(1, ("Alpha",)), (2, ("Alpha",)), (2, ("Beta",))]
    for c in chunks:
        assert document.text[c.start : c.end] == c.text


def test_whitespace_document_gives_no_chunks() -> None:
    assert chunk_text("   \n\n\t ", 64, 8) == []


def test_heading_stays_with_the_first_chunk_of_its_section() -> None:
    from rag.ingest.loaders.markdown import markdown_sections

    body = " ".join(f"Sentence number {i} explains one more detail of the leave policy." for i in range(60))
    text = f"# Leave policy\n\n{body}\n"
    sections, _ = markdown_sections(text)
    document = Document("doc", text, sections=sections)
    chunks = Chunker(ChunkingConfig(size=64, overlap=8), "fp").chunk(document, "s", "markdown")
    assert len(chunks) > 2
    assert chunks[0].start == 0 and chunks[0].text.startswith("# Leave policy\n\nSentence number 0")
    assert all(c.text.strip() != "# Leave policy" for c in chunks)
    assert max(content_tokens(c.text) for c in chunks) <= 64


def test_a_heading_directly_followed_by_a_subheading_is_not_a_chunk_of_its_own() -> None:
    text = "# Beta guide\n\n## Setup\n\nInstall the agent and run it.\n\n## Usage\n\nCall the API.\n"
    sections, _ = markdown_sections(text)
    chunks = Chunker(ChunkingConfig(size=64, overlap=8), "fp").chunk(Document("doc", text, sections=sections), "s", "markdown")
    assert all(c.text.strip() not in ("# Beta guide", "## Setup", "## Usage") for c in chunks)
    assert chunks[0].start == 0 and chunks[0].heading_path == ("Beta guide", "Setup")
    assert all(text[c.start : c.end] == c.text for c in chunks)


@pytest.mark.parametrize("size, overlap", [(128, 16), (24, 4)])
def test_chunking_many_documents_at_once_gives_each_its_own_chunks(size: int, overlap: int) -> None:
    """`chunk_all` batches the splitting over every segment of a file's records (for speed on many cores); each
    document's chunks must be exactly those it gets alone, ordinals restarting per document."""
    chunker = Chunker(ChunkingConfig(size=size, overlap=overlap), "fp")
    documents = [_markdown_document(), Document("soup", word_soup(400, newline_every=25)), _builder_document()]
    titled = "A title line\n\n" + word_soup(300)  # as a JSON Lines record: the title heads its one section
    documents.append(Document("titled", titled, "A title line", [Section(0, len(titled), ("A title line",))]))
    alone = [chunk for document in documents for chunk in Chunker(ChunkingConfig(size=size, overlap=overlap), "fp").chunk(document, "src", "markdown")]
    together = chunker.chunk_all(documents, "src", "markdown")
    assert together == alone
    assert [c.ordinal for c in together if c.doc_id == "soup"] == list(range(sum(c.doc_id == "soup" for c in alone)))
