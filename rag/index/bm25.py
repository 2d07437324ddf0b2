"""The lexical index beside the vectors: BM25 over immutable segments, so a change costs what changed.

bm25s precomputes each (term, chunk) score, and every score depends on the whole corpus (document frequency,
average length), so it has no incremental update: rebuilding it from token ids takes about 4 s at 100,000
chunks, and tokenising them about 6 s more. Instead, chunks are tokenised once (bm25s' tokenizer, stopwords and
stemmer) into a `Segment` of term frequencies, and a change adds a small segment and marks replaced chunks
dead. Scores are computed at query time from the live chunks' statistics with bm25s' Lucene formulas, in the
same float arithmetic as bm25s, so they equal a full bm25s rebuild's (tests/test_bm25_segments.py checks it).
Segments are merged when there are many of them or much of the index is dead (`catch_up`).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from rag.config import BM25Config

if TYPE_CHECKING:
    from rag.index.contracts import Catalog

MAX_SEGMENTS = 8  # more small segments than this: they are merged into one
MAX_CHANGED_SHARE = 0.25  # dead chunks plus chunks outside the largest segment above this share: full rebuild


def _bm25s() -> ModuleType:
    """bm25s, imported lazily. It sets its own logger to DEBUG at import, so any root handler (`rag serve`'s
    logging, an application's basicConfig, a library's `logging.warning`) would print "DEBUG:bm25s" lines:
    hand the level back to the application."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


MAX_KNOWN_TEXTS = 20_000  # texts whose tokens `remember_tokens` keeps at most (what one refresh may take)


class _KnownTokens:
    """BM25 tokens of texts tokenised elsewhere: by the ingest's reader child, another interpreter of this program
    with the same bm25s, stopwords and stemmer. A text's tokens under one set of settings are a pure
    function of it, so any `Tokenizer` with those settings may take any entry; the refresh that indexes a changed
    file's chunks then neither imports bm25s (about 0.1-0.2 s) nor tokenises. Entries are removed once taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_settings: dict[tuple[str | None, str | None], dict[str, list[str]]] = {}

    def add(self, config: BM25Config, texts: list[str], tokens: list[list[str]]) -> None:
        with self._lock:
            known = self._by_settings.setdefault((config.stopwords, config.stemmer), {})
            if len(known) + len(texts) <= MAX_KNOWN_TEXTS:
                known.update(zip(texts, tokens))

    def take(self, config: BM25Config, texts: list[str]) -> list[list[str]] | None:
        """The tokens of every text, or None (then none is taken) if one of them is not known."""
        with self._lock:
            known = self._by_settings.get((config.stopwords, config.stemmer), {})
            if not texts or any(text not in known for text in texts):
                return None
            rows = [known[text] for text in texts]
            for text in set(texts):
                del known[text]
            return rows

    def clear(self) -> None:
        with self._lock:
            self._by_settings.clear()


_KNOWN = _KnownTokens()


def remember_tokens(config: BM25Config, texts: list[str], tokens: list[list[str]]) -> None:
    """Keep the tokens of `texts` (`Tokenizer.token_lists` under `config`, made in another process) for the
    refresh that will index them; beyond MAX_KNOWN_TEXTS texts they are not kept (the refresh tokenises)."""
    _KNOWN.add(config, texts, tokens)


def forget_tokens() -> None:
    """Drop every remembered token list. An ingest calls it when it ends, so the tokens of a run that failed before
    its refresh took them do not stay in a long-lived process (`rag serve`)."""
    _KNOWN.clear()


class Tokenizer:
    """bm25s' tokenizer with the configured stopwords and stemmer."""

    def __init__(self, config: BM25Config) -> None:
        self.config = config
        self._stemmer_instance: object | None = None

    def _stemmer(self) -> object | None:
        if not self.config.stemmer:
            return None
        if self._stemmer_instance is None:
            import Stemmer

            self._stemmer_instance = Stemmer.Stemmer(self.config.stemmer)
        return self._stemmer_instance

    def ids(self, texts: list[str]) -> tuple[list[list[int]], dict[str, int]]:
        """Token ids per text and the vocabulary they index. From the tokens `remember_tokens` kept when every
        text is there (numbered in order of first use: scores never see the numbering), else from bm25s."""
        known = _KNOWN.take(self.config, texts)
        if known is None:
            tokenized = _bm25s().tokenize(texts, stopwords=self.config.stopwords or [], stemmer=self._stemmer(), show_progress=False)
            return tokenized.ids, tokenized.vocab
        vocab: dict[str, int] = {}
        return [[vocab.setdefault(token, len(vocab)) for token in row] for row in known], vocab

    def token_lists(self, texts: list[str]) -> list[list[str]]:
        """The tokens of each text as strings (what `ids` numbers), e.g. to hand to `remember_tokens`."""
        if not texts:
            return []
        rows = _bm25s().tokenize(texts, stopwords=self.config.stopwords or [], stemmer=self._stemmer(), return_ids=False, show_progress=False)
        return [list(row) for row in rows]

    def tokens(self, text: str) -> list[str]:
        return self.token_lists([text])[0]


