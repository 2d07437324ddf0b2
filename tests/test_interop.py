"""LangChain / LlamaIndex interop: retriever adapters over an index, and ingesting their Documents."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import load_config
from rag.errors import RagError
from rag.index.store import Index
from rag.ingest.external import convert_documents, ingest_documents, remove_documents
from rag.ingest.pipeline import Ingestor
from rag.retrieve.filters import Filters
from rag.types import Page
from tests.helpers import assert_index_consistent

pytest.importorskip("langchain_core", reason="the interop extra is not installed (pip install -e \".[interop]\")")
pytest.importorskip("llama_index.core", reason="the interop extra is not installed (pip install -e \".[interop]\")")

from langchain_core.documents import Document as LCDocument  # noqa: E402
from langchain_core.retrievers import BaseRetriever as LCBaseRetriever  # noqa: E402
from llama_index.core.retrievers import BaseRetriever as LIBaseRetriever  # noqa: E402
from llama_index.core.schema import Document as LIDocument  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from rag.interop import METADATA_KEYS  # noqa: E402
from rag.interop.langchain import RagRetriever  # noqa: E402
from rag.interop.llamaindex import RagLlamaRetriever  # noqa: E402

FILES = {
    "hr/vacation.md": "# Vacation\n\nNew employees get 20 vacation days per year.\n\n"
    "## Carry-over\n\nUp to 5 unused vacation days carry over to the next year.\n",
    "finance/expenses.txt": "Meals on domestic travel are reimbursed up to 75 dollars per day.\n\n"
    "Receipts are required for any expense above 25 dollars.\n",
    "eng/oncall.md": "# On-call\n\nThe on-call engineer must acknowledge a page within 15 minutes.\n",
}
VACATION_Q = "How many vacation days do new employees get per year?"


def config():
    return load_config(None, [])


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def build_index(root: Path, index_dir: Path) -> None:
    """hr/ is ingested with tag "hr"; the other folders without tags."""
    write_files(root, FILES)
    with Index.open(index_dir, config(), writable=True) as index:
        Ingestor(index, tags=["hr"]).ingest([str(root / "hr")])
        Ingestor(index).ingest([str(root / "finance"), str(root / "eng")])
        assert_index_consistent(index)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("interop")
    build_index(base / "docs", base / "index")
    return base / "docs", base / "index"


def check_spans(index_dir: Path, items: list[tuple[str, dict]]) -> None:
    """Every (text, metadata) is exactly document_text[start:end] of the stored document."""
    with Index.open(index_dir, config()) as index:
        for text, meta in items:
            assert set(meta) == set(METADATA_KEYS)
            document = index.manifest.document(meta["source_key"], meta["doc_id"])
            assert document is not None, meta
            assert document.text[meta["start"] : meta["end"]] == text
            record = index.manifest.source(meta["source_key"])
            assert record is not None and record.display_path == meta["source"]


# --- import cost ----------------------------------------------------------------------------------
def test_interop_modules_and_cli_do_not_import_the_frameworks() -> None:
    code = (
        "import sys, rag, rag.interop, rag.interop.langchain, rag.interop.llamaindex, rag.ingest.external\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'llama_index', 'chromadb')))\n"
        "rag.interop.langchain.RagRetriever\n"
        "print('langchain_core' in sys.modules, 'llama_index.core' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.splitlines() == ["[]", "True False"]
    help_run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rag", "--help"], capture_output=True, text=True, timeout=120
    )
    assert help_run.returncode == 0 and "Usage" in help_run.stdout
    imported = [line for line in help_run.stderr.splitlines() if "import time:" in line]
    assert imported and not [line for line in imported if "langchain" in line or "llama_index" in line]


# --- LangChain retriever ----------------------------------------------------------------------------
def test_langchain_retriever_returns_the_answer_first_with_exact_spans(built: tuple[Path, Path]) -> None:
    docs_root, index_dir = built
    with RagRetriever(index_dir=index_dir) as retriever:
        assert isinstance(retriever, LCBaseRetriever)
        docs = retriever.invoke(VACATION_Q)
        carry = retriever.invoke("How many unused days carry over to the next year?")
    assert docs and all(isinstance(d, LCDocument) for d in docs)
    top = docs[0]
    assert "20 vacation days" in top.page_content
    assert top.metadata["source"] == f"{docs_root}/hr/vacation.md"  # the path as given at ingest
    assert top.metadata["source_key"] == (docs_root / "hr/vacation.md").resolve().as_posix()
    assert top.metadata["heading_path"] == ["Vacation"] and top.metadata["page"] is None
    assert top.id == top.metadata["chunk_id"]
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    assert all(d.metadata["score"] == d.metadata["scores"]["fused"] for d in docs)
    assert {"dense", "bm25"} & set(top.metadata["scores"])
    assert len({d.metadata["chunk_id"] for d in docs}) == len(docs)
    assert "carry over" in carry[0].page_content and carry[0].metadata["heading_path"] == ["Vacation", "Carry-over"]
    check_spans(index_dir, [(d.page_content, d.metadata) for d in docs + carry])


def test_langchain_retriever_filters_k_and_per_call_overrides(built: tuple[Path, Path]) -> None:
    docs_root, index_dir = built
    hr_only = RagRetriever.from_index(index_dir, config=config(), filters=Filters(tags=("hr",)), k=1)
    try:
        got = hr_only.invoke("meals reimbursed dollars")  # the best match overall is in finance/
        assert len(got) == 1 and got[0].metadata["source"].endswith("hr/vacation.md")
        # per call: other filters (as a dict) and k
        finance = hr_only.invoke(VACATION_Q, filters={"sources": ["**/finance/*"]}, k=5)
        assert finance and {d.metadata["source"] for d in finance} == {f"{docs_root}/finance/expenses.txt"}
        markdown = hr_only.invoke("acknowledge a page", filters=Filters(file_types=("markdown",)), k=10)
        assert {Path(d.metadata["source"]).name for d in markdown} == {"vacation.md", "oncall.md"}
        assert hr_only.invoke(VACATION_Q, filters=Filters(tags=("no-such-tag",))) == []
        with pytest.raises(TypeError, match="unexpected"):
            hr_only.invoke(VACATION_Q, top_k=3)
    finally:
        hr_only.close()
    with pytest.raises(RagError, match="no index"):
        RagRetriever(index_dir=index_dir.parent / "missing")


def test_langchain_retriever_async_and_batch_calls_work(built: tuple[Path, Path]) -> None:
    """ainvoke and batch run the retriever on other threads: the index must still be usable."""
    _, index_dir = built
    with RagRetriever(index_dir=index_dir, k=3) as retriever:
        sync_ids = [d.id for d in retriever.invoke(VACATION_Q)]
        async_ids = [d.id for d in asyncio.run(retriever.ainvoke(VACATION_Q))]
        batched = retriever.batch([VACATION_Q, "meals reimbursed"])
    with pytest.raises(RuntimeError, match="closed"):
        retriever.invoke(VACATION_Q)
    assert sync_ids == async_ids and len(sync_ids) == 3
    assert [d.id for d in batched[0]] == sync_ids
    assert "75 dollars" in batched[1][0].page_content


# --- LlamaIndex retriever ---------------------------------------------------------------------------
def test_llamaindex_retriever_returns_scored_nodes_with_exact_spans(built: tuple[Path, Path]) -> None:
    docs_root, index_dir = built
    with RagLlamaRetriever(index_dir, k=4) as retriever:
        assert isinstance(retriever, LIBaseRetriever)
        hits = retriever.retrieve(VACATION_Q)
        async_hits = asyncio.run(retriever.aretrieve(VACATION_Q))
        retriever.filters = {"sources": [f"{docs_root}/finance/**"]}
        filtered = retriever.retrieve(VACATION_Q)
    assert 0 < len(hits) <= 4 and all(isinstance(h, NodeWithScore) and isinstance(h.node, TextNode) for h in hits)
    top = hits[0]
    assert "20 vacation days" in top.node.text
    assert top.node.id_ == top.node.metadata["chunk_id"]
    assert top.score == top.node.metadata["score"]
    assert top.node.metadata["source"] == f"{docs_root}/hr/vacation.md"
    assert (top.node.start_char_idx, top.node.end_char_idx) == (top.node.metadata["start"], top.node.metadata["end"])
    assert top.node.ref_doc_id == top.node.metadata["doc_id"]
    assert [h.node.id_ for h in async_hits] == [h.node.id_ for h in hits]
    check_spans(index_dir, [(h.node.text, h.node.metadata) for h in hits])
    assert filtered and {h.node.metadata["source"] for h in filtered} == {f"{docs_root}/finance/expenses.txt"}


def test_retriever_sees_a_reingest_made_after_it_was_built(tmp_path: Path) -> None:
    build_index(tmp_path / "docs", tmp_path / "index")
    with RagRetriever(index_dir=tmp_path / "index", k=2) as retriever:
        assert "zeppelin" not in " ".join(d.page_content for d in retriever.invoke("zeppelin hangar"))
        write_files(tmp_path / "docs", {"eng/hangar.md": "# Hangar\n\nThe zeppelin hangar is closed on Sundays.\n"})
        with Index.open(tmp_path / "index", config(), writable=True) as index:
            Ingestor(index).ingest([str(tmp_path / "docs" / "eng")])
        after = retriever.invoke("zeppelin hangar")
    assert "zeppelin hangar is closed" in after[0].page_content
    assert "bm25" in after[0].metadata["scores"]  # the lexical index was reloaded, not only the vectors
    assert after[0].metadata["source"] == f"{tmp_path}/docs/eng/hangar.md"


# --- ingesting external documents -------------------------------------------------------------------
def handbook(forklift: str = "Forklift licences must be renewed every three years.") -> list[LCDocument]:
    """What LangChain's PyPDFLoader gives: one Document per page, 0-based `page`."""
    meta = {"source": "ops/handbook.pdf", "total_pages": 3}
    return [
        LCDocument(page_content="The Leeds warehouse opens at 6 am on weekdays.", metadata={**meta, "page": 0, "title": "Ops handbook"}),
        LCDocument(page_content=forklift, metadata={**meta, "page": 1}),
        LCDocument(page_content="Visitors sign in at reception and wear a yellow badge.", metadata={**meta, "page": 2}),
    ]


