"""The writer embeds a batch's texts sorted by length (less padding) and still stores each vector under its own chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.config import load_config
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor

# Files whose chunks differ in length, written so that file order is not length order.
DOCS = {
    "a-long.md": "# Travel policy\n\n" + " ".join(f"Rule {n}: trains are booked in second class for trips under {n} hours." for n in range(1, 30)),
    "b-short.txt": "Badges open the side door.",
    "c-medium.md": "# Parking\n\nThe garage has forty places for staff; visitors park on the street behind the library.",
    "d-tiny.txt": "Coffee.",
}


def test_each_stored_vector_is_its_own_chunks_embedding(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text)
    with Index.open(tmp_path / "index", load_config(), writable=True) as index:
        Ingestor(index).ingest([str(corpus)])
        ids, texts = index.manifest.chunk_texts()
        assert len({len(t) for t in texts}) >= 4  # lengths differ, so sorting reorders them
        stored_ids, stored = index.vectors.get_vectors(ids)
        by_id = dict(zip(stored_ids, stored, strict=True))
        alone = np.vstack([index.embedder.inner.embed([text]) for text in texts])  # one text per call: no sorting
    similarity = np.vstack([by_id[i] for i in ids]) @ alone.T
    assert (similarity.argmax(axis=1) == np.arange(len(ids))).all()  # every vector sits under its own chunk
    assert similarity.diagonal().min() > 0.97  # the same model; int8 activations are quantised per batch, so not bit-equal