@dataclass(frozen=True, slots=True)
class Segment:
    """Term frequencies of a fixed set of chunks, by term (CSR: the postings of term t are `starts[t]:starts[t+1]`)."""

    chunk_ids: list[str]
    lengths: np.ndarray  # tokens per chunk (after stopwords), int32
    terms: dict[str, int]  # token -> term number
    starts: np.ndarray  # int64, len(terms) + 1
    docs: np.ndarray  # int32 chunk positions, ascending within each term
    freqs: np.ndarray  # float32 term frequencies beside `docs`

    @classmethod
    def build(cls, chunk_ids: list[str], texts: list[str], tokenizer: Tokenizer) -> "Segment":
        ids, vocab = tokenizer.ids(texts) if texts else ([], {})
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int32, count=len(ids))
        flat = np.fromiter((token for row in ids for token in row), dtype=np.int64, count=int(lengths.sum()))
        n = max(len(chunk_ids), 1)
        keys, freqs = np.unique(flat * n + np.repeat(np.arange(len(ids), dtype=np.int64), lengths), return_counts=True)
        term_of = keys // n
        terms = {token: number for token, number in vocab.items()}
        starts = np.searchsorted(term_of, np.arange(len(terms) + 1)).astype(np.int64)
        return cls(list(chunk_ids), lengths, terms, starts, (keys % n).astype(np.int32), freqs.astype(np.float32))

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray] | None:
        term = self.terms.get(token)
        if term is None:
            return None
        begin, end = int(self.starts[term]), int(self.starts[term + 1])
        return self.docs[begin:end], self.freqs[begin:end]

    def save(self, directory: Path) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in ("lengths", "starts", "docs", "freqs"):
            np.save(tmp / f"{name}.npy", getattr(self, name))
        vocabulary = sorted(self.terms, key=self.terms.__getitem__)
        (tmp / "terms.json").write_text(json.dumps(vocabulary))
        (tmp / "chunk_ids.json").write_text(json.dumps(self.chunk_ids))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path) -> "Segment":
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in ("lengths", "starts", "docs", "freqs")}
        vocabulary = json.loads((directory / "terms.json").read_text())
        chunk_ids = json.loads((directory / "chunk_ids.json").read_text())
        return cls(chunk_ids, np.asarray(arrays["lengths"]), {t: i for i, t in enumerate(vocabulary)}, **{k: arrays[k] for k in ("starts", "docs", "freqs")})


