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
from typing import Any

import numpy as np

from rag.config import BM25Config

BM25S_PARAMS_FILE = "params.index.json"  # written by bm25s.BM25.save


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
        self._retriever: Any = None  # bm25s.BM25; None when no chunk has an indexable word
        self._stemmer_instance: object | None = None
        self.chunk_ids: list[str] = []

    def _stemmer(self) -> object | None:
        if not self.config.stemmer:
            return None
        if self._stemmer_instance is None:
            import Stemmer

            self._stemmer_instance = Stemmer.Stemmer(self.config.stemmer)
        return self._stemmer_instance

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
        self._retriever = None
        tokenized = self._tokenize(texts) if texts else None
        # Texts with no indexable word (a lone symbol such as "ð", stopwords only) leave the
        # vocabulary empty, which bm25s cannot index: such an index simply matches no query.
        if tokenized is not None and tokenized.vocab:  # type: ignore[attr-defined]
            retriever = _bm25s().BM25(k1=self.config.k1, b=self.config.b, method="lucene")
            retriever.index(tokenized, show_progress=False)
            self._retriever = retriever

    def save(self, directory: Path) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._retriever is not None:
            self._retriever.save(str(tmp), show_progress=False)
        (tmp / "chunk_ids.json").write_text(json.dumps(self.chunk_ids))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path, config: BM25Config) -> "BM25Index":
        index = cls(config)
        index.chunk_ids = json.loads((directory / "chunk_ids.json").read_text())
        if (directory / BM25S_PARAMS_FILE).is_file():  # absent when the chunks held no indexable word
            index._retriever = _bm25s().BM25.load(str(directory), mmap=True, show_progress=False)
        return index

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Top-k chunk ids by BM25 (score > 0, ties by chunk order); `allowed` restricts scoring to those ids.

        Scores every chunk with bm25s' sparse matrix and selects the top k here: bm25s' own `retrieve`
        starts a thread pool and progress bars on every call, which cost more than the scoring itself.
        """
        if self._retriever is None or k <= 0 or (allowed is not None and not allowed):
            return []
        # Query tokens as strings: the index vocabulary maps them to ids; unknown ones are dropped.
        tokens = self._tokenize([query], as_ids=False)[0]  # type: ignore[index]
        ids = self._retriever.get_tokens_ids(list(tokens))
        if not ids:
            return []
        scores = self._retriever.get_scores_from_ids(ids)
        if allowed is not None:
            scores = scores * np.fromiter((chunk_id in allowed for chunk_id in self.chunk_ids), dtype=bool, count=len(self.chunk_ids))
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        return [(self.chunk_ids[int(i)], float(scores[i])) for i in top if scores[i] > 0]
