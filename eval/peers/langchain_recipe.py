"""LangChain's standard RAG recipe, set up the way its documentation describes.

`RecursiveCharacterTextSplitter.from_huggingface_tokenizer` (chunk size and overlap in MiniLM tokens), the
`langchain-chroma` vector store persisted to disk, `HuggingFaceEmbeddings` on the bundled MiniLM folder, and
the indexing API (`index()` with a `SQLRecordManager`, cleanup="incremental") so that re-ingesting an
unchanged corpus skips what is already stored. `index()` writes in batches; the batch is the largest the
Chroma client accepts, which also lets sentence-transformers length-sort the most texts at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from peers.common import CANDIDATE_CHUNKS, CHUNK_TOKENS, OVERLAP_TOKENS, SENTENCE_TRANSFORMERS_BATCH, minilm_folder, read_corpus

COLLECTION = "scifact"


def _vector_store(work: Path) -> "object":
    import chromadb
    from langchain_chroma import Chroma
    from langchain_huggingface import HuggingFaceEmbeddings

    embeddings = HuggingFaceEmbeddings(
        model_name=str(minilm_folder()),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True, "batch_size": SENTENCE_TRANSFORMERS_BATCH},
    )
    client = chromadb.PersistentClient(str(work / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False))
    return Chroma(collection_name=COLLECTION, embedding_function=embeddings, client=client)


def ingest(corpus: Path, work: Path) -> dict:
    from langchain_classic.indexes import SQLRecordManager
    from langchain_core.documents import Document
    from langchain_core.indexing import index
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers import AutoTokenizer

    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        AutoTokenizer.from_pretrained(str(minilm_folder())), chunk_size=CHUNK_TOKENS, chunk_overlap=OVERLAP_TOKENS
    )
    documents = [Document(page_content=doc.text, metadata={"source": doc.doc_id}) for doc in read_corpus(corpus)]
    chunks = splitter.split_documents(documents)
    store = _vector_store(work)
    record_manager = SQLRecordManager(f"chroma/{COLLECTION}", db_url=f"sqlite:///{work / 'record_manager.sqlite'}")
    record_manager.create_schema()
    result = index(
        chunks, record_manager, store, cleanup="incremental", source_id_key="source",
        batch_size=store._client.get_max_batch_size(),  # type: ignore[attr-defined]
    )
    return {"chunks": len(chunks), "embedded": result["num_added"] + result["num_updated"], "indexing_result": dict(result)}


def open_search(work: Path) -> Callable[[str], list[str]]:
    store = _vector_store(work)
    return lambda query: [doc.metadata["source"] for doc, _ in store.similarity_search_with_score(query, k=CANDIDATE_CHUNKS)]  # type: ignore[attr-defined]