@dataclass(slots=True)
class BM25Index:
    """BM25 (bm25s' Lucene variant) over segments; `live[i]` masks the chunks of `segments[i]` still indexed.

    Immutable once built: `updated` returns a new index sharing the unchanged segments, so readers holding
    this one keep a consistent view.
    """

    config: BM25Config
    segments: list[Segment] = field(default_factory=list)
    live: list[np.ndarray] = field(default_factory=list)
    _tokenizer: Tokenizer | None = None
    _chunk_ids: list[str] | None = None
    _statistics: "_Statistics | None" = None

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self.config)
        return self._tokenizer

    @property
    def chunk_ids(self) -> list[str]:
        """The indexed chunk ids, sorted."""
        if self._chunk_ids is None:
            self._chunk_ids = sorted(self.live_ids())
        return self._chunk_ids

    def live_ids(self) -> set[str]:
        """The indexed chunk ids, unordered (cheaper than `chunk_ids`)."""
        return set().union(*(compress(s.chunk_ids, alive.tolist()) for s, alive in zip(self.segments, self.live)))

    def build(self, chunk_ids: list[str], texts: list[str]) -> None:
        """Index exactly these chunks (one segment)."""
        segment = Segment.build(chunk_ids, texts, self.tokenizer)
        self.segments, self.live = [segment], [np.ones(len(chunk_ids), dtype=bool)]
        self._chunk_ids, self._statistics = None, None

    def updated(self, added: list[str], texts: list[str], removed: Iterable[str]) -> "BM25Index":
        """A new index without `removed` and with `added` (ids of chunks not indexed yet, with their texts)."""
        gone = set(removed)
        live = [alive & ~np.fromiter((c in gone for c in s.chunk_ids), dtype=bool, count=len(s.chunk_ids)) if gone else alive
                for s, alive in zip(self.segments, self.live)]
        segments = list(self.segments)
        if added:
            segments.append(Segment.build(added, texts, self.tokenizer))
            live.append(np.ones(len(added), dtype=bool))
        return BM25Index(self.config, segments, live, self._tokenizer)

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Top-k chunk ids by BM25 (score > 0, ties by chunk id); `allowed` restricts the results to those ids
        (the statistics stay those of the whole index)."""
        if k <= 0 or (allowed is not None and not allowed):
            return []
        scores = self._scores(self.tokenizer.tokens(query))
        flat = np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)
        candidates = np.flatnonzero(flat > 0)
        if allowed is not None:
            candidates = candidates[np.fromiter((self._id_at(int(i)) in allowed for i in candidates), dtype=bool, count=candidates.size)]
        if candidates.size > k:  # keep the k best and every candidate tied with the k-th, then order by id
            kth = np.partition(flat[candidates], candidates.size - k)[candidates.size - k]
            candidates = candidates[flat[candidates] >= kth]
        found = [(self._id_at(int(i)), float(flat[i])) for i in candidates]
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found[:k]

    def _id_at(self, position: int) -> str:
        """The chunk id at a position of the segments laid end to end."""
        for segment in self.segments:
            if position < len(segment.chunk_ids):
                return segment.chunk_ids[position]
            position -= len(segment.chunk_ids)
        raise IndexError(position)

    def _scores(self, tokens: list[str]) -> list[np.ndarray]:
        """Per segment, float32 scores accumulated token by token exactly as bm25s does (a token repeated in the
        query counts again); idf and the term-frequency part in float64, rounded to float32 per term as bm25s
        stores them."""
        scores = [np.zeros(len(s.chunk_ids), dtype=np.float32) for s in self.segments]
        statistics = self.statistics()
        if statistics.n_docs == 0:
            return scores
        for token in tokens:
            postings = []
            for number, (segment, alive) in enumerate(zip(self.segments, self.live)):
                found = segment.postings(token)
                if found is None:
                    continue
                docs, freqs = found
                if not statistics.all_alive[number]:
                    keep = alive[docs]
                    docs, freqs = docs[keep], freqs[keep]
                if docs.size:
                    postings.append((number, docs, freqs))
            df = sum(docs.size for _, docs, _ in postings)
            if df == 0:
                continue
            idf = np.float32(math.log(1 + (statistics.n_docs - df + 0.5) / (df + 0.5)))
            for number, docs, freqs in postings:
                tfc = freqs / (statistics.norms[number][docs] + freqs)
                scores[number][docs] += (idf * tfc).astype(np.float32)
        return scores

    def statistics(self) -> "_Statistics":
        """What every query's scoring needs from the whole index, computed once per (immutable) index rather than
        per query: passes over every chunk that took about a third of a BM25 query at 10^6 chunks."""
        if self._statistics is None:
            n_docs = sum(int(alive.sum()) for alive in self.live)
            total_length = sum(int(s.lengths[alive].sum(dtype=np.int64)) for s, alive in zip(self.segments, self.live))
            average = np.float64(total_length) / n_docs if total_length else np.float64(1)  # no words: no postings to score
            k1, b = self.config.k1, self.config.b
            # each chunk's length normalisation, the same float64 arithmetic as bm25s' Lucene formula per posting
            norms = [k1 * ((1 - b) + b * s.lengths / average) for s in self.segments]
            self._statistics = _Statistics(n_docs, norms, [bool(alive.all()) for alive in self.live])
        return self._statistics

    # --- persistence (the folder backend) ----------------------------------------------------
    def save(self, folder: Path, names: list[str], state_file: Path, catalog_generation: int) -> None:
        """Save the segments not saved yet as `folder/<name>` and the state (segment names, dead chunks) atomically."""
        for segment, name in zip(self.segments, names):
            if not (folder / name).is_dir():
                segment.save(folder / name)
        state = {
            "settings": self.config.model_dump_json(),
            "catalog_generation": catalog_generation,
            "segments": [{"name": name, "dead": np.flatnonzero(~alive).tolist()} for name, alive in zip(names, self.live)],
        }
        tmp = state_file.with_name(state_file.name + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.rename(state_file)


@dataclass(frozen=True, slots=True)
class _Statistics:
    """An index's live chunk count, per-chunk length normalisation per segment, and which segments have no dead chunk."""

    n_docs: int
    norms: list[np.ndarray]  # float64: k1 * ((1 - b) + b * length / average length)
    all_alive: list[bool]


