"""Context assembly: ranked chunks -> numbered passages that are exact slices of the stored document text.

The index is built from a few small files with tiny chunks (32 tokens, 8 overlapping), so every
document has many overlapping chunks; ranked lists are made by hand from chunks read back from
the manifest, so each test controls exactly which chunks are scored and how.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import ContextConfig
from rag.index.manifest import Manifest
from rag.index.store import Index
from rag.ingest.chunking import splitting_tokenizer
from rag.ingest.pipeline import Ingestor
from rag.retrieve.context import ContextAssembler
from rag.types import Chunk, Passage, ScoredChunk
from tests.helpers import fake_endpoint_config
from tests.fake_openai import FakeOpenAI

TOPICS = ["travel", "expenses", "parking", "security", "holidays", "laptops", "printing", "visitors"]


def _prose(name: str, paragraphs: int) -> str:
    return "\n\n".join(
        f"Paragraph {i} of the {name} notes explains the {TOPICS[i % len(TOPICS)]} rule in plain words. "
        f"Every employee should read rule {i} carefully before asking the office manager about it. "
        f"The rule was last reviewed in spring and applies to all teams."
        for i in range(paragraphs)
    )


def _run_on(words: int) -> str:
    """One endless sentence: the splitter must cut between words, so consecutive chunks overlap."""
    return " ".join(f"{TOPICS[i % len(TOPICS)]} item {i}" for i in range(words // 3))


def _config(base_url: str):
    return fake_endpoint_config(base_url, "chunking.size=32", "chunking.overlap=8")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("context")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "alpha.txt").write_text(_prose("alpha", 12), encoding="utf-8")
    (corpus / "gamma.txt").write_text(_prose("gamma", 3), encoding="utf-8")
    (corpus / "delta.txt").write_text(_run_on(240), encoding="utf-8")
    (corpus / "epsilon.txt").write_text(_prose("epsilon", 4).replace("\n\n", "\n\n\n\n"), encoding="utf-8")  # wide gaps
    (corpus / "beta.md").write_text(
        "# Beta guide\n\n## Setup\n\n" + _prose("setup", 3) + "\n\n## Usage\n\n" + _prose("usage", 3) + "\n",
        encoding="utf-8",
    )
    with FakeOpenAI() as server:  # embeddings are only needed while ingesting
        config = _config(server.base_url)
        with Index.open(root / "index", config, writable=True) as index:
            report = Ingestor(index).ingest([str(corpus)])
            assert report.new == 5 and not report.failed
    opened = Index.open(root / "index", config)
    yield opened.manifest
    opened.close()


@pytest.fixture(scope="module")
def count_tokens():
    tokenizer = splitting_tokenizer()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)  # what RagPipeline.assembler uses


def chunks_of(manifest: Manifest, name: str) -> list[Chunk]:
    path = next(r.path for r in manifest.sources() if r.path.endswith("/" + name))
    chunks = manifest.chunks_by_id(sorted(manifest.chunk_ids_of(path)))
    return sorted(chunks, key=lambda c: c.ordinal)


def scored(chunk: Chunk, score: float) -> ScoredChunk:
    return ScoredChunk(chunk, score, source_display=Path(chunk.source).name)


def assemble(manifest: Manifest, count_tokens, ranked: list[ScoredChunk], **settings) -> tuple[list[Passage], dict]:
    return ContextAssembler(manifest, ContextConfig(**settings), count_tokens).assemble(ranked)


def assert_exact(manifest: Manifest, passage: Passage) -> str:
    """The passage is document.text[start:end] of its own document; returns the document text."""
    document = manifest.document(passage.source_key, passage.doc_id)
    assert document is not None
    assert passage.text == document.text[passage.start : passage.end]
    assert passage.text.strip()
    return document.text


def test_corpus_has_many_adjacent_or_overlapping_chunks(manifest: Manifest) -> None:
    alpha, delta = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "delta.txt")
    assert len(alpha) >= 12 and len(chunks_of(manifest, "gamma.txt")) >= 3 and len(chunks_of(manifest, "beta.md")) >= 4
    assert [c.ordinal for c in alpha] == list(range(len(alpha)))
    # prose is cut at sentence ends: consecutive chunks are separated by a space or a blank line
    assert all(a.end < b.start <= a.end + 2 for a, b in zip(alpha, alpha[1:]))
    # a run-on text is cut between words with chunking.overlap=8: consecutive chunks overlap
    assert len(delta) >= 5 and all(b.start < a.end for a, b in zip(delta, delta[1:]))


def test_overlapping_chunks_of_one_document_merge_into_one_exact_passage(manifest: Manifest, count_tokens) -> None:
    c0, c1, c2 = chunks_of(manifest, "delta.txt")[:3]
    passages, _ = assemble(manifest, count_tokens, [scored(c1, 0.2), scored(c0, 0.9), scored(c2, 0.5)])
    assert len(passages) == 1
    passage = passages[0]
    assert (passage.start, passage.end) == (c0.start, c2.end)
    assert passage.chunk_ids == [c0.chunk_id, c1.chunk_id, c2.chunk_id]
    assert passage.score == 0.9 and passage.number == 1
    assert passage.source_key == c0.source and passage.doc_id == c0.doc_id
    assert_exact(manifest, passage)


def test_markdown_chunks_merge_into_an_exact_slice(manifest: Manifest, count_tokens) -> None:
    beta = chunks_of(manifest, "beta.md")
    assert beta[0].end < beta[1].start <= beta[0].end + 2 and beta[1].end < beta[2].start <= beta[1].end + 2
    passages, _ = assemble(manifest, count_tokens, [scored(beta[0], 0.5), scored(beta[1], 0.7), scored(beta[2], 0.6)])
    assert len(passages) == 1 and (passages[0].start, passages[0].end) == (beta[0].start, beta[2].end)
    assert_exact(manifest, passages[0])


def test_adjacent_chunks_of_one_document_merge(manifest: Manifest, count_tokens) -> None:
    c0, c1, c2 = chunks_of(manifest, "alpha.txt")[:3]
    assert c0.end + 1 == c1.start and c1.end + 2 == c2.start  # a space, then a blank line between them
    passages, _ = assemble(manifest, count_tokens, [scored(c2, 0.4), scored(c0, 0.3), scored(c1, 0.2)])
    assert len(passages) == 1
    assert (passages[0].start, passages[0].end) == (c0.start, c2.end)
    assert passages[0].chunk_ids == [c0.chunk_id, c1.chunk_id, c2.chunk_id] and passages[0].score == 0.4
    assert_exact(manifest, passages[0])


def test_spans_three_characters_apart_are_not_adjacent(manifest: Manifest, count_tokens) -> None:
    alpha = chunks_of(manifest, "alpha.txt")
    document = manifest.document(alpha[0].source, alpha[0].doc_id)
    assert document is not None

    def span(ident: str, start: int, end: int) -> Chunk:
        return Chunk(ident, alpha[0].source, alpha[0].doc_id, 0, start, end, document.text[start:end])

    first = span("s1", 0, alpha[1].end)
    gap2 = span("s2", alpha[1].end + 2, alpha[1].end + 40)
    gap3 = span("s3", alpha[1].end + 3, alpha[1].end + 40)
    passages, _ = assemble(manifest, count_tokens, [scored(first, 0.9), scored(gap2, 0.8)])
    assert [(p.start, p.end) for p in passages] == [(0, alpha[1].end + 40)]
    passages, _ = assemble(manifest, count_tokens, [scored(first, 0.9), scored(gap3, 0.8)])
    assert [(p.start, p.end) for p in passages] == [(0, alpha[1].end), (alpha[1].end + 3, alpha[1].end + 40)]
    for passage in passages:
        assert_exact(manifest, passage)
    inside = span("s4", 10, 40)  # contained in `first`: the span does not shrink
    passages, _ = assemble(manifest, count_tokens, [scored(first, 0.9), scored(inside, 0.95)])
    assert [(p.start, p.end, p.score) for p in passages] == [(0, alpha[1].end, 0.95)]


def test_distant_chunks_of_one_document_stay_separate(manifest: Manifest, count_tokens) -> None:
    alpha = chunks_of(manifest, "alpha.txt")
    assert alpha[5].start > alpha[0].end + 2
    passages, _ = assemble(manifest, count_tokens, [scored(alpha[0], 0.9), scored(alpha[5], 0.8)])
    assert [(p.start, p.end) for p in passages] == [(alpha[0].start, alpha[0].end), (alpha[5].start, alpha[5].end)]
    for passage in passages:
        assert_exact(manifest, passage)


def test_chunks_of_different_documents_never_merge(manifest: Manifest, count_tokens) -> None:
    alpha, gamma = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "gamma.txt")
    assert alpha[0].start == gamma[0].start == 0  # same offsets, different documents
    passages, _ = assemble(manifest, count_tokens, [scored(alpha[0], 0.9), scored(gamma[0], 0.8), scored(alpha[1], 0.1)])
    assert len(passages) == 2
    assert [p.source_key for p in passages] == [alpha[0].source, gamma[0].source]
    assert passages[0].chunk_ids == [alpha[0].chunk_id, alpha[1].chunk_id]
    assert passages[1].chunk_ids == [gamma[0].chunk_id]
    texts = [assert_exact(manifest, p) for p in passages]
    assert texts[0] != texts[1]
    assert "gamma" in passages[1].text and "gamma" not in passages[0].text


@pytest.mark.parametrize("neighbours", [0, 1, 2])
def test_neighbours_extend_the_passage(manifest: Manifest, count_tokens, neighbours: int) -> None:
    alpha = chunks_of(manifest, "alpha.txt")
    passages, _ = assemble(manifest, count_tokens, [scored(alpha[5], 0.8)], neighbours=neighbours, max_tokens=1500)
    assert len(passages) == 1
    passage = passages[0]
    expected = alpha[5 - neighbours : 5 + neighbours + 1]
    assert (passage.start, passage.end) == (expected[0].start, expected[-1].end)
    assert passage.chunk_ids == [c.chunk_id for c in expected]
    assert passage.score == 0.8
    assert_exact(manifest, passage)


def test_neighbours_stop_at_the_document_edges(manifest: Manifest, count_tokens) -> None:
    alpha = chunks_of(manifest, "alpha.txt")
    passages, _ = assemble(manifest, count_tokens, [scored(alpha[0], 0.9), scored(alpha[-1], 0.5)], neighbours=1, max_tokens=1500)
    assert [(p.start, p.end) for p in passages] == [(alpha[0].start, alpha[1].end), (alpha[-2].start, alpha[-1].end)]
    for passage in passages:
        assert_exact(manifest, passage)


def test_neighbours_alone_never_create_passages(manifest: Manifest, count_tokens) -> None:
    alpha = chunks_of(manifest, "alpha.txt")
    ranked = [scored(alpha[2], 1.0), scored(alpha[9], 0.1)]  # alpha[9] is cut by min_relative_score
    passages, trace = assemble(manifest, count_tokens, ranked, neighbours=1, min_relative_score=0.5, max_tokens=1500)
    assert trace.cut_by_relevance == 1
    assert len(passages) == 1
    assert passages[0].chunk_ids == [alpha[1].chunk_id, alpha[2].chunk_id, alpha[3].chunk_id]
    included = {i for p in passages for i in p.chunk_ids}
    assert not included & {alpha[8].chunk_id, alpha[9].chunk_id, alpha[10].chunk_id}


def test_a_neighbour_that_does_not_touch_its_chunk_is_left_out(manifest: Manifest, count_tokens) -> None:
    epsilon = chunks_of(manifest, "epsilon.txt")
    # paragraphs are four newlines apart: chunk 2 starts a paragraph, chunk 1 ends the one before
    assert epsilon[2].start - epsilon[1].end == 4 and epsilon[3].start - epsilon[2].end <= 2
    passages, _ = assemble(manifest, count_tokens, [scored(epsilon[2], 0.7)], neighbours=1, max_tokens=1500)
    assert len(passages) == 1  # chunk 1 is a neighbour, but alone it makes no passage
    assert passages[0].chunk_ids == [epsilon[2].chunk_id, epsilon[3].chunk_id]
    assert (passages[0].start, passages[0].end) == (epsilon[2].start, epsilon[3].end)
    assert_exact(manifest, passages[0])


def test_min_relative_score_cuts_weak_chunks(manifest: Manifest, count_tokens) -> None:
    alpha, gamma, beta = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "gamma.txt"), chunks_of(manifest, "beta.md")
    ranked = [scored(alpha[0], 1.0), scored(beta[0], 0.6), scored(gamma[0], 0.4)]
    passages, trace = assemble(manifest, count_tokens, ranked, min_relative_score=0.5, max_tokens=1500)
    assert [p.chunk_ids for p in passages] == [[alpha[0].chunk_id], [beta[0].chunk_id]]
    assert trace.cut_by_relevance == 1
    passages, trace = assemble(manifest, count_tokens, ranked, min_relative_score=0.0, max_tokens=1500)
    assert len(passages) == 3 and trace.cut_by_relevance == 0


def test_token_budget_is_respected(manifest: Manifest, count_tokens) -> None:
    alpha, gamma, beta = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "gamma.txt"), chunks_of(manifest, "beta.md")
    ranked = [scored(alpha[0], 0.9), scored(alpha[6], 0.8), scored(alpha[11], 0.7), scored(gamma[1], 0.6), scored(beta[3], 0.5)]
    unlimited, _ = assemble(manifest, count_tokens, ranked, max_tokens=1500)
    assert len(unlimited) == 5
    assert sum(count_tokens(p.text) for p in unlimited) > 64  # so the small budget below must leave some out

    passages, trace = assemble(manifest, count_tokens, ranked, max_tokens=64)
    used = sum(count_tokens(p.text) for p in passages)
    assert 1 <= len(passages) < 5
    assert used <= 64 and trace.context_tokens == used
    for passage in passages:
        assert_exact(manifest, passage)
        assert passage.chunk_ids in [p.chunk_ids for p in unlimited]  # whole passages, never cut (only the first may be)


def test_a_smaller_passage_after_one_that_does_not_fit_is_still_used(manifest: Manifest, count_tokens) -> None:
    alpha, gamma = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "gamma.txt")
    big = [scored(c, 0.8) for c in alpha[4:9]]  # one merged passage of about 100 tokens
    small = gamma[1]  # one short sentence
    ranked = [scored(alpha[0], 0.9), *big, scored(small, 0.7)]
    sizes = [count_tokens(alpha[0].text), count_tokens(small.text)]
    assert sum(sizes) <= 64 < sizes[0] + count_tokens(alpha[4].text) + count_tokens(alpha[5].text)
    passages, trace = assemble(manifest, count_tokens, ranked, max_tokens=64)
    assert [p.chunk_ids for p in passages] == [[alpha[0].chunk_id], [small.chunk_id]]
    assert [p.number for p in passages] == [1, 2]
    assert trace.context_tokens == sum(sizes)


def test_first_passage_over_budget_is_truncated_at_a_word_boundary(manifest: Manifest, count_tokens) -> None:
    alpha, gamma = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "gamma.txt")
    ranked = [scored(c, 1.0) for c in alpha[:8]] + [scored(gamma[0], 0.5)]
    whole = alpha[7].end - alpha[0].start
    passages, trace = assemble(manifest, count_tokens, ranked, max_tokens=64)
    first = passages[0]
    text = assert_exact(manifest, first)
    assert first.start == alpha[0].start and first.end - first.start < whole
    tokens = count_tokens(first.text)
    assert 32 <= tokens <= 64  # cut near the budget, not to almost nothing
    assert text[first.end].isspace() and not first.text[-1].isspace()  # ends at a word boundary
    assert sum(count_tokens(p.text) for p in passages) == trace.context_tokens <= 64


def test_max_passages_keeps_the_best(manifest: Manifest, count_tokens) -> None:
    alpha, gamma, beta = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "gamma.txt"), chunks_of(manifest, "beta.md")
    ranked = [scored(gamma[0], 0.4), scored(alpha[0], 0.7), scored(beta[0], 0.9), scored(alpha[8], 0.5)]
    passages, trace = assemble(manifest, count_tokens, ranked, max_passages=2, max_tokens=1500)
    assert [p.chunk_ids for p in passages] == [[beta[0].chunk_id], [alpha[0].chunk_id]]
    assert trace.passages == 2


def test_passages_are_numbered_by_score(manifest: Manifest, count_tokens) -> None:
    alpha, gamma, beta = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "gamma.txt"), chunks_of(manifest, "beta.md")
    ranked = [scored(gamma[0], 0.3), scored(alpha[4], 0.9), scored(beta[0], 0.6), scored(alpha[10], 0.45)]
    passages, _ = assemble(manifest, count_tokens, ranked, max_tokens=1500)
    assert [p.number for p in passages] == [1, 2, 3, 4]
    assert [p.score for p in passages] == [0.9, 0.6, 0.45, 0.3]
    assert [p.chunk_ids[0] for p in passages] == [alpha[4].chunk_id, beta[0].chunk_id, alpha[10].chunk_id, gamma[0].chunk_id]
    assert [p.source for p in passages] == ["alpha.txt", "beta.md", "alpha.txt", "gamma.txt"]


def test_no_chunks_no_passages(manifest: Manifest, count_tokens) -> None:
    passages, trace = assemble(manifest, count_tokens, [])
    assert (passages, trace.model_dump(exclude_unset=True)) == ([], {})


# --- token counts stored at ingest ------------------------------------------------------


def test_chunks_carry_their_token_count_from_ingest(manifest: Manifest, count_tokens) -> None:
    chunks = chunks_of(manifest, "alpha.txt") + chunks_of(manifest, "beta.md")
    assert all(c.tokens is not None and c.tokens == count_tokens(c.text) for c in chunks)


def test_single_chunk_passages_are_not_re_encoded(manifest: Manifest, count_tokens) -> None:
    alpha, gamma, beta = chunks_of(manifest, "alpha.txt"), chunks_of(manifest, "gamma.txt"), chunks_of(manifest, "beta.md")
    counted: list[str] = []

    def counting(text: str) -> int:
        counted.append(text)
        return count_tokens(text)

    ranked = [scored(alpha[0], 0.9), scored(gamma[1], 0.8), scored(beta[3], 0.7)]  # three separate passages
    passages, trace = ContextAssembler(manifest, ContextConfig(max_tokens=1500), counting).assemble(ranked)
    assert len(passages) == 3 and counted == []
    assert trace.context_tokens == sum(count_tokens(p.text) for p in passages)
    merged = [scored(alpha[4], 0.9), scored(alpha[5], 0.8)]  # one passage of two chunks: only their shared text is encoded
    passages, trace = ContextAssembler(manifest, ContextConfig(max_tokens=1500), counting).assemble(merged)
    assert len(passages) == 1 and trace.context_tokens == count_tokens(passages[0].text)
    assert sum(len(text) for text in counted) < len(passages[0].text) / 2


@pytest.mark.parametrize("name", ["alpha.txt", "beta.md", "gamma.txt", "delta.txt", "epsilon.txt"])
def test_merged_passages_count_exactly_from_stored_counts(manifest: Manifest, count_tokens, name: str) -> None:
    """Overlapping (delta: cut between words of one long sentence) and adjacent chunks, 2 to 4 in a row."""
    chunks = chunks_of(manifest, name)
    checked = 0
    for size in (2, 3, 4):
        for first in range(len(chunks) - size + 1):
            ranked = [scored(c, 1.0 - 0.01 * i) for i, c in enumerate(chunks[first : first + size])]
            passages, trace = assemble(manifest, count_tokens, ranked, max_tokens=100_000, max_passages=50)
            assert trace.context_tokens == sum(count_tokens(p.text) for p in passages)
            checked += len(passages) < size  # at least two chunks merged into one passage
    assert checked > 0


def test_an_index_made_before_token_counts_keeps_working_and_is_migrated(tmp_path: Path, count_tokens) -> None:
    import sqlite3

    from rag.ingest.chunking import token_counts

    old = sqlite3.connect(tmp_path / "manifest.sqlite")  # the chunks table as it was before the tokens column
    old.executescript(
        "CREATE TABLE sources (path TEXT PRIMARY KEY, display_path TEXT NOT NULL, file_type TEXT NOT NULL, content_hash TEXT NOT NULL,"
        " fingerprint TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL, pages INTEGER NOT NULL, documents INTEGER NOT NULL,"
        " chunks INTEGER NOT NULL, ingested_at REAL NOT NULL, tags TEXT NOT NULL DEFAULT '[]', groups TEXT NOT NULL DEFAULT '[]');"
        "CREATE TABLE chunks (chunk_id TEXT PRIMARY KEY, source TEXT NOT NULL REFERENCES sources(path) ON DELETE CASCADE,"
        " doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, page INTEGER,"
        " heading TEXT NOT NULL, text TEXT NOT NULL);"
        "INSERT INTO sources VALUES ('/a.txt', 'a.txt', 'text', 'h', 'f', 1, 0, 1, 1, 2, 0, '[]', '[]');"
        "INSERT INTO chunks VALUES ('c1', '/a.txt', 'a.txt', 0, 0, 21, NULL, '[]', 'Parking is free today');"
        "INSERT INTO chunks VALUES ('c2', '/a.txt', 'a.txt', 1, 22, 40, NULL, '[]', 'Visitors sign in.');"
    )
    old.commit()
    old.close()
    manifest = Manifest(tmp_path / "manifest.sqlite")
    try:
        assert [c.tokens for c in manifest.chunks_by_id(["c1", "c2"])] == [None, None]  # read as before: counted when used
        assert manifest.fill_token_counts(token_counts, batch=1) == 2
        assert [c.tokens for c in manifest.chunks_by_id(["c1", "c2"])] == [count_tokens("Parking is free today"), count_tokens("Visitors sign in.")]
        assert manifest.fill_token_counts(token_counts) == 0
    finally:
        manifest.close()
