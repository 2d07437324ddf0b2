"""The model's graph for batches without padding: the attention-mask additions taken out.

Every layer adds the attention mask to its `batch x heads x tokens x tokens` attention scores before the softmax:
0 where a key is a real token, a large negative number where it is padding. When every text of a batch has the
same token count nothing is padded, the additions add zeros, and each is still a full pass over the largest tensor
of the layer (a tenth of the int8 model's time on AVX-512). Without them the same batch gives bit-identical states,
since `x + 0.0 == x` for every score (`tests/test_minilm_int8.py` checks the vectors).

With no mask left, each layer's attention (scores, softmax, weighted values, over heads split and merged by
Reshape/Transpose) can be one `com.microsoft.MultiHeadAttention` node: onnxruntime's fused kernel, which skips the
layout copies and the separate passes over the scores (docs/embeddings.md, "Fused attention on unpadded batches").
In fp32 it computes the same states to within 5e-6; in the int8 build the next layer quantises its inputs per batch,
so those roundings move a vector about as much as batching it with other texts does (cosine >= 0.996).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

MASK_INPUT = "attention_mask"


def without_attention_mask(model: onnx.ModelProto) -> bool:
    """Rewrite `model` in place so that no score addition depends on the attention mask; False (and `model`
    unchanged) when its graph has no such addition feeding a softmax. The mask input stays declared (unused), so
    callers feed both graphs alike."""
    graph = model.graph
    nodes = list(graph.node)
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    into_softmax = {
        index
        for index, node in enumerate(nodes)
        if node.op_type == "Add" and {nodes[user].op_type for user in consumers.get(node.output[0], [])} == {"Softmax"}
    }
    # what the mask computes on its own: the walk stops at the additions, where the mask joins the hidden states
    from_mask, frontier = {MASK_INPUT}, [MASK_INPUT]
    while frontier:
        for index in consumers.get(frontier.pop(), []):
            if index in into_softmax:
                continue
            for output in nodes[index].output:
                if output not in from_mask:
                    from_mask.add(output)
                    frontier.append(output)
    additions = [
        (index, scores[0])
        for index in sorted(into_softmax)
        if len(scores := [name for name in nodes[index].input if name not in from_mask]) == 1
    ]
    if not additions:
        return False
    for index, scores in additions:
        added = nodes[index].output[0]
        for user in consumers[added]:
            nodes[user].input[:] = [scores if name == added else name for name in nodes[user].input]
    for index, _ in sorted(additions, reverse=True):
        del graph.node[index]
    _drop_unused_nodes(graph)
    return True


def _drop_unused_nodes(graph: onnx.GraphProto) -> None:
    """Remove nodes none of whose outputs is read (the mask's own computation, once nothing adds it), then the
    constants only they read (onnxruntime would warn about each one)."""
    wanted = {output.name for output in graph.output}
    while True:
        read = wanted | {name for node in graph.node for name in node.input}
        unused = [node for node in graph.node if not any(output in read for output in node.output)]
        if not unused:
            break
        for node in unused:
            graph.node.remove(node)
    orphans = [init for init in graph.initializer if init.name not in read]
    for init in orphans:
        graph.initializer.remove(init)


def with_fused_attention(model: onnx.ModelProto, num_heads: int) -> int:
    """Rewrite `model` in place so that each attention without a mask (`softmax(q k^T * scale) v` over heads split
    by Reshape/Transpose, as the export writes it) is one `com.microsoft.MultiHeadAttention` node; returns how many
    were fused (0: `model` unchanged). Run it on the mask-free graph: with no mask to add, the fused kernel computes
    the same values up to the rounding of its own summation order."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    fused = []
    for softmax in [node for node in graph.node if node.op_type == "Softmax"]:
        scores = producers.get(softmax.input[0])
        users = consumers.get(softmax.output[0], [])
        if scores is None or scores.op_type != "MatMul" or len(users) != 1 or users[0].op_type != "MatMul":
            continue
        context = users[0]
        merged = _single_user(consumers, context.output[0], "Transpose")
        joined = merged and _single_user(consumers, merged.output[0], "Reshape")
        query, query_scale = _head_split_source(scores.input[0], producers, constants)
        key, key_scale = _head_split_source(scores.input[1], producers, constants)
        value, value_scale = _head_split_source(context.input[1], producers, constants)
        if not joined or None in (query, key, value) or value_scale != 1.0:
            continue
        attention = helper.make_node(
            "MultiHeadAttention",
            [query, key, value],
            [joined.output[0]],
            name=f"{softmax.name}_fused_attention",
            domain="com.microsoft",
            num_heads=num_heads,
            scale=float(np.float32(query_scale) * np.float32(key_scale)),
        )
        fused.append((joined, attention))
    if not fused:
        return 0
    for joined, attention in fused:
        joined.output[0] = f"{joined.output[0]}_unfused"
        graph.node.insert(list(graph.node).index(joined) + 1, attention)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _drop_unused_nodes(graph)
    return len(fused)


_LAYOUT_OPS = {"Reshape", "Transpose"}


def _head_split_source(
    name: str, producers: dict[str, onnx.NodeProto], constants: dict[str, object]
) -> tuple[str | None, float]:
    """Walk up from an attention MatMul's operand through the Reshape/Transpose nodes that split heads (and a Mul
    by a scalar constant, the export's share of the score scale) to the `batch x tokens x hidden` tensor they
    start from: its name and the scale met on the way (None when the operand is made otherwise)."""
    scale = 1.0
    last_layout = None
    while (node := producers.get(name)) is not None:
        if node.op_type in _LAYOUT_OPS:
            last_layout, name = node, node.input[0]
        elif node.op_type == "Mul" and (factor := _scalar(node, constants)) is not None:
            scale *= factor[1]
            name = factor[0]
        else:
            break
    return (name if last_layout is not None and last_layout.op_type == "Reshape" else None), scale


def _scalar(node: onnx.NodeProto, constants: dict[str, object]) -> tuple[str, float] | None:
    """(the other input, the factor) when one input of this Mul is a scalar constant."""
    for position, other in ((0, 1), (1, 0)):
        value = constants.get(node.input[position])
        if value is not None and getattr(value, "size", 0) == 1:
            return node.input[other], float(value.reshape(()))
    return None


def _single_user(consumers: dict[str, list[onnx.NodeProto]], name: str, op_type: str) -> onnx.NodeProto | None:
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 and users[0].op_type == op_type else None
