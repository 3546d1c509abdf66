"""Inference-graph rewrites of an exported generator that keep its weights exact: the same
function, laid out for the CPU kernels of ONNX Runtime and OpenVINO.

    from wkd_hf.graph_rewrites import rewrite_file

    counts = rewrite_file("g.onnx", "g.fast.onnx", ["head_s2d"])   # {"head_s2d": 1}

Rewrites (each ``(proto, size multiple) -> nodes rewritten``, in :data:`REWRITES`; only
:data:`DEFAULT_REWRITES`, the head, won side by side, see the README):

- ``head_s2d`` / ``stem_s2d``: the full-resolution 7x7 conv with few output (head) or few input
  (stem) channels becomes SpaceToDepth(2) -> a 4x4 conv at half the resolution (4x the channels;
  the 7x7 weights copied into it, the other taps zero: 1.31x the multiply-adds) ->
  DepthToSpace(2). A conv with 3 output channels fills 3 lanes of 16 of an AVX-512 register;
  after the rewrite 12. ``head_s2d4`` / ``stem_s2d4``: the same with blocks of 4 (a 3x3 conv at a
  quarter of the resolution, 16x the channels, 2.9x the multiply-adds).
- ``subpixel_up``: each ConvTranspose (3x3, stride 2, padding 1, output padding 1) becomes a
  zero Pad at the end -> a 2x2 conv with four times the output channels (its weights the
  transposed conv's, regrouped by output phase) -> DepthToSpace(2).
- ``pad_slices``: each reflect Pad becomes Slice + Concat per side (the mirrored rows and
  columns); measured slower than the Pad kernels in both runtimes.

Space-to-depth needs the conv's output height and width to be multiples of the block: true
for every input the ResNet generators accept (their ``size_multiple`` metadata is checked).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

S2D_BLOCK = 2


# ----------------------------------------------------------------------------- graph helpers
def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _initializers(graph) -> dict:
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in graph.initializer}


def constant_value(graph, name: str) -> np.ndarray | None:
    """The value of tensor ``name`` when it depends on constants only (initializers and
    Constant nodes), evaluated with ONNX's reference evaluator; None where it needs an input."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    inits = _initializers(graph)
    if name in inits:
        return inits[name]
    producer = {o: n for n in graph.node for o in n.output}
    needed, stack = [], [name]
    while stack:
        tensor = stack.pop()
        if tensor in inits or tensor == "":
            continue
        node = producer.get(tensor)
        if node is None:  # a graph input
            return None
        if node not in needed:
            needed.append(node)
            stack.extend(node.input)
    used = {i for n in needed for i in n.input}
    model = helper.make_model(helper.make_graph(
        list(reversed(needed)), "constant", [], [helper.make_tensor_value_info(name, 0, None)],
        [t for t in graph.initializer if t.name in used]))
    return ReferenceEvaluator(model).run(None, {})[0]


def _replace(graph, node, new_nodes: list, new_inits: dict) -> None:
    """Put ``new_nodes`` where ``node`` was (same position: the graph stays sorted)."""
    from onnx import numpy_helper

    index = list(graph.node).index(node)
    graph.node.remove(node)
    for offset, new in enumerate(new_nodes):
        graph.node.insert(index + offset, new)
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in new_inits.items())


def _size_multiple(proto) -> int:
    return next((int(p.value) for p in proto.metadata_props
                 if p.key == "wkd_hf.size_multiple"), 1)


