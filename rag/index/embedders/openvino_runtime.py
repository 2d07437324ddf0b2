"""The bundled MiniLM on OpenVINO's CPU plugin (`embedding.runtime: openvino`, the `openvino` extra).

OpenVINO reads the bundled ONNX file as it is. It keeps the file's int8 weights compressed and, where the CPU
has native bfloat16 (AVX-512 BF16 or AMX), runs in bfloat16; elsewhere in fp32. Either way its vectors stay
within cosine 0.9995 of the fp32 model (docs/embeddings.md), so one model id serves every CPU, and measured on
AVX-512 it embeds 1.5x faster than onnxruntime's int8 build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.errors import RagError


class OpenVinoSession:
    """The one call MiniLMOnnxEmbedder makes of an onnxruntime session (`run`), served by OpenVINO."""

    def __init__(self, model: Path, threads: int) -> None:
        try:
            import openvino
        except ImportError:
            raise RagError("embedding.runtime is openvino but OpenVINO is not installed", "pip install 'rag[openvino]', or set embedding.runtime=onnxruntime") from None
        compiled = openvino.Core().compile_model(str(model), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        self._request = compiled.create_infer_request()
        self._output = compiled.outputs[0]

    def run(self, _outputs: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [self._request.infer(feeds)[self._output]]
