"""The model's graph for batches without padding: the attention-mask additions taken out.

Every layer adds the attention mask to its `batch x heads x tokens x tokens` attention scores before the softmax:
0 where a key is a real token, a large negative number where it is padding. When every text of a batch has the
same token count nothing is padded, the additions add zeros, and each is still a full pass over the largest tensor
of the layer (a tenth of the int8 model's time on AVX-512). Without them the same batch gives bit-identical states,
since `x + 0.0 == x` for every score (`tests/test_minilm_int8.py` checks the vectors).
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
