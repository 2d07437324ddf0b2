"""The reranker contract (`rag.retrieve.rerank.Reranker`) as a test suite."""

from __future__ import annotations

from rag.retrieve.rerank import Reranker
from rag.types import Chunk, ScoredChunk

QUERY = "renew parking permit"
TEXTS = [
    "the cafeteria menu changes every week",
    "security badges must be worn at all times",
    "lunch is served in the cafeteria at noon",
    "holiday calendar for next year",
    "how to renew a parking permit online",
]
RELEVANT = 4  # the position of the passage that answers QUERY


def fused_candidates(texts: list[str]) -> list[ScoredChunk]:
    """Candidates best-first, with fused scores and ranks as the searcher leaves them."""
    out = []
    for i, text in enumerate(texts):
        chunk = Chunk(f"c{i}", "/docs/a.txt", "docs/a.txt", i, i * 100, i * 100 + len(text), text)
        out.append(ScoredChunk(chunk, score=1.0 - i / 100, source_display="docs/a.txt", scores={"fused": 1.0 - i / 100}, ranks={"fused": i + 1}))
    return out


class RerankerContract:
    """Provide a `reranker` fixture (it should rerank at least five candidates).

    `semantic`: whether it puts a passage holding the query's words above unrelated ones (False for, e.g., a
    randomly initialised test model).
    """

    semantic = True

    def test_name_names_it(self, reranker: Reranker) -> None:
        assert isinstance(reranker.name, str) and reranker.name.strip()

    def test_the_same_candidates_come_back_reordered(self, reranker: Reranker) -> None:
        given = fused_candidates(TEXTS)
        result = reranker.rerank(QUERY, list(given))
        assert len(result) == len(given)
        assert {id(s) for s in result} == {id(s) for s in given}  # none dropped, none invented, none copied

    def test_ranks_and_scores_are_written(self, reranker: Reranker) -> None:
        result = reranker.rerank(QUERY, fused_candidates(TEXTS))
        assert [s.ranks["rerank"] for s in result] == list(range(1, len(result) + 1))
        head = [s for s in result if "rerank" in s.scores]
        assert head, "reranked candidates carry scores['rerank']"
        assert result[: len(head)] == head  # reranked candidates come first
        assert all(s.score == s.scores["rerank"] for s in head)
        assert [s.score for s in head] == sorted((s.score for s in head), reverse=True)

    def test_no_candidates_no_results(self, reranker: Reranker) -> None:
        assert reranker.rerank(QUERY, []) == []

    def test_the_passage_that_answers_comes_first(self, reranker: Reranker) -> None:
        if not self.semantic:
            return
        result = reranker.rerank(QUERY, fused_candidates(TEXTS))
        assert result[0].chunk.chunk_id == f"c{RELEVANT}"
