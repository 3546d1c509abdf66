"""ONNX export of wkd_hf generators, with a parity check in ONNX Runtime, and ``OnnxGenerator``
(an ONNX Runtime session that ``ImageTranslationPipeline`` can use as its generator).

    from wkd_hf import export_onnx, load_pretrained_model

    report = export_onnx(load_pretrained_model("student_dir"), "student.onnx")
    print(report.max_abs_diff)   # ONNX Runtime vs PyTorch on real photos: <= 1e-4, or it raises

``wkd-export-onnx --model student_dir --output student.onnx`` does the same from the shell.

The graph has a dynamic batch axis and dynamic height / width (every wkd_hf generator is fully
convolutional; sides must still be multiples of what the network needs: 4 for ResNets, 2**num_downs
for U-Nets). Instance norm is exported as ONNX ``InstanceNormalization`` with unit scale and zero
bias where the norm has no parameters (our generators never keep running statistics, so this is the
training-time computation PyTorch runs in eval mode too). The model's class, config and input size
rule go into the ONNX metadata, so :class:`OnnxGenerator` needs only the ``.onnx`` file.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .graph_rewrites import apply_rewrites, check_rewrites
from .models.layers import check_input_size, size_rule
from .safe_files import write_beside

DEFAULT_OPSET = 17
DEFAULT_ATOL = 1e-4
INSTANCE_NORM = "onnx"  # how export_onnx writes instance norm (see instance_norm_as_layer_norm)
INPUT_NAME, OUTPUT_NAME = "image", "translated"


class OnnxParityError(ValueError):
    """ONNX Runtime's output differs from PyTorch's by more than the tolerance."""


@dataclasses.dataclass
class OnnxExportReport:
    """What :func:`export_onnx` wrote and how close ONNX Runtime came to PyTorch."""

    path: str
    opset: int
    dynamic_batch: bool
    dynamic_size: bool
    max_abs_diff: float | None  # vs PyTorch in float64 (see check_parity)
    max_abs_diff_fp32: float | None  # vs PyTorch in float32
    checked_shapes: list[tuple[int, ...]]
    atol: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def require(module: str, what: str):
    """``module`` imported, or an ImportError saying that ``what`` needs it and how to install it
    (the ``deploy`` extra), instead of a bare "No module named"."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{what} needs {module}, which is not installed: pip install "
                          f"'wkd_hf[deploy]' (or pip install {module})") from err


# ----------------------------------------------------------------------------- test images
def real_images(count: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """``count`` photos as N x 3 x H x W in [-1, 1]: scikit-image's sample photos (astronaut,
    coffee, chelsea, ...) resized, or, without scikit-image, smooth synthetic scenes (gradients,
    discs and edges; not noise, whose statistics no generator was trained on)."""
    import torch.nn.functional as F

    photos = []
    try:
        from skimage import data as skdata

        for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
            if len(photos) >= count:
                break
            array = getattr(skdata, name)()
            if array.ndim == 3 and array.shape[2] == 3:
                photos.append(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1))
    except Exception:  # noqa: BLE001 - scikit-image missing or its data unavailable
        photos = []
    generator = torch.Generator().manual_seed(seed)
    while len(photos) < count:
        yy, xx = torch.meshgrid(torch.linspace(0, 1, 256), torch.linspace(0, 1, 256),
                                indexing="ij")
        base = torch.rand(3, 1, 1, generator=generator)
        scene = base * (0.5 + 0.5 * yy) + (1 - base) * 0.5 * xx
        cx, cy, r = torch.rand(3, generator=generator) * 0.5 + 0.25
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < (r / 3) ** 2).float()
        scene = scene * (1 - disc) + torch.rand(3, 1, 1, generator=generator) * disc
        photos.append((scene.clamp(0, 1) * 255).to(torch.uint8))
    batch = [F.interpolate(p[None].float() / 255, size=(height, width), mode="bilinear",
                           antialias=True, align_corners=False)[0] for p in photos[:count]]
    return torch.stack(batch).clamp(0, 1) * 2 - 1


