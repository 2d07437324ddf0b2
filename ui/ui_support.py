"""The chat UI's logic, kept free of Streamlit so it can be unit-tested: answer and source HTML, settings as
config overrides, chat turns with their trace rows, uploads, index and run discovery.

It lives with the UI (the library never imports it); the Streamlit pages beside it only lay these out. Every piece of document or answer text that ends up in
HTML is escaped here: documents may contain markup, and answers may come from an LLM.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.cli.ui_cmd import INDEX_ENV, RUNS_ENV, SETTINGS_ENV
from rag.core.progress import Progress
from rag.core.trace import Trace
from rag.errors import RagError
from rag.generate.citations import MARKER
from rag.index.contracts import Catalog
from rag.index.manifest import Manifest
from rag.index.store import MANIFEST_FILE
from rag.ingest.detect import EXTENSION_TYPES
from rag.retrieve.filters import Filters
from rag.types import Answer

UPLOADS_FOLDER = "uploads"  # uploaded files are kept here, inside the index folder, so re-ingest can see them
SOURCE_WINDOW_CHARS = 40_000  # longer documents are shown as a window around the cited span
# what the uploader offers: every extension the loaders know (the one table in rag.ingest.detect)
UPLOAD_TYPES = [extension.lstrip(".") for extension in EXTENSION_TYPES if extension]


# --- answers and sources as HTML ---------------------------------------------------------------
def answer_html(text: str, labels: dict[int, str], markdown: bool = False, short: str | None = None) -> str:
    """The answer as safe HTML, with each verified `[n]` marker turned into a clickable link.

    `labels` maps citation markers to a tooltip ("handbook.pdf, page 2"); markers without one stay plain text
    (the citation checker removes unverified markers, so that only happens for hand-made input). `markdown`
    renders an LLM's Markdown (raw HTML escaped, links and images left as text); extractive answers are quotes
    of the documents and are shown verbatim, escaped. `short`: the short answer an extractive answer starts with,
    shown in bold.
    """

    def links(match: re.Match[str]) -> str:
        out = []
        for number in (int(n) for n in re.split(r"\s*,\s*", match.group(1))):
            if number in labels:
                title = html.escape(labels[number], quote=True)
                out.append(f'<a href="#" class="rag-cite" data-marker="{number}" title="{title}">[{number}]</a>')
            else:
                out.append(f"[{number}]")
        return (" " if match.group(0)[:1].isspace() else "") + "".join(out)

    if markdown:
        from markdown_it import MarkdownIt

        rendered = MarkdownIt("commonmark", {"html": False}).disable(["image", "link", "autolink"]).render(text)
        return MARKER.sub(links, rendered)
    escaped = html.escape(text)
    if short and text.startswith(short):
        escaped = f"<strong>{html.escape(short)}</strong>{html.escape(text[len(short):])}"
    paragraphs = MARKER.sub(links, escaped).split("\n\n")
    return "".join(f"<p>{p.strip(chr(10)).replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip())


@dataclass(slots=True)
class SourceView:
    """What the source viewer shows: a document's stored text with one span highlighted."""

    source: str  # the path as given at ingest
    page: int | None
    page_count: int
    heading_path: tuple[str, ...]
    text: str  # the whole stored document text (the text citation spans index into)
    start: int
    end: int

    @property
    def cited_text(self) -> str:
        return self.text[self.start : self.end]

    @property
    def title(self) -> str:
        where = f"page {self.page}" + (f" of {self.page_count}" if self.page_count else "") if self.page else ""
        return " · ".join(part for part in (Path(self.source).name, where) if part)


def source_view(manifest: Catalog, source: str, source_key: str, doc_id: str, start: int, end: int, page: int | None) -> SourceView:
    """Read the cited document from the index; a vanished document or an out-of-range span is a RagError."""
    document = manifest.document(source_key, doc_id)
    if document is None:
        raise RagError(f"{source} is no longer in the index", "it was removed or re-ingested since this answer; ask again")
    if not 0 <= start <= end <= len(document.text):
        raise RagError(f"the cited span of {source} no longer exists", "the document changed since this answer; ask again")
    heading = next((s.heading_path for s in document.sections if s.start <= start < s.end), ())
    return SourceView(source, page, len(document.pages), heading, document.text, start, end)


