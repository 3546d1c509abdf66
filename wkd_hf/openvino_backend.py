"""OpenVINO as an inference backend for exported wkd_hf generators, beside ONNX Runtime.

    from wkd_hf.openvino_backend import OpenVinoGenerator, openvino_pipeline

    gen = OpenVinoGenerator("student.onnx", num_threads=2)            # float32, as exported
    gen16 = OpenVinoGenerator("student.onnx", precision="bf16")       # bf16 compute (AMX/AVX-512)
    pipe = openvino_pipeline(ImageTranslationPipeline.from_pretrained("student_dir"))

OpenVINO reads the ``.onnx`` file :func:`wkd_hf.export_onnx` writes (no separate IR), including
the int8 QDQ files of :mod:`wkd_hf.quantize`. The precision is set explicitly
(``INFERENCE_PRECISION_HINT``): on CPUs with AMX or avx512_bf16 OpenVINO's default is bf16, which
would silently change the numbers; here float32 is the default and bf16 is asked for by name.
:func:`check_openvino_parity` holds OpenVINO's float32 output to PyTorch's (float64 reference) as
``export_onnx`` does for ONNX Runtime.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from .models.layers import check_input_size
from .onnx_export import (
    export_onnx,
    onnx_pipeline,
    parse_metadata,
    reference_outputs,
    scratch_folder,
)

# OpenVINO's CPU kernels sum in other orders than PyTorch: on GAN Compression's trained
# horse2zebra student its float32 output is 2.0e-4 from the float64 reference (ONNX Runtime
# 5.0e-5, PyTorch float32 1.3e-5). 1e-3 is an eighth of one 8-bit output level; bf16 compute
# (OpenVINO's default on AMX CPUs) lands near 1e-2 and fails it.
DEFAULT_ATOL = 1e-3
PRECISIONS = {"f32": "f32", "float32": "f32", "bf16": "bf16", "bfloat16": "bf16"}


class OpenVinoParityError(ValueError):
    """OpenVINO's float32 output differs from PyTorch's by more than the tolerance."""


class _SignalStack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@contextmanager
def keep_signal_stack() -> Iterator[None]:
    """Restore the calling thread's alternate signal stack after OpenVINO code: compiling a model
    installs one of its own, which is unmapped once the model is freed, and the next signal with
    a Python handler (SIGTERM's stop, Ctrl-C) then crashes the process (SIGSEGV) instead of
    stopping it. Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    before = _SignalStack()
    libc.sigaltstack(None, ctypes.byref(before))
    try:
        yield
    finally:
        libc.sigaltstack(ctypes.byref(before), None)


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _require_openvino():
    try:
        import openvino
    except ImportError as err:
        raise ImportError("the openvino backend needs OpenVINO: pip install 'wkd_hf[deploy]' "
                          "(or pip install openvino)") from err
    return openvino


def cpu_capabilities() -> list[str]:
    """OpenVINO's CPU plugin capabilities (e.g. ``FP32``, ``BF16``, ``INT8``): what this CPU
    can run natively."""
    with keep_signal_stack():
        return list(_require_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def compile_openvino(path: str | os.PathLike, num_threads: int | None = None,
                     precision: str = "f32", latency_hint: bool = True,
                     cache_dir: str | os.PathLike | None = None,
                     shape: Sequence[int] | None = None):
    """An OpenVINO ``CompiledModel`` of an ``.onnx`` (or ``.xml``) file on the CPU.

    Args:
        num_threads: ``INFERENCE_NUM_THREADS`` (None: OpenVINO's default, all cores).
        precision: ``"f32"`` or ``"bf16"`` (``INFERENCE_PRECISION_HINT``; int8 comes from the
            file's QDQ nodes, not from here).
        latency_hint: ``PERFORMANCE_HINT=LATENCY`` (one stream: batch-1 latency).
        cache_dir: OpenVINO's compiled-model cache (``CACHE_DIR``), e.g. next to the weights:
            later loads skip compilation.
        shape: a static N x C x H x W input shape to compile for (None: the file's dynamic one).
    """
    ov = _require_openvino()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}; got {precision!r}")
    config = {"INFERENCE_PRECISION_HINT": PRECISIONS[precision]}
    if num_threads is not None:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    if latency_hint:
        config["PERFORMANCE_HINT"] = "LATENCY"
    if cache_dir is not None:
        config["CACHE_DIR"] = str(cache_dir)
    with keep_signal_stack():
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except RuntimeError as err:  # its first line is only "Exception from core.cpp:84:"
            detail = [line.strip() for line in str(err).splitlines() if line.strip()][-1:]
            raise ValueError(f"OpenVINO cannot read {path} ({''.join(detail)[:200]}): pass an "
                             ".onnx file that wkd-export-onnx wrote (export it again if it was "
                             "cut short or copied incompletely)") from None
        if shape is not None:
            model.reshape(list(shape))
        return core.compile_model(model, "CPU", config)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``wkd_hf.*`` metadata :func:`wkd_hf.export_onnx` wrote, without the prefix."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key.removeprefix("wkd_hf."): p.value for p in proto.metadata_props
            if p.key.startswith("wkd_hf.")}


