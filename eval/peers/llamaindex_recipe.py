"""LlamaIndex's standard recipe, set up the way its documentation describes.

An `IngestionPipeline` of `SentenceSplitter` (chunk size and overlap in MiniLM tokens) and
`HuggingFaceEmbedding` on the bundled MiniLM folder, writing to a Chroma vector store, with a docstore
(`DocstoreStrategy.UPSERTS`) persisted beside it so that re-running it on an unchanged corpus skips every
document; queries go through `VectorStoreIndex.from_vector_store(...).as_retriever()`.
One fix is needed at this size: the Chroma integration writes up to 41,665 vectors per call, more than the
Chroma client accepts (`get_max_batch_size()`, 5,461 here), so `add` is split at the client's limit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from peers.common import CANDIDATE_CHUNKS, CHUNK_TOKENS, OVERLAP_TOKENS, SENTENCE_TRANSFORMERS_BATCH, minilm_folder, read_corpus

COLLECTION = "scifact"


def _embedding() -> "object":
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=str(minilm_folder()), device="cpu", embed_batch_size=SENTENCE_TRANSFORMERS_BATCH)


def _vector_store(work: Path) -> "object":
    import chromadb
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(str(work / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False))
    limit = client.get_max_batch_size()

    class ClientSizedBatches(ChromaVectorStore):  # type: ignore[misc, valid-type]
        def add(self, nodes: list, **kwargs: object) -> list[str]:
            ids: list[str] = []
            for start in range(0, len(nodes), limit):
                ids += super().add(nodes[start : start + limit], **kwargs)
            return ids

    return ClientSizedBatches(chroma_collection=client.get_or_create_collection(COLLECTION))


def ingest(corpus: Path, work: Path) -> dict:
    from llama_index.core import Document
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from transformers import AutoTokenizer

    splitter = SentenceSplitter(
        chunk_size=CHUNK_TOKENS, chunk_overlap=OVERLAP_TOKENS, tokenizer=AutoTokenizer.from_pretrained(str(minilm_folder())).tokenize
    )
    pipeline = IngestionPipeline(
        transformations=[splitter, _embedding()],
        vector_store=_vector_store(work),
        docstore=SimpleDocumentStore(),
        docstore_strategy=DocstoreStrategy.UPSERTS,
    )
    storage = work / "pipeline_storage"
    if storage.exists():
        pipeline.load(str(storage))
    documents = [Document(text=doc.text, id_=doc.doc_id) for doc in read_corpus(corpus)]
    nodes = pipeline.run(documents=documents)
    pipeline.persist(str(storage))
    return {"chunks": pipeline.vector_store._collection.count(), "embedded": len(nodes)}  # type: ignore[union-attr]


def open_search(work: Path) -> Callable[[str], list[str]]:
    from llama_index.core import VectorStoreIndex

    retriever = VectorStoreIndex.from_vector_store(_vector_store(work), embed_model=_embedding()).as_retriever(
        similarity_top_k=CANDIDATE_CHUNKS
    )
    return lambda query: [hit.node.ref_doc_id for hit in retriever.retrieve(query)]