def open_source_view(index_dir: Path, ref: "SpanRef") -> SourceView:
    """The source viewer's content for a citation or passage, read from the index's manifest."""
    if not is_index(index_dir):
        raise RagError(f"no index at {index_dir}", "choose another index in the sidebar")
    manifest = Manifest(index_dir / MANIFEST_FILE)
    try:
        return source_view(manifest, ref.source, ref.source_key, ref.doc_id, ref.start, ref.end, ref.page)
    finally:
        manifest.close()


def highlighted_html(view: SourceView, window: int = SOURCE_WINDOW_CHARS) -> str:
    """The document text (a window around the span if it is long), escaped, the span in <mark id="rag-cited">."""
    begin, finish = 0, len(view.text)
    if finish > window:
        half = max(0, (window - (view.end - view.start)) // 2)
        begin = max(0, view.start - half)
        finish = min(len(view.text), max(view.end + half, begin + window))
        begin = _line_start(view.text, begin)
    before, cited, after = view.text[begin : view.start], view.cited_text, view.text[view.end : finish]
    head = f'<div class="rag-elided">… {begin:,} characters before</div>' if begin else ""
    tail = f'<div class="rag-elided">… {len(view.text) - finish:,} characters after</div>' if finish < len(view.text) else ""
    return (
        f'<div class="rag-source" style="white-space: pre-wrap; max-height: 60vh; overflow-y: auto; '
        f'font-size: 0.9rem; line-height: 1.5; padding: 0.5rem 0.75rem; border: 1px solid rgba(128,128,128,0.35); border-radius: 0.5rem">'
        f'{head}{html.escape(before)}<mark id="rag-cited" class="rag-cited">{html.escape(cited)}</mark>{html.escape(after)}{tail}</div>'
    )


def _line_start(text: str, offset: int) -> int:
    newline = text.rfind("\n", 0, offset)
    return newline + 1 if newline >= 0 and offset - newline < 400 else offset


# --- chat turns ----------------------------------------------------------------------------------
@dataclass(slots=True)
class SpanRef:
    """Where a citation or passage points: enough to open it in the source viewer later."""

    source: str
    source_key: str
    doc_id: str
    start: int
    end: int
    page: int | None


@dataclass(slots=True)
class ChatTurn:
    """One answered question as the UI keeps it in the session (plain data, no open index)."""

    question: str
    answer: str
    answered: bool
    citations: dict[int, SpanRef]
    passages: list[dict[str, Any]]  # number, source, page, heading, score and the retriever scores of its chunks
    passage_refs: dict[int, SpanRef]
    trace: Trace
    retrievers: list[dict[str, Any]] = field(default_factory=list)  # per query and retriever: ranked candidates
    short_answer: str | None = None  # offline answers: the span the answer starts with

    def labels(self) -> dict[int, str]:
        return {n: _label(ref) for n, ref in self.citations.items()}

    @property
    def written_by_llm(self) -> bool:
        """LLM answers are Markdown; extractive answers are verbatim quotes."""
        return self.trace.generator is not None and self.trace.generator.answerer == "llm"


def _label(ref: SpanRef) -> str:
    return f"{ref.source}, page {ref.page}" if ref.page else ref.source


def chat_turn(answer: Answer, manifest: Catalog) -> ChatTurn:
    """Keep what the chat page shows of an Answer; resolve the trace's chunk ids to sources while the index is open."""
    keys = {p.number: p.source_key for p in answer.passages}
    citations: dict[int, SpanRef] = {}
    for c in answer.citations:  # a marker may cite several spans of its passage (one per quoted sentence): it opens the first
        if c.marker in keys:
            citations.setdefault(c.marker, SpanRef(c.source, keys[c.marker], c.doc_id, c.start, c.end, c.page))
    candidates = {c.chunk_id: c for c in answer.trace.candidates}
    cited = set(citations)
    passages = []
    for p in sorted(answer.passages, key=lambda passage: passage.number):  # as numbered: the cited ones first
        best: dict[str, float] = {}
        for chunk_id in p.chunk_ids:
            candidate = candidates.get(chunk_id)
            for stage, score in (candidate.scores if candidate else {}).items():
                best[stage] = max(score, best.get(stage, score))
        passages.append(
            {"passage": p.number, "cited": p.number in cited, "source": p.source, "page": p.page,
             "heading": " › ".join(p.heading_path), "score": round(p.score, 4), **{s: best.get(s) for s in ("dense", "bm25", "fused", "rerank")},
             "chars": p.end - p.start}
        )
    refs = {p.number: SpanRef(p.source, p.source_key, p.doc_id, p.start, p.end, p.page) for p in answer.passages}
    trace = answer.trace.model_copy(deep=True)  # the turn keeps its own copy, whatever the pipeline does next
    short = answer.short_answer.text if answer.short_answer else None
    return ChatTurn(answer.question, answer.answer, answer.answered, citations, passages, refs, trace, retriever_rows(trace, manifest), short)


def retriever_rows(trace: Trace, manifest: Catalog) -> list[dict[str, Any]]:
    """Per searched query: each retriever's ranked candidates with source, page and score (chunk ids resolved)."""
    wanted = [chunk_id for step in trace.per_query for ranked in (step.dense, step.bm25) for chunk_id, _ in ranked]
    chunks = {c.chunk_id: c for c in manifest.chunks_by_id(list(dict.fromkeys(wanted)))}
    display = {r.path: r.display_path for r in manifest.sources()}
    result = []
    for step in trace.per_query:
        entry: dict[str, Any] = {"query": step.query}
        for name, ranked in (("dense", step.dense), ("bm25", step.bm25)):
            rows = []
            for rank, (chunk_id, score) in enumerate(ranked, start=1):
                chunk = chunks.get(chunk_id)
                rows.append({"rank": rank, "score": score, "source": display.get(chunk.source, chunk.source) if chunk else "(removed)",
                             "page": chunk.page if chunk else None, "text": _preview(chunk.text) if chunk else "", "chunk_id": chunk_id})
            entry[name] = rows
        result.append(entry)
    return result


def candidate_rows(trace: Trace) -> list[dict[str, Any]]:
    """The final ranking (after fusion and reranking) with each stage's score and rank, one row per chunk;
    stages that scored nothing (e.g. rerank when no reranker is set) get no columns."""
    candidates = trace.candidates
    stages = [s for s in ("dense", "bm25", "fused", "rerank") if any(s in c.scores for c in candidates)]
    rows = []
    for position, candidate in enumerate(candidates, start=1):
        scores, ranks = candidate.scores, candidate.ranks
        row: dict[str, Any] = {"rank": position, "source": candidate.source, "page": candidate.page}
        for stage in stages:
            row[stage] = scores.get(stage)
            row[f"{stage} rank"] = ranks.get(stage)
        rows.append(row)
    return rows


def history_messages(turns: list[ChatTurn]) -> list[dict[str, str]]:
    """The chat history the pipeline condenses follow-up questions with."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        messages += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.answer}]
    return messages


def _preview(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- settings ------------------------------------------------------------------------------------
@dataclass(slots=True)
class Settings:
    """What the sidebar lets a user change; each field is one config key."""

    top_k: int
    fusion: str
    condense: bool
    multi_query: int
    hyde: bool
    rerank: str
    rerank_model_path: str
    rerank_base_url: str
    rerank_model: str
    llm_provider: str
    llm_base_url: str
    llm_model: str
    llm_api_key: str
    llm_gguf_path: str

    @classmethod
    def from_config(cls, config: Any) -> "Settings":
        return cls(
            top_k=config.retrieval.top_k, fusion=config.retrieval.fusion,
            condense=config.rewrite.condense, multi_query=config.rewrite.multi_query, hyde=config.rewrite.hyde,
            rerank=config.rerank.kind, rerank_model_path=config.rerank.model_path or "",
            rerank_base_url=config.rerank.base_url or "", rerank_model=config.rerank.model or "",
            llm_provider=config.llm.provider, llm_base_url=config.llm.base_url or "", llm_model=config.llm.model,
            llm_api_key="", llm_gguf_path=config.llm.gguf_path or "",
        )

    def overrides(self) -> list[str]:
        """`section.key=value` strings for load_config; values JSON-encoded so YAML reads them back verbatim.

        Empty text fields are left out (the base config's value stands), so is an empty API key.
        """
        keys = {
            "retrieval.top_k": self.top_k, "retrieval.fusion": self.fusion,
            "rewrite.condense": self.condense, "rewrite.multi_query": self.multi_query, "rewrite.hyde": self.hyde,
            "rerank.kind": self.rerank, "rerank.model_path": self.rerank_model_path.strip(),
            "rerank.base_url": self.rerank_base_url.strip(), "rerank.model": self.rerank_model.strip(),
            "llm.provider": self.llm_provider, "llm.base_url": self.llm_base_url.strip(), "llm.model": self.llm_model.strip(),
            "llm.api_key": self.llm_api_key.strip(), "llm.gguf_path": self.llm_gguf_path.strip(),
        }
        return [f"{key}={json.dumps(value)}" for key, value in keys.items() if value != ""]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def base_overrides() -> list[str]:
    """The `--set` values `rag ui` was started with (passed to the app through the environment)."""
    raw = os.environ.get(SETTINGS_ENV, "")
    if not raw:
        return []
    try:
        values = json.loads(raw)
    except json.JSONDecodeError:
        raise RagError(f"${SETTINGS_ENV} is not a JSON list", "start the app with `rag ui`, which sets it") from None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RagError(f"${SETTINGS_ENV} must be a JSON list of strings", "start the app with `rag ui`, which sets it")
    return values


# --- indexes and uploads -------------------------------------------------------------------------
def is_index(folder: Path) -> bool:
    return (folder / MANIFEST_FILE).is_file()


def known_indexes(start: Path) -> list[Path]:
    """The start index plus its sibling index folders (e.g. everything under .rag/), start first."""
    found = [start]
    parent = start.parent
    if parent.is_dir():
        found += sorted(p for p in parent.iterdir() if p.is_dir() and p != start and is_index(p))
    return found


@dataclass(slots=True)
class IndexStats:
    sources: int
    chunks: int
    file_types: list[str]  # those present, offered by the filter widgets
    tags: list[str]


def index_stats(folder: Path) -> IndexStats | None:
    """Sources, chunks, file types and tags of an index folder; None when there is no index there yet."""
    if not is_index(folder):
        return None
    manifest = Manifest(folder / MANIFEST_FILE)
    try:
        records = manifest.sources()
        return IndexStats(
            sources=len(records),
            chunks=manifest.chunk_count(),
            file_types=sorted({record.file_type for record in records}),
            tags=sorted({tag for record in records for tag in record.tag_list}),
        )
    finally:
        manifest.close()


INDEX_LABEL_CHARS = 28  # what the sidebar's index picker shows without cutting the name off


def index_label(folder: Path, cwd: Path | None = None) -> str:
    """A short name for an index folder that fits the sidebar: relative to the working directory when inside it,
    else with ~ for home; still too long, its last two parts after "…/" (the sidebar shows the full path below)."""
    absolute = folder.resolve()
    label = absolute.as_posix()
    for base, prefix in ((Path(cwd or Path.cwd()).resolve(), ""), (Path.home().resolve(), "~/")):
        if absolute.is_relative_to(base) and absolute != base:
            label = prefix + absolute.relative_to(base).as_posix()
            break
    if len(label) > INDEX_LABEL_CHARS and len(absolute.parts) > 2:
        label = "…/" + "/".join(absolute.parts[-2:])
    return label


def sources_matching(folder: Path, filters: Filters) -> tuple[int, int] | None:
    """(sources the filters keep, sources in the index), or None when nothing is filtered or there is no index."""
    from rag.retrieve.filters import resolve

    if not filters.active or not is_index(folder):
        return None
    manifest = Manifest(folder / MANIFEST_FILE)
    try:
        allowed = resolve(filters, manifest)
        return (len(allowed.sources) if allowed is not None else 0), len(manifest.sources())
    finally:
        manifest.close()


def chosen_filters(file_types: list[str], tags: list[str], source_globs: str) -> Filters:
    """The sidebar's filter widgets as search Filters (the CLI's --type, --tag and --source).

    Globs are separated by commas or new lines, e.g. `data/hr, data/*.pdf`.
    """
    globs = tuple(glob.strip() for glob in re.split(r"[,\n]", source_globs) if glob.strip())
    return Filters(sources=globs, file_types=tuple(file_types), tags=tuple(tags))


def save_uploads(index_dir: Path, files: list[tuple[str, bytes]]) -> list[str]:
    """Write uploaded files into INDEX/uploads/ (same name = replaced) and return the paths to ingest.

    Paths are relative to the working directory when possible, so sources read like `.rag/demo/uploads/a.pdf`.
    """
    folder = index_dir / UPLOADS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files:
        safe = Path(name.replace("\\", "/")).name.lstrip(".") or "upload"
        target = folder / safe
        target.write_bytes(content)
        relative = os.path.relpath(target)
        paths.append(relative if not relative.startswith("..") else str(target.resolve()))
    return paths


class CallbackProgress(Progress):
    """Ingestion progress for a UI: calls `report(phase, done, total)` on every step."""

    def __init__(self, report: Callable[[str, int, int], None]) -> None:
        self.report = report
        self.done: dict[str, int] = {}
        self.totals: dict[str, int] = {}

    def phase(self, name: str, total: int | None) -> None:
        self.done[name], self.totals[name] = 0, total or 0
        if total:
            self.report(name, 0, total)

    def advance(self, name: str, amount: int = 1, total: int | None = None) -> None:
        if total is not None:
            self.totals[name] = self.totals.get(name, 0) + total
        self.done[name] = self.done.get(name, 0) + amount
        if self.totals.get(name):
            self.report(name, min(self.done[name], self.totals[name]), self.totals[name])


# --- evaluation runs -----------------------------------------------------------------------------
def list_runs(root: Path) -> list[Path]:
    """Run folders (written by `rag eval ... --out`) directly under `root`, newest name first."""
    if not root.is_dir():
        return []
    markers = ("run.json", "summary.json", "per_query.jsonl")
    return sorted((p for p in root.iterdir() if p.is_dir() and any((p / m).exists() for m in markers)), key=lambda p: p.name, reverse=True)


def default_runs_folder(repo_root: Path) -> Path:
    """$RAG_UI_RUNS, else ./eval/runs, else the repository's recorded runs (repo_root/eval/runs)."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV])
    local = Path("eval/runs")
    return local if local.is_dir() else repo_root / "eval" / "runs"


COMPARABLE_KINDS = ("retrieval", "answers")  # runs with per-query metrics; a judge meta-evaluation has none


def comparison_defaults(runs: list[Path], meta_of: Callable[[Path], dict[str, Any]]) -> tuple[int, int] | None:
    """Positions in `runs` (newest first) of the runs A and B the comparison starts with, or None if no pair fits.

    The newest run with per-query metrics that has an older run of the same kind and dataset is B, that older run
    A; failing that, a run with two configs is compared with itself (its first two configs). Runs of different
    kinds (an answers run and a judge meta-evaluation) are never paired.
    """
    described = []
    for position, folder in enumerate(runs):
        meta = meta_of(folder)
        dataset = meta.get("dataset")
        if meta.get("kind") in COMPARABLE_KINDS:
            described.append((position, meta.get("kind"), dataset.get("name") if isinstance(dataset, dict) else None, meta.get("configs") or []))
    for newer, (position_b, kind, dataset, _) in enumerate(described):
        for position_a, other_kind, other_dataset, _ in described[newer + 1 :]:
            if (other_kind, other_dataset) == (kind, dataset):
                return position_a, position_b
    return next(((position, position) for position, _, _, configs in described if len(configs) > 1), None)


def comparison_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """`compare_runs` output as table rows (B - A per metric)."""
    rows = []
    for metric, m in result["metrics"].items():
        rows.append({
            "metric": metric, "n": m["n"], "A": m["mean_a"], "B": m["mean_b"], "delta B-A": m["delta"],
            "CI low": m["ci_low"], "CI high": m["ci_high"], "p": m["p_value"],
            "significant": bool(m["p_value"] is not None and m["p_value"] < 0.05 and m["delta"]),
            "B better / worse / tied": f"{m['better']} / {m['worse']} / {m['tied']}",
        })
    return rows
