"""Our implementations run the contract suites shipped in rag.testing: embedders, loaders (the span rule) and the
folder index backend (embedded Chroma and a Chroma server). Vector stores: test_vector_store_contract.py;
rerankers: test_rerank.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import EmbeddingConfig, IngestConfig, RagConfig
from rag.index.contracts import Embedder
from rag.index.embedders import build_embedder
from rag.index.embedders.cache import CachedEmbedder
from rag.index.embedders.minilm import MiniLMOnnxEmbedder
from rag.ingest.loaders import Loader, build_loader
from rag.testing import EmbedderContract, IndexBackendContract, LoaderContract
from rag.testing.fakes import HashEmbedder
from rag.testing.index_backend import contract_config
from tests.conftest import DATA
from tests.fake_openai import FakeOpenAI
from tests.helpers import fake_endpoint_config

# --- embedders ----------------------------------------------------------------------------------------


class TestMiniLMInt8(EmbedderContract):
    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls) -> Embedder:
        return MiniLMOnnxEmbedder(EmbeddingConfig())


class TestMiniLMFp32(EmbedderContract):
    batch_tolerance = 0.9999  # fp32 compute: a text's vector does not depend on its batch

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls) -> Embedder:
        return MiniLMOnnxEmbedder(EmbeddingConfig(precision="fp32"))


class TestOpenAIEndpointEmbedder(EmbedderContract):
    """Against the fake server's hashed bag of words: texts sharing words are near."""

    batch_tolerance = 0.9999

    @pytest.fixture
    def embedder(self) -> Iterator[Embedder]:
        with FakeOpenAI() as server:
            yield build_embedder(fake_endpoint_config(server.base_url).embedding)


class TestEmbeddingCache(EmbedderContract):
    """The folder backend's cache in front of the bundled model: a cached vector is the model's vector."""

    @pytest.fixture
    def embedder(self, tmp_path: Path) -> Iterator[Embedder]:
        cache = CachedEmbedder(MiniLMOnnxEmbedder(EmbeddingConfig()), tmp_path / "embeddings.sqlite")
        yield cache
        cache.close()


class TestHashEmbedder(EmbedderContract):
    """The test double the index contract suite embeds with (a plug-in by dotted path)."""

    batch_tolerance = 0.9999

    @pytest.fixture
    def embedder(self) -> Embedder:
        return HashEmbedder()


# --- loaders: every built-in file type, on the sample corpus ---------------------------------------------


def _loader(file_type: str) -> Loader:
    return build_loader(file_type, IngestConfig())


class BuiltinLoader(LoaderContract):
    file_type = ""
    sample_name = ""
    bad_bytes = b""

    @pytest.fixture
    def loader(self) -> Loader:
        return _loader(self.file_type)

    @pytest.fixture
    def sample(self) -> Path:
        return DATA / self.sample_name

    @pytest.fixture
    def unreadable(self, tmp_path: Path) -> Path:
        path = tmp_path / f"bad{Path(self.sample_name).suffix}"
        path.write_bytes(self.bad_bytes)
        return path


class TestPdfLoader(BuiltinLoader):
    file_type, sample_name, bad_bytes = "pdf", "handbook.pdf", b"%PDF-1.4\nthis is not a pdf body"


class TestDocxLoader(BuiltinLoader):
    file_type, sample_name, bad_bytes = "docx", "expense_policy.docx", b"PK\x03\x04 not a zip package"


class TestHtmlLoader(BuiltinLoader):
    file_type, sample_name, bad_bytes = "html", "install_guide.html", b"\x00\x01\x02\xff\xfe" * 50


class TestMarkdownLoader(BuiltinLoader):
    file_type, sample_name, bad_bytes = "markdown", "oncall_policy.md", b"   \n\n  "


class TestTextLoader(BuiltinLoader):
    file_type, sample_name, bad_bytes = "text", "meeting_notes_2024-06-03_product_sync.txt", b"\x00\x01\x02\xff" * 50


class TestJsonlLoader(LoaderContract):
    @pytest.fixture
    def loader(self) -> Loader:
        return _loader("jsonl")

    @pytest.fixture
    def sample(self, tmp_path: Path) -> Path:
        records = [
            {"_id": "d1", "title": "Vacation policy", "text": "New employees get twenty vacation days per year. " * 12},
            {"_id": "d2", "title": "Expense policy", "text": "Meals on domestic travel are reimbursed up to seventy five dollars. " * 9},
            {"_id": "d3", "text": "A record without a title is one plain section of text. " * 8},
        ]
        path = tmp_path / "corpus.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    @pytest.fixture
    def unreadable(self, tmp_path: Path) -> Path:
        path = tmp_path / "bad.jsonl"
        path.write_text("not json\n")
        return path


# --- the folder index backend ------------------------------------------------------------------------


class TestFolderIndex(IndexBackendContract):
    @pytest.fixture
    def index_location(self, tmp_path: Path) -> Path:
        return tmp_path / "index"


class TestFolderIndexWithChromaServer(IndexBackendContract):
    """The vectors on a `chroma run` server, everything else in the folder."""

    @pytest.fixture
    def index_location(self, tmp_path: Path) -> Path:
        return tmp_path / "index"

    @pytest.fixture
    def index_config(self, chroma_server: str) -> RagConfig:
        return contract_config(f"vector_store.url={chroma_server}")
