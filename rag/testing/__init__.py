"""Contract test suites that any implementation runs, ours or a user's (like `haystack.testing`).

Subclass a suite in a pytest module and provide its fixture; every `test_*` method of the suite then runs against
your implementation:

    from rag.testing import VectorStoreContract

    class TestMyStore(VectorStoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path)          # an empty store

Suites: `VectorStoreContract` (fixture `store`), `EmbedderContract` (`embedder`), `LoaderContract` (`loader`,
`sample`; optional `unreadable`), `RerankerContract` (`reranker`), `IndexBackendContract` (`backend`: the catalog,
vectors, BM25 and writer rules of a whole index). They need pytest (the `test` extra).
"""

from rag.testing.embedder import EmbedderContract
from rag.testing.index_backend import IndexBackendContract
from rag.testing.loader import LoaderContract
from rag.testing.reranker import RerankerContract
from rag.testing.vector_store import VectorStoreContract

__all__ = ["EmbedderContract", "IndexBackendContract", "LoaderContract", "RerankerContract", "VectorStoreContract"]
