"""The vector store contract (`rag.index.contracts.VectorStore`) as a test suite."""

from __future__ import annotations

import numpy as np
import pytest

from rag.index.contracts import Metadata, VectorStore

DIM = 8


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def random_vectors(n: int, seed: int = 0) -> np.ndarray:
    """n random unit vectors of DIM dimensions."""
    return unit_rows(np.random.default_rng(seed).normal(size=(n, DIM)))


def metadata(i: int) -> Metadata:
    return {"source": f"/docs/{i % 3}.md", "doc_id": f"d{i}", "file_type": "markdown", "start": 0, "end": 10}


class VectorStoreContract:
    """Provide a `store` fixture: an empty `VectorStore` (it receives DIM-dimensional vectors)."""

    def test_upsert_then_ids_and_count(self, store: VectorStore) -> None:
        ids = [f"c{i}" for i in range(20)]
        store.upsert(ids, random_vectors(20), [metadata(i) for i in range(20)])
        assert store.ids() == set(ids)
        assert store.count() == 20

    def test_upsert_is_idempotent(self, store: VectorStore) -> None:
        ids = [f"c{i}" for i in range(5)]
        store.upsert(ids, random_vectors(5), [metadata(i) for i in range(5)])
        store.upsert(ids, random_vectors(5, seed=1), [metadata(i) for i in range(5)])
        assert store.count() == 5

    def test_query_returns_nearest_first_with_cosine_scores(self, store: VectorStore) -> None:
        vectors = random_vectors(30)
        ids = [f"c{i}" for i in range(30)]
        store.upsert(ids, vectors, [metadata(i) for i in range(30)])
        hits = store.query(vectors[7], k=5)
        assert hits[0][0] == "c7"
        assert hits[0][1] == pytest.approx(1.0, abs=1e-4)
        scores = [score for _, score in hits]
        assert scores == sorted(scores, reverse=True)
        expected = sorted(range(30), key=lambda i: -float(vectors[i] @ vectors[7]))[:5]
        assert [chunk_id for chunk_id, _ in hits] == [f"c{i}" for i in expected]

    def test_query_with_metadata_filter(self, store: VectorStore) -> None:
        store.upsert([f"c{i}" for i in range(9)], random_vectors(9), [metadata(i) for i in range(9)])
        hits = store.query(random_vectors(1, seed=5)[0], k=9, where={"source": "/docs/1.md"})
        assert {chunk_id for chunk_id, _ in hits} == {"c1", "c4", "c7"}

    def test_get_vectors_returns_the_stored_vectors_of_existing_ids(self, store: VectorStore) -> None:
        vectors = random_vectors(6)
        store.upsert([f"c{i}" for i in range(6)], vectors, [metadata(i) for i in range(6)])
        ids, matrix = store.get_vectors(["c4", "c1", "missing-id"])
        assert sorted(ids) == ["c1", "c4"]
        for chunk_id, row in zip(ids, matrix):
            assert row == pytest.approx(vectors[int(chunk_id[1:])], abs=1e-6)

    def test_get_vectors_of_unknown_ids_is_empty(self, store: VectorStore) -> None:
        store.upsert(["a"], random_vectors(1), [metadata(0)])
        ids, matrix = store.get_vectors(["missing-id"])
        assert ids == [] and len(matrix) == 0

    def test_delete_removes_only_given_ids(self, store: VectorStore) -> None:
        store.upsert([f"c{i}" for i in range(6)], random_vectors(6), [metadata(i) for i in range(6)])
        store.delete(["c1", "c3", "missing-id"])
        assert store.ids() == {"c0", "c2", "c4", "c5"}

    def test_empty_store_query_and_drop(self, store: VectorStore) -> None:
        assert store.query(random_vectors(1)[0], k=3) == []
        store.upsert(["a"], random_vectors(1), [metadata(0)])
        store.drop()
        assert store.count() == 0 and store.ids() == set()

    def test_k_above_the_store_size_returns_everything(self, store: VectorStore) -> None:
        """Searchers ask for k without counting first (no count() per query)."""
        vectors = random_vectors(3, seed=11)
        store.upsert(["a", "b", "c"], vectors, [metadata(i) for i in range(3)])
        hits = store.query(vectors[0], k=50)
        assert sorted(chunk_id for chunk_id, _ in hits) == ["a", "b", "c"] and hits[0][0] == "a"

    def test_k_zero_finds_nothing(self, store: VectorStore) -> None:
        store.upsert(["a"], random_vectors(1), [metadata(0)])
        assert store.query(random_vectors(1)[0], k=0) == []

    def test_a_refreshed_handle_sees_every_write(self, store: VectorStore) -> None:
        vectors = random_vectors(4)
        store.upsert([f"c{i}" for i in range(4)], vectors, [metadata(i) for i in range(4)])
        fresh = store.refreshed()
        assert fresh.ids() == {"c0", "c1", "c2", "c3"}
        assert fresh.query(vectors[2], k=1)[0][0] == "c2"