# ----------------------------------------------------------------------------- space to depth
def space_to_depth_weight(weight: np.ndarray, block: int) -> np.ndarray:
    """Cout x Cin x k x k stride-1 conv weight -> the weight of the same conv on
    SpaceToDepth(block) input with DepthToSpace(block) output (ONNX's DCR channel order):
    (block^2 Cout) x (block^2 Cin) x K x K, K = ceil((k + block - 1) / block); every entry is one
    of the original weights or zero."""
    cout, cin, kh, kw = weight.shape
    kb = -(-(max(kh, kw) + block - 1) // block)
    out = np.zeros((block, block, cout, block, block, cin, kb, kb), weight.dtype)
    for p in range(block):
        for q in range(block):
            for r in range(block):
                for t in range(block):
                    for k in range(kb):
                        for m in range(kb):
                            dy, dx = block * k + r - p, block * m + t - q
                            if 0 <= dy < kh and 0 <= dx < kw:
                                out[p, q, :, r, t, :, k, m] = weight[:, :, dy, dx]
    return out.reshape(block * block * cout, block * block * cin, kb, kb)


def _s2d_conv(proto, multiple: int, select: Callable[[np.ndarray], bool], prefix: str,
              block: int) -> int:
    """Rewrite every plain stride-1 conv (no padding attribute, kernel >= 5) whose weight passes
    ``select`` as SpaceToDepth -> conv -> DepthToSpace, where every input size is a ``multiple``
    of the block (else nothing: the output size might not be one)."""
    from onnx import helper

    if multiple % block:
        return 0
    graph, count = proto.graph, 0
    for node in [n for n in proto.graph.node if n.op_type == "Conv"]:
        a, weight = _attrs(node), constant_value(graph, node.input[1])
        if weight is None or weight.ndim != 4 or min(weight.shape[2:]) < 5:
            continue
        plain = (a.get("group", 1) == 1 and set(a.get("strides", [1])) == {1}
                 and set(a.get("dilations", [1])) == {1} and not any(a.get("pads", [0]))
                 and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))
        if not plain or not select(weight):
            continue
        tag = f"wkd_{prefix}{count}"
        new_w = space_to_depth_weight(weight, block)
        kb, (kh, kw) = new_w.shape[-1], weight.shape[2:]
        extra_h, extra_w = block * (kb - 1) - (kh - 1), block * (kb - 1) - (kw - 1)
        inits_new = {f"{tag}_w": new_w,
                     f"{tag}_pads": np.array([0, 0, 0, 0, 0, 0, extra_h, extra_w], np.int64)}
        conv_in = [f"{tag}_s2d", f"{tag}_w"]
        if len(node.input) > 2 and node.input[2]:
            inits_new[f"{tag}_b"] = np.tile(constant_value(graph, node.input[2]), block * block)
            conv_in.append(f"{tag}_b")
        nodes = [helper.make_node("Pad", [node.input[0], f"{tag}_pads"], [f"{tag}_padded"],
                                  name=f"{tag}_Pad"),
                 helper.make_node("SpaceToDepth", [f"{tag}_padded"], [f"{tag}_s2d"],
                                  name=f"{tag}_S2D", blocksize=block),
                 helper.make_node("Conv", conv_in, [f"{tag}_conv"], name=f"{tag}_Conv",
                                  kernel_shape=[kb, kb]),
                 helper.make_node("DepthToSpace", [f"{tag}_conv"], list(node.output),
                                  name=f"{tag}_D2S", blocksize=block, mode="DCR")]
        _replace(graph, node, nodes, inits_new)
        count += 1
    return count


def head_s2d(proto, multiple: int, block: int = S2D_BLOCK) -> int:
    """The 7x7 convs with fewer than 8 output channels, fewer than their inputs (the head)."""
    return _s2d_conv(proto, multiple, lambda w: w.shape[0] < min(8, w.shape[1]),
                     f"head{block}_", block)


def stem_s2d(proto, multiple: int, block: int = S2D_BLOCK) -> int:
    """The 7x7 convs with fewer than 8 input channels, fewer than their outputs (the stem)."""
    return _s2d_conv(proto, multiple, lambda w: w.shape[1] < min(8, w.shape[0]),
                     f"stem{block}_", block)


# ----------------------------------------------------------------------------- transposed convs
def subpixel_weight(weight: np.ndarray) -> np.ndarray:
    """Cin x Cout x 3 x 3 ConvTranspose weight (stride 2, padding 1, output padding 1) ->
    (4 Cout) x Cin x 2 x 2 conv weight whose DepthToSpace(2, DCR) output is the transposed conv's:
    output phase (p, q) at input offset (e, f) takes tap (p + 1 - 2e, q + 1 - 2f)."""
    cin, cout = weight.shape[:2]
    out = np.zeros((2, 2, cout, cin, 2, 2), weight.dtype)
    for p in range(2):
        for q in range(2):
            for e in range(2):
                for f in range(2):
                    ky, kx = p + 1 - 2 * e, q + 1 - 2 * f
                    if 0 <= ky < 3 and 0 <= kx < 3:
                        out[p, q, :, :, e, f] = weight[:, :, ky, kx].T
    return out.reshape(4 * cout, cin, 2, 2)


def subpixel_up(proto, multiple: int = 1) -> int:
    """Every ConvTranspose 3x3 / stride 2 / padding 1 / output padding 1 -> Pad, 2x2 Conv,
    DepthToSpace(2)."""
    from onnx import helper

    graph, count = proto.graph, 0
    for node in [n for n in proto.graph.node if n.op_type == "ConvTranspose"]:
        a, weight = _attrs(node), constant_value(graph, node.input[1])
        wanted = dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
        if (weight is None or weight.shape[2:] != (3, 3) or a.get("group", 1) != 1
                or any(list(a.get(k, [])) != v for k, v in wanted.items())
                or set(a.get("dilations", [1])) != {1} or "output_shape" in a):
            continue
        tag = f"wkd_sub{count}"
        inits_new = {f"{tag}_w": subpixel_weight(weight),
                     f"{tag}_pads": np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64)}
        conv_in = [f"{tag}_padded", f"{tag}_w"]
        if len(node.input) > 2 and node.input[2]:
            inits_new[f"{tag}_b"] = np.tile(constant_value(graph, node.input[2]), 4)
            conv_in.append(f"{tag}_b")
        nodes = [helper.make_node("Pad", [node.input[0], f"{tag}_pads"], [f"{tag}_padded"],
                                  name=f"{tag}_Pad"),
                 helper.make_node("Conv", conv_in, [f"{tag}_conv"], name=f"{tag}_Conv",
                                  kernel_shape=[2, 2]),
                 helper.make_node("DepthToSpace", [f"{tag}_conv"], list(node.output),
                                  name=f"{tag}_D2S", blocksize=2, mode="DCR")]
        _replace(graph, node, nodes, inits_new)
        count += 1
    return count