class OpenVinoGenerator:
    """An exported generator run by OpenVINO on the CPU, usable where a wkd_hf generator is
    called: ``OpenVinoGenerator("g.onnx")(x)`` maps N x C x H x W float in [-1, 1] to the
    translated N x C' x H x W float32 tensor. ``config`` / ``check_input_size`` come from the
    file's metadata, as for :class:`wkd_hf.onnx_export.OnnxGenerator`. ``static_shapes``:
    compile for each new input shape (a static graph; faster in medians, not clearly, see the
    README's graph-rewrite table) instead of once for any shape."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None,
                 precision: str = "f32", cache_dir: str | os.PathLike | None = None,
                 static_shapes: bool = False) -> None:
        self.path, self.precision = str(path), PRECISIONS.get(precision, precision)
        self.static_shapes, self.shape = static_shapes, None
        self._settings = {"num_threads": num_threads, "precision": precision,
                          "cache_dir": cache_dir}
        self.compiled = compile_openvino(path, num_threads, precision, cache_dir=cache_dir)
        self.request = self.compiled.create_infer_request()
        self.metadata = read_metadata(path) if self.path.endswith(".onnx") else {}
        self.config, self._multiple, self._minimum = parse_metadata(path, self.metadata)
        self.class_name = self.metadata.get("class_name", "unknown")

    def check_input_size(self, height: int, width: int) -> None:
        check_input_size(f"{self.class_name} (OpenVINO)", height, width, self._multiple,
                         self._minimum)

    def run(self, array: np.ndarray) -> np.ndarray:
        """N x C x H x W float32 array -> output array (a copy)."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        if self.static_shapes and array.shape != self.shape:
            self.compiled = compile_openvino(self.path, shape=array.shape, **self._settings)
            self.request, self.shape = self.compiled.create_infer_request(), array.shape
        self.request.infer({0: array})
        return self.request.get_output_tensor(0).data.copy()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.run(x.detach().float().cpu().numpy()))

    def eval(self) -> OpenVinoGenerator:
        return self


def check_openvino_parity(model: nn.Module, onnx_path: str | os.PathLike,
                          shapes: Sequence[tuple[int, ...]], atol: float = DEFAULT_ATOL) -> float:
    """Max abs difference of OpenVINO (float32 precision) to PyTorch in float64 over real photos
    of each N x C x H x W shape; ``OpenVinoParityError`` above ``atol``."""
    generator = OpenVinoGenerator(onnx_path, precision="f32")
    worst = 0.0
    for shape, images, expected in reference_outputs(model, shapes):
        got = generator.run(images.numpy())
        if got.shape != expected.shape:
            raise OpenVinoParityError(f"OpenVINO gave shape {got.shape} for input {shape}; "
                                      f"PyTorch {expected.shape}")
        diff = float(np.abs(got.astype(np.float64) - expected).max())
        worst = max(worst, diff)
        if not diff <= atol:
            raise OpenVinoParityError(
                f"{onnx_path}: OpenVINO differs from PyTorch by {diff:.3g} (max abs, input "
                f"{shape}) > {atol:g}; do not use this runtime for the model")
    return worst


def openvino_pipeline(pipeline, num_threads: int | None = None, precision: str = "f32",
                      directory: str | os.PathLike | None = None,
                      atol: float = DEFAULT_ATOL):
    """An ``ImageTranslationPipeline`` running ``pipeline``'s generator in OpenVINO: exported to
    ONNX (ONNX Runtime parity check) into ``directory`` or a temporary folder, then checked in
    OpenVINO at float32 against PyTorch before it is compiled at ``precision``."""
    _require_openvino()
    with scratch_folder(directory, "wkd_openvino_") as folder:  # removed once compiled
        path = folder / "generator.onnx"
        report = export_onnx(pipeline.generator, path, resolution=pipeline.resolution or 256,
                             metadata={"resolution": pipeline.resolution,
                                       "direction": pipeline.direction})
        check_openvino_parity(pipeline.generator, path, report.checked_shapes, atol)
        generator = OpenVinoGenerator(path, num_threads, precision)
    return type(pipeline)(generator, resolution=pipeline.resolution, direction=pipeline.direction)


def pipeline_on_backend(pipeline, backend: str, num_threads: int | None = None,
                        precision: str = "f32", device: str = "cpu"):
    """``pipeline`` itself (``"torch"``), or its generator exported and run by ONNX Runtime
    (``"onnx"``) or OpenVINO (``"openvino"``, at ``precision``), each parity-checked."""
    if backend == "torch":
        return pipeline
    if backend == "onnx":
        return onnx_pipeline(pipeline, num_threads, device=device)
    if backend == "openvino":
        if str(device) != "cpu":
            raise ValueError("the openvino backend runs on the CPU; pass --device cpu")
        return openvino_pipeline(pipeline, num_threads, precision)
    raise ValueError(f"backend must be 'torch', 'onnx' or 'openvino'; got {backend!r}")
