"""`RagLlamaRetriever`: this project's hybrid retrieval as a LlamaIndex retriever.

    from rag.interop.llamaindex import RagLlamaRetriever

    retriever = RagLlamaRetriever("index", k=4)
    for hit in retriever.retrieve("How many vacation days do new employees get?"):
        hit.node.text, hit.score, hit.node.metadata["source"]

Each result is `NodeWithScore(TextNode(text=chunk text, id_=chunk id, metadata=...), score=fused score)`
with the same metadata as the LangChain adapter (`source`, `source_key`, `doc_id`, `chunk_id`, `start`,
`end`, `page`, `heading_path`, `score`, `scores`); `start_char_idx`/`end_char_idx` hold the span and
`node.ref_doc_id` the document id. Of the metadata, LlamaIndex's synthesizers show an LLM only
`source`, `page` and `heading_path` (when set); none of it is embedded.

llama-index-core is imported when `RagLlamaRetriever` is first looked up, not when this module is.
"""

from typing import Any

__all__ = ["RagLlamaRetriever"]

_SHOWN_TO_LLM = ("source", "page", "heading_path")


def __getattr__(name: str) -> Any:
    if name == "RagLlamaRetriever":
        cls = _define()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _define() -> type:
    from pathlib import Path

    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode

    from rag.config import RagConfig
    from rag.interop import METADATA_KEYS, IndexSearcher, as_filters, chunk_metadata
    from rag.retrieve.filters import Filters

    hidden_from_llm = [key for key in METADATA_KEYS if key not in _SHOWN_TO_LLM]

    class RagLlamaRetriever(BaseRetriever):
        """Hybrid (dense + BM25) search over a `rag` index folder, opened read-only.

        `config`: a `RagConfig` (default: built-in defaults and `RAG_*` environment variables);
        `filters`: `Filters` or a dict of its fields; `k`: results per query (default
        `retrieval.top_k`). `filters` and `k` may be reassigned between queries.
        Call `close()` (or use `with`) to release the index early.
        """

        def __init__(
            self,
            index_dir: "str | Path",
            config: "RagConfig | None" = None,
            filters: "Filters | dict | None" = None,
            k: "int | None" = None,
            callback_manager: "CallbackManager | None" = None,
            verbose: bool = False,
        ) -> None:
            if k is not None and k < 1:
                raise ValueError(f"k must be at least 1, not {k}")
            self.filters = as_filters(filters)
            self.k = k
            self._searcher = IndexSearcher(index_dir, config)
            self.index_dir = self._searcher.index_dir
            self.config = self._searcher.config
            super().__init__(callback_manager=callback_manager, verbose=verbose)

        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            return [_node(scored) for scored in self._searcher.search(query_bundle.query_str, self.filters, self.k)]

        async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            chunks = await self._searcher.asearch(query_bundle.query_str, self.filters, self.k)
            return [_node(scored) for scored in chunks]

        def close(self) -> None:
            self._searcher.close()

        def __enter__(self) -> "RagLlamaRetriever":
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    def _node(scored: Any) -> NodeWithScore:
        chunk = scored.chunk
        node = TextNode(
            text=chunk.text,
            id_=chunk.chunk_id,
            metadata=chunk_metadata(scored),
            start_char_idx=chunk.start,
            end_char_idx=chunk.end,
            excluded_llm_metadata_keys=hidden_from_llm + _empty(chunk),
            excluded_embed_metadata_keys=list(METADATA_KEYS),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=chunk.doc_id)},
        )
        return NodeWithScore(node=node, score=float(scored.score))

    def _empty(chunk: Any) -> list[str]:
        """Keys with nothing to say are not shown to the LLM either (no "page: None")."""
        return (["page"] if chunk.page is None else []) + ([] if chunk.heading_path else ["heading_path"])

    RagLlamaRetriever.__module__ = __name__
    return RagLlamaRetriever
