"""The lexical index beside the vectors: bm25s, rebuilt whenever the chunk set changes.

bm25s has no incremental update, but it indexes tens of thousands of chunks in seconds, so
the index is rebuilt from the manifest's chunk texts and saved as a new generation folder;
the manifest records which generation is current, so a crash mid-save never leaves a torn index.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np

from rag.config import BM25Config


def _bm25s() -> ModuleType:
    """bm25s, imported lazily. It sets its own logger to DEBUG at import, so any root handler (`rag serve`'s
    logging, an application's basicConfig, a library's `logging.warning`) would print "DEBUG:bm25s" lines:
    hand the level back to the application."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


class BM25Index:
    """bm25s over chunk texts with the configured stopwords and stemmer; ids kept beside it."""

    def __init__(self, config: BM25Config) -> None:
        self.config = config
        self._retriever: object | None = None
        self.chunk_ids: list[str] = []

    def _stemmer(self) -> object | None:
        if not self.config.stemmer:
            return None
        import Stemmer

        return Stemmer.Stemmer(self.config.stemmer)

    def _tokenize(self, texts: list[str], as_ids: bool = True) -> object:
        return _bm25s().tokenize(
            texts,
            stopwords=self.config.stopwords or [],
            stemmer=self._stemmer(),
            return_ids=as_ids,
            show_progress=False,
        )

    def build(self, chunk_ids: list[str], texts: list[str]) -> None:
        self.chunk_ids = list(chunk_ids)
        retriever = _bm25s().BM25(k1=self.config.k1, b=self.config.b, method="lucene")
        if texts:
            retriever.index(self._tokenize(texts), show_progress=False)
        self._retriever = retriever

    def save(self, directory: Path) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.chunk_ids:
            self._retriever.save(str(tmp), show_progress=False)  # type: ignore[attr-defined]
        (tmp / "chunk_ids.json").write_text(json.dumps(self.chunk_ids))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path, config: BM25Config) -> "BM25Index":
        index = cls(config)
        index.chunk_ids = json.loads((directory / "chunk_ids.json").read_text())
        if index.chunk_ids:
            index._retriever = _bm25s().BM25.load(str(directory), mmap=True, show_progress=False)
        return index

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Top-k chunk ids by BM25; `allowed` restricts scoring to those chunk ids before ranking."""
        if not self.chunk_ids or k <= 0 or (allowed is not None and not allowed):
            return []
        # Query tokens as strings: bm25s maps them through the index vocabulary and drops unknown ones.
        tokens = self._tokenize([query], as_ids=False)[0]  # type: ignore[index]
        vocabulary = self._retriever.vocab_dict  # type: ignore[attr-defined]
        tokens = [t for t in tokens if t in vocabulary]
        if not tokens:
            return []
        k = min(k, len(self.chunk_ids))
        mask = None
        if allowed is not None:
            mask = np.fromiter((chunk_id in allowed for chunk_id in self.chunk_ids), dtype=np.float32, count=len(self.chunk_ids))
        docs, scores = self._retriever.retrieve(  # type: ignore[attr-defined]
            [tokens], k=k, show_progress=False, n_threads=1, weight_mask=mask
        )
        return [(self.chunk_ids[int(i)], float(s)) for i, s in zip(np.asarray(docs[0]), np.asarray(scores[0])) if s > 0]