@dataclass(frozen=True, slots=True)
class State:
    """What a saved BM25 version is made of."""

    settings: str
    catalog_generation: int
    names: list[str]
    dead: list[list[int]]

    @classmethod
    def read(cls, path: Path) -> "State":
        raw = json.loads(path.read_text())
        return cls(raw["settings"], raw["catalog_generation"], [s["name"] for s in raw["segments"]], [s["dead"] for s in raw["segments"]])


def assemble(config: BM25Config, segments: list[Segment], dead: list[list[int]]) -> BM25Index:
    live = []
    for segment, positions in zip(segments, dead):
        alive = np.ones(len(segment.chunk_ids), dtype=bool)
        alive[np.asarray(positions, dtype=np.int64)] = False
        live.append(alive)
    return BM25Index(config, segments, live)


def catch_up(index: BM25Index | None, catalog: "Catalog", config: BM25Config) -> BM25Index:
    """`index` brought up to the catalog's committed chunks: only new chunks are tokenised, removed ones are
    marked dead. Rebuilt from all chunk texts when there is no index, the settings changed, or dead chunks plus
    those outside the largest segment pass MAX_CHANGED_SHARE; small segments are merged past MAX_SEGMENTS."""
    if index is None or index.config.model_dump_json() != config.model_dump_json():
        return _full(catalog, config)
    current = catalog.all_chunk_ids()
    indexed = index.live_ids()
    added = sorted(current - indexed)
    removed = indexed - current
    if not added and not removed:
        return index
    updated = index.updated(added, [c.text for c in catalog.chunks_by_id(added)], removed)
    sizes = [len(s.chunk_ids) for s in updated.segments]
    largest = max(range(len(sizes)), key=sizes.__getitem__)
    dead = sum(int((~alive).sum()) for alive in updated.live)
    changed = dead + sum(sizes) - sizes[largest]
    if changed > MAX_CHANGED_SHARE * max(len(current), 1):
        return _full(catalog, config)
    if len(updated.segments) > MAX_SEGMENTS:
        return _merge_small(updated, largest, catalog)
    return updated


def _full(catalog: "Catalog", config: BM25Config) -> BM25Index:
    index = BM25Index(config)
    index.build(*catalog.chunk_texts())
    return index


def _merge_small(index: BM25Index, keep: int, catalog: "Catalog") -> BM25Index:
    """Every segment but the largest, re-tokenised into one."""
    ids = sorted(c for n, (s, alive) in enumerate(zip(index.segments, index.live)) if n != keep for c, on in zip(s.chunk_ids, alive) if on)
    chunks = catalog.chunks_by_id(ids)
    merged = Segment.build([c.chunk_id for c in chunks], [c.text for c in chunks], index.tokenizer)
    return BM25Index(index.config, [index.segments[keep], merged], [index.live[keep], np.ones(len(chunks), dtype=bool)], index._tokenizer)