def ingest(index_dir: Path, documents: list, source: str, **kwargs):
    with Index.open(index_dir, config(), writable=True) as index:
        report = ingest_documents(index, documents, source, **kwargs)
        assert index.vectors.ids() == index.manifest.all_chunk_ids()
        ids = assert_index_consistent(index)
        external = index.manifest.chunk_ids_of(source)
    return report, ids, external


def test_ingest_langchain_documents_incrementally(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    build_index(tmp_path / "docs", index_dir)
    report, all_ids, first = ingest(index_dir, handbook(), "langchain:ops", tags=["ops"])
    assert (report.new, report.changed, report.unchanged) == (1, 0, 0)
    assert report.chunks_added == len(first) == 3 and report.texts_embedded == 3
    with Index.open(index_dir, config()) as index:
        record = index.manifest.source("langchain:ops")
        assert record is not None and (record.file_type, record.display_path, record.documents, record.pages) == ("external", "langchain:ops", 3, 3)
        stored = index.manifest.document("langchain:ops", "ops/handbook.pdf#page=2")
        assert stored is not None and stored.pages == [Page(0, len(stored.text), 2)]
        assert index.manifest.document("langchain:ops", "ops/handbook.pdf#page=1").title == "Ops handbook"  # type: ignore[union-attr]
        assert {c.page for c in index.manifest.chunks_by_id(sorted(first))} == {1, 2, 3}

    with RagRetriever(index_dir=index_dir, k=3) as retriever:
        hits = retriever.invoke("How often must forklift licences be renewed?")
        assert "three years" in hits[0].page_content
        assert (hits[0].metadata["source"], hits[0].metadata["source_key"], hits[0].metadata["page"]) == ("langchain:ops", "langchain:ops", 2)
        only_external = retriever.invoke(VACATION_Q, filters=Filters(file_types=("external",)))
        assert only_external and all(d.metadata["source"] == "langchain:ops" for d in only_external)
        assert {d.metadata["source"] for d in retriever.invoke("badge", filters=Filters(tags=("ops",)))} == {"langchain:ops"}
        assert {d.metadata["source"] for d in retriever.invoke("badge", filters=Filters(sources=("langchain:*",)))} == {"langchain:ops"}
        check_spans(index_dir, [(d.page_content, d.metadata) for d in hits])

    # the same documents, loaded again: nothing to do
    again, ids_again, second = ingest(index_dir, handbook(), "langchain:ops")
    assert (again.new, again.changed, again.unchanged) == (0, 0, 1)
    assert again.texts_embedded == 0 and again.chunks_added == 0 and again.chunks_removed == 0
    assert ids_again == all_ids and second == first

    # one page changed: only its chunk is replaced and embedded
    changed, _, third = ingest(index_dir, handbook("Forklift licences must be renewed every five years."), "langchain:ops")
    assert (changed.new, changed.changed, changed.unchanged) == (0, 1, 0)
    assert (changed.chunks_added, changed.chunks_removed, changed.texts_embedded) == (1, 1, 1)
    assert len(first & third) == 2 and len(third) == 3
    with Index.open(index_dir, config()) as index:
        texts = " ".join(c.text for c in index.manifest.chunks_by_id(sorted(third)))
    assert "five years" in texts and "three years" not in texts
    with RagRetriever(index_dir=index_dir, k=1) as retriever:
        assert "five years" in retriever.invoke("How often must forklift licences be renewed?")[0].page_content

    # removal takes every chunk of the source out of the manifest, the vectors and BM25
    with Index.open(index_dir, config(), writable=True) as index:
        removed = remove_documents(index, "langchain:ops")
        assert (removed.removed, removed.chunks_removed) == (1, 3)
        assert index.manifest.source("langchain:ops") is None
        assert not (assert_index_consistent(index) & third)
        assert remove_documents(index, "langchain:ops").failed


def llama_docs() -> list:
    """LlamaIndex documents as readers make them: most get a random `id_` unless one is given."""
    return [
        LIDocument(text="Parking permits are issued by the facilities desk on floor 2.", metadata={"title": "Parking"}),
        LIDocument(text="The canteen serves vegetarian lunch on Thursdays.", metadata={"file_path": "/srv/menu.pdf", "page_label": "4"}),
        LIDocument(text="Bicycles may be stored in the basement cage.", id_="kb-bikes"),
        TextNode(text="Lost badges are replaced by security within one day.", id_="node-badges"),
    ]


def test_ingest_llamaindex_documents_incrementally(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    build_index(tmp_path / "docs", index_dir)
    report, _, first = ingest(index_dir, llama_docs(), "llamaindex:facilities")
    assert (report.new, report.chunks_added, report.texts_embedded) == (1, 4, 4)
    with Index.open(index_dir, config()) as index:
        chunks = index.manifest.chunks_by_id(sorted(first))
        by_doc = {c.doc_id: c for c in chunks}
        assert "kb-bikes" in by_doc and "node-badges" in by_doc and "/srv/menu.pdf#page=4" in by_doc
        assert by_doc["/srv/menu.pdf#page=4"].page == 4 and by_doc["kb-bikes"].page is None
        parking = next(c for c in chunks if "Parking" in c.text)
        assert parking.doc_id.startswith("text:")  # not the random uuid: stable across loads
        assert index.manifest.document("llamaindex:facilities", parking.doc_id).title == "Parking"  # type: ignore[union-attr]

    with RagLlamaRetriever(index_dir, k=3) as retriever:
        hits = retriever.retrieve("When is vegetarian lunch served in the canteen?")
        assert "vegetarian lunch" in hits[0].node.text
        assert hits[0].node.metadata["page"] == 4 and hits[0].node.metadata["source"] == "llamaindex:facilities"
        check_spans(index_dir, [(h.node.text, h.node.metadata) for h in hits])

    # loaded again (new random ids on the unnamed documents): unchanged, nothing embedded
    again, _, second = ingest(index_dir, llama_docs(), "llamaindex:facilities")
    assert (again.unchanged, again.changed, again.texts_embedded, again.chunks_added, again.chunks_removed) == (1, 0, 0, 0, 0)
    assert second == first

    edited = llama_docs()
    edited[3] = TextNode(text="Lost badges are replaced by security within two days.", id_="node-badges")
    with Index.open(index_dir, config(), writable=True) as index:  # two ingests through one open Index
        changed = ingest_documents(index, edited, "llamaindex:facilities")
        repeated = ingest_documents(index, llama_docs()[:3] + edited[3:], "llamaindex:facilities")
        third = index.manifest.chunk_ids_of("llamaindex:facilities")
        assert_index_consistent(index)
    assert (changed.changed, changed.chunks_added, changed.chunks_removed, changed.texts_embedded) == (1, 1, 1, 1)
    assert (repeated.unchanged, repeated.texts_embedded, repeated.chunks_added) == (1, 0, 0)
    assert len(first & third) == 3
    with RagLlamaRetriever(index_dir, k=1) as retriever:
        assert "two days" in retriever.retrieve("How fast are lost badges replaced?")[0].node.text


def test_convert_documents_ids_pages_titles_and_duplicates() -> None:
    docs, notes = convert_documents(
        [
            LCDocument(page_content="alpha", metadata={"id": 7, "page": 0}),
            LCDocument(page_content="beta", metadata={"source": "web/page"}),
            LCDocument(page_content="gamma", metadata={"source": "web/page"}),
            LCDocument(page_content="delta", id="lc-own-id", metadata={"page": True, "page_label": "iv"}),
            LCDocument(page_content="   ", metadata={"source": "blank"}),
            LIDocument(text="epsilon", doc_id="li-doc", metadata={"page": "2"}),
        ]
    )
    assert [(d.doc_id, d.text, d.pages) for d in docs] == [
        ("7", "alpha", [Page(0, 5, 1)]),
        ("web/page", "beta", []),
        ("web/page#2", "gamma", []),
        ("lc-own-id", "delta", []),
        ("li-doc", "epsilon", [Page(0, 7, 3)]),
    ]
    assert len(notes) == 1 and "no text" in notes[0]


def test_bad_input_fails_before_the_index_is_touched(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    build_index(tmp_path / "docs", index_dir)
    with Index.open(index_dir, config(), writable=True) as index:
        before = index.manifest.all_chunk_ids()
        with pytest.raises(TypeError, match="expected a LangChain Document"):
            ingest_documents(index, [LCDocument(page_content="fine"), {"text": "a dict"}], "langchain:x")
        with pytest.raises(ValueError, match="starts with '/'"):
            ingest_documents(index, handbook(), "/abs/path")
        assert index.manifest.get_meta("dirty") == "0"
        assert index.manifest.all_chunk_ids() == before and index.manifest.source("langchain:x") is None
