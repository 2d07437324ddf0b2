"""`RagRetriever`: this project's hybrid retrieval as a LangChain retriever.

    from rag.interop.langchain import RagRetriever
    from rag.retrieve.filters import Filters

    retriever = RagRetriever(index_dir="index", k=4, filters=Filters(tags=("hr",)))
    docs = retriever.invoke("How many vacation days do new employees get?")
    docs[0].page_content, docs[0].metadata["source"], docs[0].metadata["page"]
    retriever.invoke("...", k=2, filters={"sources": ["data/hr/**"]})  # per-call overrides

Each `Document` has `page_content` = the chunk text, `id` = the chunk id, and metadata
`source` (the path as given at ingest), `source_key` (the manifest's key), `doc_id`, `chunk_id`,
`start`, `end` (the span in the stored document text), `page`, `heading_path`, `score` (fused)
and `scores` (per stage).

langchain-core is imported when `RagRetriever` is first looked up, not when this module is.
"""

from typing import Any

__all__ = ["RagRetriever"]


def __getattr__(name: str) -> Any:
    if name == "RagRetriever":
        cls = _define()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _define() -> type:
    from pathlib import Path
    from typing import Optional

    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field, PrivateAttr, field_validator

    from rag.config import RagConfig
    from rag.interop import IndexSearcher, as_filters, chunk_metadata
    from rag.retrieve.filters import Filters

    class RagRetriever(BaseRetriever):
        """Hybrid (dense + BM25) search over a `rag` index folder, opened read-only.

        Fields: `index_dir`, `config` (a `RagConfig`; default: built-in defaults and `RAG_*`
        environment variables), `filters` (`Filters` or a dict of its fields), `k` (results per
        query; default `retrieval.top_k`). `invoke(query, k=..., filters=...)` overrides them per call.
        Call `close()` (or use `with`) to release the index early.
        """

        model_config = ConfigDict(arbitrary_types_allowed=True)

        index_dir: Path
        config: Optional[RagConfig] = None
        filters: Filters = Field(default_factory=Filters)
        k: Optional[int] = Field(default=None, ge=1)

        _searcher: Any = PrivateAttr(default=None)

        @field_validator("filters", mode="before")
        @classmethod
        def _coerce_filters(cls, value: Any) -> Filters:
            return as_filters(value)

        def model_post_init(self, context: Any, /) -> None:
            super().model_post_init(context)
            self._searcher = IndexSearcher(self.index_dir, self.config)
            if self.config is None:
                self.config = self._searcher.config

        @classmethod
        def from_index(
            cls, index_dir: "str | Path", config: Optional[RagConfig] = None, filters: Any = None, k: Optional[int] = None, **kwargs: Any
        ) -> "RagRetriever":
            return cls(index_dir=Path(index_dir), config=config, filters=as_filters(filters), k=k, **kwargs)

        def _get_relevant_documents(
            self,
            query: str,
            *,
            run_manager: CallbackManagerForRetrieverRun,
            filters: Any = None,
            k: Optional[int] = None,
            **kwargs: Any,
        ) -> list[Document]:
            _reject_unknown(kwargs)
            chunks = self._searcher.search(query, self._filters(filters), k or self.k)
            return [_document(scored) for scored in chunks]

        async def _aget_relevant_documents(
            self,
            query: str,
            *,
            run_manager: AsyncCallbackManagerForRetrieverRun,
            filters: Any = None,
            k: Optional[int] = None,
            **kwargs: Any,
        ) -> list[Document]:
            _reject_unknown(kwargs)
            chunks = await self._searcher.asearch(query, self._filters(filters), k or self.k)
            return [_document(scored) for scored in chunks]

        def _filters(self, override: Any) -> Filters:
            return self.filters if override is None else as_filters(override)

        def close(self) -> None:
            if self._searcher is not None:
                self._searcher.close()

        def __enter__(self) -> "RagRetriever":
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    def _document(scored: Any) -> Document:
        return Document(page_content=scored.chunk.text, metadata=chunk_metadata(scored), id=scored.chunk.chunk_id)

    def _reject_unknown(kwargs: dict[str, Any]) -> None:
        unknown = set(kwargs) - {"verbose"}  # LangChain passes invoke(..., verbose=) through
        if unknown:
            raise TypeError(f"RagRetriever.invoke got unexpected argument(s) {sorted(unknown)}: use k=, filters=")

    RagRetriever.__module__ = __name__
    return RagRetriever