# ----------------------------------------------------------------------------- export
def _config_dict(model: nn.Module) -> dict:
    config = getattr(model, "config", None)
    if config is None:
        return {}
    return {k: v for k, v in dict(config).items() if not k.startswith("_") or k == "_class_name"}


def _fits(size: int, multiple: int, minimum: int) -> int:
    return max(minimum, -(-size // multiple) * multiple)


def export_onnx(model: nn.Module, path: str | os.PathLike, resolution: int = 256,
                batch_size: int = 1, opset: int = DEFAULT_OPSET, dynamic_batch: bool = True,
                dynamic_size: bool = True, check: bool = True, atol: float = DEFAULT_ATOL,
                metadata: dict[str, Any] | None = None, exporter: str = "torchscript",
                instance_norm: str = INSTANCE_NORM, graph_rewrites=None) -> OnnxExportReport:
    """Export a wkd_hf generator to ONNX at ``path`` and check it against PyTorch.

    Args:
        model: a generator (any dtype or device: a float32 CPU copy is exported).
        path: the ``.onnx`` file to write (its folder is created).
        resolution: the example input's side (rounded up to what the network needs).
        batch_size: the example input's batch.
        opset: ONNX opset (17: InstanceNormalization, Pad with reflect mode).
        dynamic_batch / dynamic_size: make the batch / height and width axes dynamic.
        check: run the parity check in ONNX Runtime (``onnxruntime``) and raise
            ``OnnxParityError`` if the max abs difference to PyTorch (evaluated in float64, see
            :func:`check_parity`) exceeds ``atol``. It runs on
            real photos at the export size and, where the axes are dynamic, on another batch and a
            non-square size.
        metadata: extra string key/values for the model's metadata (e.g. resolution, direction).
        exporter: ``"torchscript"`` (``torch.onnx.export(dynamo=False)``: ~1 s, a plain graph) or
            ``"dynamo"`` (torch.export based; slower to export, same operators).
        instance_norm: ``"onnx"`` (ONNX's ``InstanceNormalization``; the default, fastest in our
            measurements) or ``"layer_norm"`` (Reshape + ``LayerNormalization`` + Reshape, see
            :func:`instance_norm_as_layer_norm`).
        graph_rewrites: :mod:`wkd_hf.graph_rewrites` names (None: its default; ``()``: none).

    Returns:
        an :class:`OnnxExportReport` (``max_abs_diff`` None without ``check``).
    """
    if exporter not in ("torchscript", "dynamo"):
        raise ValueError(f"exporter must be 'torchscript' or 'dynamo'; got {exporter!r}")
    if instance_norm not in ("layer_norm", "onnx"):
        raise ValueError(f"instance_norm must be 'layer_norm' or 'onnx'; got {instance_norm!r}")
    rewrites = check_rewrites(graph_rewrites)
    require("onnx", "ONNX export")
    if check:
        require("onnxruntime", "the ONNX parity check")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    net = copy.deepcopy(model).float().cpu().eval()
    in_channels = int(_config_dict(net).get("in_channels", 3))
    multiple, minimum = size_rule(net)
    side = _fits(resolution, multiple, minimum)
    example = real_images(batch_size, side, side)
    if in_channels != 3:
        example = example.mean(1, keepdim=True).expand(-1, in_channels, -1, -1).contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with write_beside(path, "ONNX model") as partial:  # a failed export or check keeps `path`
        _export(net, example, partial, opset, dynamic_batch, dynamic_size, exporter)
        _write_metadata(partial, net, multiple, minimum, metadata or {},
                        layer_norm=instance_norm == "layer_norm", rewrites=rewrites)
        report = OnnxExportReport(str(path), opset, dynamic_batch, dynamic_size, None, None, [],
                                  atol)
        if check:
            shapes = [tuple(example.shape)]
            if dynamic_batch:
                shapes.append((batch_size + 1, *example.shape[1:]))
            if dynamic_size:
                shapes.append((1, in_channels, side + multiple,
                               _fits(side * 3 // 2, multiple, minimum)))
            stats: dict = {}
            try:
                report.max_abs_diff = check_parity(net, partial, shapes, atol, stats)
            except OnnxParityError as error:  # name the file the user asked for
                raise OnnxParityError(str(error).replace(str(partial), str(path))) from None
            report.max_abs_diff_fp32 = stats["fp32"]
            report.checked_shapes = shapes
    return report


def _export(net: nn.Module, example: torch.Tensor, path: Path, opset: int, dynamic_batch: bool,
            dynamic_size: bool, exporter: str) -> None:
    """``torch.onnx.export`` to ``path``; its errors become one short line (the exporter's
    message carries the whole TorchScript graph)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "torchscript":
                axes = {0: "batch"} if dynamic_batch else {}
                axes.update({2: "height", 3: "width"} if dynamic_size else {})
                dynamic_axes = {INPUT_NAME: axes, OUTPUT_NAME: axes} if axes else None
                torch.onnx.export(net, (example,), str(path), input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], opset_version=opset,
                                  dynamic_axes=dynamic_axes, do_constant_folding=True,
                                  dynamo=False)
            else:
                dims = {}
                if dynamic_batch:
                    dims[0] = torch.export.Dim("batch")
                if dynamic_size:
                    dims.update({2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO})
                torch.onnx.export(net, (example,), str(path), input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], opset_version=opset,
                                  dynamic_shapes=(dims,) if dims else None, dynamo=True,
                                  verbose=False)
    except Exception as error:  # noqa: BLE001 - the exporter's own errors, shortened
        detail = (str(error).split(" [Caused by")[0].strip().splitlines() or [""])[0][:300]
        raise ValueError(f"torch.onnx.export ({exporter}) failed at opset {opset}: "
                         f"{type(error).__name__}: {detail} (the default --opset "
                         f"{DEFAULT_OPSET} exports these generators)") from None


def instance_norm_as_layer_norm(proto) -> int:
    """Rewrite every ``InstanceNormalization`` of an ONNX model in place as Reshape to
    N x C x (H*W), ``LayerNormalization`` over the last axis, [per-channel Mul / Add where the
    norm has a non-trivial scale / bias], Reshape back: the same computation. ONNX Runtime's CPU
    LayerNormalization uses the thread pool (InstanceNormalization does not) but measured slower
    on our generators (benchmarks/README.md). Returns the number of nodes rewritten."""
    from onnx import numpy_helper

    graph = proto.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                   if n.op_type == "Constant" and n.attribute[0].name == "value"})
    shared = {"wkd_ln_flat": np.array([0, 0, -1], np.int64), "wkd_ln_one": np.ones(1, np.float32),
              "wkd_ln_zero": np.zeros(1, np.float32)}
    nodes, count = [], 0
    for node in graph.node:
        plain = node.op_type != "InstanceNormalization" or node.domain not in ("", "ai.onnx")
        if plain or not set(node.input[1:]) <= set(consts):  # computed scale / bias: keep
            nodes.append(node)
            continue
        nodes += _layer_norm_nodes(node, f"wkd_ln{count}", consts, shared)
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in shared.items())
    return count


def _layer_norm_nodes(node, tag: str, consts: dict, shared: dict) -> list:
    """The nodes replacing one InstanceNormalization (new constants go into ``shared``)."""
    from onnx import helper

    x, scale, bias = node.input
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    nodes = [helper.make_node("Shape", [x], [f"{tag}_shape"], name=f"{tag}_Shape"),
             helper.make_node("Reshape", [x, "wkd_ln_flat"], [f"{tag}_flat"], name=f"{tag}_Flat"),
             helper.make_node("LayerNormalization", [f"{tag}_flat", "wkd_ln_one", "wkd_ln_zero"],
                              [f"{tag}_norm"], name=f"{tag}_LN", axis=-1, epsilon=eps)]
    last = f"{tag}_norm"
    for op, name, neutral in (("Mul", scale, 1.0), ("Add", bias, 0.0)):
        if not np.all(consts[name] == neutral):
            shared[f"{tag}_{op}"] = consts[name].astype(np.float32).reshape(-1, 1)
            nodes.append(helper.make_node(op, [last, f"{tag}_{op}"], [f"{tag}_{op}_out"],
                                          name=f"{tag}_{op}"))
            last = f"{tag}_{op}_out"
    nodes.append(helper.make_node("Reshape", [last, f"{tag}_shape"], list(node.output),
                                  name=f"{tag}_Unflat"))
    return nodes


def _write_metadata(path: Path, net: nn.Module, multiple: int, minimum: int,
                    extra: dict[str, Any], layer_norm: bool = False, rewrites=()) -> None:
    """Add the wkd_hf metadata (after the ``layer_norm`` form and the graph rewrites) in place."""
    import onnx

    proto = onnx.load(str(path))
    if layer_norm:
        instance_norm_as_layer_norm(proto)
    done = ",".join(k for k, n in apply_rewrites(proto, rewrites, multiple).items() if n)
    values = {"wkd_hf.class_name": type(net).__name__,
              "wkd_hf.config": json.dumps(_config_dict(net), sort_keys=True, default=str),
              "wkd_hf.size_multiple": str(multiple), "wkd_hf.size_minimum": str(minimum)}
    values.update({f"wkd_hf.{k}": str(v) for k, v in extra.items() if v is not None})
    values.update({"wkd_hf.graph_rewrites": done} if done else {})
    del proto.metadata_props[:]
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def reference_outputs(model: nn.Module, shapes: Sequence[tuple[int, ...]]):
    """Per N x C x H x W shape: (shape, real photos as a float32 N x C x H x W tensor, the model's
    output in float64 as an array), the reference every runtime's parity check compares with."""
    net64 = copy.deepcopy(model).float().cpu().eval().double()
    for shape in shapes:
        images = real_images(shape[0], shape[2], shape[3])
        if shape[1] != 3:
            images = images.mean(1, keepdim=True).expand(-1, shape[1], -1, -1).contiguous()
        with torch.inference_mode():
            yield shape, images, net64(images.double()).numpy()


def check_parity(model: nn.Module, onnx_path: str | os.PathLike,
                 shapes: Sequence[tuple[int, ...]], atol: float = DEFAULT_ATOL,
                 stats: dict | None = None) -> float:
    """Max abs difference between the ONNX file run by ONNX Runtime (all graph optimisations, as
    it is used) and PyTorch, over real photos of each shape; ``OnnxParityError`` above ``atol``.

    The PyTorch reference is the same network evaluated in float64: float32 PyTorch is itself an
    approximation (on GAN Compression's trained horse2zebra student it is 7.5e-5 away from the
    float64 result, ONNX Runtime 5.2e-5; the two float32 results are 1.1e-4 apart, two rounding
    errors added). The float32-vs-float32 difference is reported too, in ``stats["fp32"]``."""
    session = make_session(onnx_path, num_threads=None)
    net = copy.deepcopy(model).float().cpu().eval()  # the caller's model stays as it is
    worst, worst32 = 0.0, 0.0
    for shape, images, expected in reference_outputs(net, shapes):
        with torch.inference_mode():
            expected32 = net(images).numpy()
        got = session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]
        if got.shape != expected.shape:
            raise OnnxParityError(f"ONNX Runtime gave shape {got.shape} for input {shape}; "
                                  f"PyTorch {expected.shape}")
        diff = float(np.abs(got.astype(np.float64) - expected).max())
        worst, worst32 = max(worst, diff), max(worst32, float(np.abs(got - expected32).max()))
        if not diff <= atol:
            raise OnnxParityError(
                f"{onnx_path}: ONNX Runtime differs from PyTorch by {diff:.3g} (max abs, input "
                f"{shape}) > {atol:g}; the export is wrong, do not use it")
    if stats is not None:
        stats["fp32"] = worst32
    return worst


# ----------------------------------------------------------------------------- runtime
def make_session(path: str | os.PathLike, num_threads: int | None = None,
                 optimization: str = "all", device: str = "cpu",
                 sequential: bool = True, spinning: bool | None = None,
                 profile_prefix: str | None = None):
    """An ONNX Runtime ``InferenceSession``.

    Args:
        num_threads: intra-op threads (None: ONNX Runtime's default, one per core).
        optimization: graph optimisation level, ``"none"``, ``"basic"``, ``"extended"`` or
            ``"all"`` (``all`` adds the NCHWc layout transformation on x86).
        device: ``"cpu"`` or ``"cuda"`` (CUDAExecutionProvider where onnxruntime-gpu has it).
        spinning: intra-op threads busy-wait for work (``session.intra_op.allow_spinning``);
            None keeps ONNX Runtime's default (on).
        profile_prefix: turn on ONNX Runtime's profiler, writing ``<prefix>_<date>.json``
            (``session.end_profiling()`` returns the path).
    """
    ort = require("onnxruntime", "running an ONNX model (ONNX Runtime)")
    levels = {"none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise ValueError(f"optimization must be one of {sorted(levels)}; got {optimization!r}")
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[optimization]
    options.log_severity_level = 3
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    if sequential:
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError("--backend onnx on CUDA needs onnxruntime-gpu "
                             "(pip install onnxruntime-gpu); this onnxruntime has "
                             f"{ort.get_available_providers()}")
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), options, providers=providers)


def parse_metadata(path: str | os.PathLike, metadata: dict[str, str]) -> tuple[dict, int, int]:
    """(config, size_multiple, size_minimum) from a file's ``wkd_hf.*`` metadata (prefix
    removed); ValueError naming ``path`` when they are unreadable or invalid."""
    try:
        config = json.loads(metadata.get("config", "{}"))
        multiple = int(metadata.get("size_multiple", 1))
        minimum = int(metadata.get("size_minimum", 1))
    except ValueError as error:
        raise ValueError(f"{path}: unreadable wkd_hf metadata ({error}); export the model "
                         "again") from None
    if multiple < 1 or minimum < 1 or not isinstance(config, dict):
        raise ValueError(f"{path}: invalid wkd_hf metadata (size_multiple {multiple}, "
                         f"size_minimum {minimum}; both must be >= 1, config a JSON object); "
                         "export the model again")
    return config, multiple, minimum


class OnnxGenerator:
    """An exported generator run by ONNX Runtime, usable where a wkd_hf generator is called:
    ``OnnxGenerator("g.onnx")(x)`` maps an N x C x H x W float tensor in [-1, 1] to the
    translated tensor (on the CPU, float32). ``config`` and ``check_input_size`` come from the
    metadata :func:`export_onnx` wrote."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None,
                 optimization: str = "all", device: str = "cpu") -> None:
        self.path = str(path)
        self.session = make_session(path, num_threads, optimization, device)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k.removeprefix("wkd_hf."): v for k, v in meta.items()}
        self.config, self._multiple, self._minimum = parse_metadata(path, self.metadata)
        self.class_name = self.metadata.get("class_name", "unknown")
        self._input = self.session.get_inputs()[0].name

    def check_input_size(self, height: int, width: int) -> None:
        check_input_size(f"{self.class_name} (ONNX)", height, width, self._multiple,
                         self._minimum)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().float().cpu().contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self._input: array})[0])

    def eval(self) -> OnnxGenerator:
        return self


def onnx_pipeline(pipeline, num_threads: int | None = None, device: str = "cpu",
                  directory: str | os.PathLike | None = None):
    """An ``ImageTranslationPipeline`` running ``pipeline``'s generator in ONNX Runtime (exported,
    with the parity check, into ``directory``, or a temporary folder removed once the session
    holds the model)."""
    with scratch_folder(directory, "wkd_onnx_") as folder:
        path = folder / "generator.onnx"
        export_onnx(pipeline.generator, path, resolution=pipeline.resolution or 256,
                    metadata={"resolution": pipeline.resolution, "direction": pipeline.direction})
        generator = OnnxGenerator(path, num_threads, device=device)
    return type(pipeline)(generator, resolution=pipeline.resolution, direction=pipeline.direction)


@contextlib.contextmanager
def scratch_folder(directory: str | os.PathLike | None, prefix: str):
    """``directory`` itself, or a temporary folder removed on exit (a runtime that has read the
    model no longer needs its file)."""
    if directory is not None:
        yield Path(directory)
        return
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as folder:
        yield Path(folder)