# ----------------------------------------------------------------------------- reflect pads
def pad_slices(proto, multiple: int = 1) -> int:
    """Every reflect Pad of H and W only (N x C x H x W) -> per axis, Concat of the mirrored
    leading rows (Slice with step -1), the tensor, and the mirrored trailing rows."""
    from onnx import helper

    graph, count = proto.graph, 0
    for node in [n for n in proto.graph.node if n.op_type == "Pad"]:
        if _attrs(node).get("mode") not in (b"reflect", "reflect") or len(node.input) > 3:
            continue
        pads = constant_value(graph, node.input[1])
        if pads is None or len(pads) != 8 or any(pads[[0, 1, 4, 5]]):
            continue
        tag, current, nodes, inits_new = f"wkd_pad{count}", node.input[0], [], {}
        for axis, (before, after) in ((2, pads[[2, 6]]), (3, pads[[3, 7]])):
            parts = []
            for side, n in (("lo", int(before)), ("hi", int(after))):
                if n == 0:
                    continue
                # lo: rows n, n-1, ..., 1; hi: rows -2, -3, ..., -1-n (mirrored, edge excluded)
                start, end = (n, 0) if side == "lo" else (-2, -2 - n)
                key = f"{tag}_{axis}{side}"
                inits_new.update({f"{key}_s": np.array([start], np.int64),
                                  f"{key}_e": np.array([end], np.int64),
                                  f"{key}_a": np.array([axis], np.int64),
                                  f"{key}_st": np.array([-1], np.int64)})
                nodes.append(helper.make_node(
                    "Slice", [current, f"{key}_s", f"{key}_e", f"{key}_a", f"{key}_st"],
                    [key], name=f"{key}_Slice"))
                parts.append((side, key))
            if not parts:
                continue
            order = [k for s, k in parts if s == "lo"] + [current] + \
                [k for s, k in parts if s == "hi"]
            out = f"{tag}_{axis}" if axis == 2 and any(pads[[3, 7]]) else None
            target = out or list(node.output)[0]
            nodes.append(helper.make_node("Concat", order, [target], name=f"{tag}_{axis}_Concat",
                                          axis=axis))
            current = target
        _replace(graph, node, nodes, inits_new)
        count += 1
    return count


REWRITES: dict[str, Callable] = {
    "head_s2d": head_s2d, "stem_s2d": stem_s2d,
    "head_s2d4": lambda proto, multiple: head_s2d(proto, multiple, 4),
    "stem_s2d4": lambda proto, multiple: stem_s2d(proto, multiple, 4),
    "subpixel_up": subpixel_up, "pad_slices": pad_slices}
# on by default: the one that won side by side (benchmarks/rewrite_variants.py, README)
DEFAULT_REWRITES = ("head_s2d",)


def check_rewrites(names: Sequence[str] | None) -> tuple[str, ...]:
    """``names`` as a tuple (None: :data:`DEFAULT_REWRITES`); ValueError naming any unknown
    rewrite."""
    if names is None:
        return DEFAULT_REWRITES
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in REWRITES]
    if unknown:
        raise ValueError(f"unknown graph rewrite(s) {unknown}; choose from {sorted(REWRITES)}")
    return tuple(names)


def apply_rewrites(proto, names: Sequence[str], multiple: int | None = None) -> dict[str, int]:
    """Apply the named rewrites to ``proto`` in place, in order; ``multiple``: what every input
    height and width is a multiple of (default: the file's ``wkd_hf.size_multiple``, else 1).
    Returns name -> nodes rewritten."""
    multiple = _size_multiple(proto) if multiple is None else int(multiple)
    return {name: REWRITES[name](proto, multiple) for name in check_rewrites(names)}


def rewrite_file(source: str | os.PathLike, target: str | os.PathLike,
                 names: Sequence[str]) -> dict[str, int]:
    """Read ``source``, apply the rewrites, check the graph, write ``target`` (beside, then
    renamed; the rewrites done are added to ``wkd_hf.graph_rewrites``); -> name: nodes
    rewritten."""
    import onnx

    from .safe_files import write_beside

    proto = onnx.load(str(source))
    counts = apply_rewrites(proto, names)
    done = [n for n, c in counts.items() if c]
    entry = next((p for p in proto.metadata_props if p.key == "wkd_hf.graph_rewrites"), None)
    if done and entry is None:
        entry = proto.metadata_props.add()
        entry.key = "wkd_hf.graph_rewrites"
    if done:
        entry.value = ",".join([v for v in entry.value.split(",") if v] + done)
    onnx.checker.check_model(proto)
    with write_beside(Path(target), "ONNX model") as partial:
        onnx.save(proto, str(partial))
    return counts
