"""Reduced-precision students: int8 (post-training static quantization) and bf16, with their
quality measured against the float32 self on real photos, and refused past a bound.

    wkd-quantize --model student_dir --output deploy/ \
        --calibration ../data/horse2zebra/trainA --photos ../data/horse2zebra/testA

writes ``deploy/generator.onnx`` (float32, parity-checked), ``deploy/generator.int8.onnx`` (QDQ)
and ``deploy/quantization.json`` (per precision: PSNR and band distances vs float32, latency).

- int8: ONNX Runtime's QDQ quantizer (``onnxruntime.quantization.quantize_static``; it ships
  with onnxruntime, which the ``deploy`` extra already needs: no new dependency), calibrated on
  training images; per-channel int8 weights, uint8 activations, on Conv inputs only (conv
  outputs, ConvTranspose, instance norm, pads and tanh stay float: see :func:`quantize_int8`).
  The one QDQ file runs in ONNX Runtime and in
  OpenVINO (which maps QDQ to its int8 kernels: VNNI / AMX where the CPU has them).
- bf16: no file of its own: OpenVINO runs the float32 file with ``INFERENCE_PRECISION_HINT=bf16``
  (AMX / avx512_bf16 kernels, else emulated) — measured like int8.

A precision whose mean PSNR against the float32 output is below ``min_psnr`` (35 dB) is refused:
the int8 file is not written (``--warn_only`` writes it with a warning).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .safe_files import write_beside

MIN_PSNR_DB = 35.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
HALVES = ("full", "left", "right")


# ----------------------------------------------------------------------------- images
def load_images(folder: str | os.PathLike, count: int, resolution: int,
                half: str = "full", channels: int = 3) -> torch.Tensor:
    """``count`` images spread evenly over ``folder``'s sorted image files, as N x ``channels``
    x R x R in [-1, 1] (bicubic, antialiased, as the pipeline's ``size_mode="resize"``; 1
    channel: luma). ``half``: ``left`` / ``right`` takes that half of side-by-side paired images
    (pix2pix's A|B files)."""
    from PIL import Image, ImageOps

    from .pipeline import _resize, _to_tensor

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    picks = [files[i] for i in np.linspace(0, len(files) - 1, min(count, len(files))).astype(int)]
    batch = []
    for path in picks:
        try:  # any mode (I;16, P, CMYK, LA, ...) read as the pipeline reads it
            with Image.open(path) as handle:  # upright (EXIF orientation), as training reads
                image = _to_tensor(ImageOps.exif_transpose(handle), channels)[0]
        except Exception as err:  # noqa: BLE001 - PIL raises many types for a broken file
            raise ValueError(f"{path} is not a readable image ({type(err).__name__}: {err}); "
                             "remove or replace it") from None
        width = image.shape[-1]
        if half != "full":
            image = image[..., :width // 2] if half == "left" else image[..., width // 2:]
        batch.append(_resize(image.contiguous(), (resolution, resolution)).clamp(0, 1))
    return torch.stack(batch) * 2 - 1


# ----------------------------------------------------------------------------- int8
def _conv_names(path: str | os.PathLike) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]


def quantize_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike,
                  calibration: torch.Tensor, per_channel: bool = True,
                  keep_ends_float: bool = False, method: str = "percentile",
                  op_types: Sequence[str] = ("Conv",)) -> Path:
    """Post-training static int8 quantization (QDQ) of an exported generator.

    Inputs and weights of each quantized op get int8 QDQ pairs; its OUTPUT stays float. Every
    conv of these generators feeds an instance norm, and a conv's output carries per-channel
    offsets the norm removes: one per-tensor output scale leaves the signal a few levels, which
    the norm scales back up (GAN Compression's student: 16 dB vs float32 with outputs
    quantized). ConvTranspose is left float by default: its int8 version alone cost 34 dB
    there (with float outputs and percentile ranges).

    Args:
        calibration: N x C x H x W images in [-1, 1] (training images) whose activation ranges
            set the scales; fed one at a time.
        per_channel: per-output-channel weight scales (else per tensor).
        keep_ends_float: leave the first and last convolution (the 7x7 stem / head) in float.
        method: ``"percentile"`` (99.999 %: ignores the rare outliers of post-ReLU maps),
            ``"minmax"`` or ``"entropy"``.
        op_types: the ONNX ops to quantize.

    The metadata of ``fp32_path`` is kept, with ``wkd_hf.precision=int8``; the file is written
    beside ``out_path`` and renamed into place.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ValueError(f"method must be one of {sorted(methods)}; got {method!r}")
    input_name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name
    convs = _conv_names(fp32_path)
    excluded = [convs[0], convs[-1]] if keep_ends_float and convs else None

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: image[None].float().numpy()}
                               for image in calibration])

        def get_next(self):
            return next(self.items, None)

    out_path = Path(out_path)
    with write_beside(out_path, "int8 model") as tmp:  # a failure leaves no partial file
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            quantize_static(
                str(fp32_path), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(op_types), per_channel=per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded, calibrate_method=methods[method],
                extra_options={"OpTypesToExcludeOutputQuantization": list(op_types)})
        proto = onnx.load(str(tmp))
        source = onnx.load(str(fp32_path), load_external_data=False)
        del proto.metadata_props[:]
        proto.metadata_props.extend(source.metadata_props)
        entry = proto.metadata_props.add()
        entry.key, entry.value = "wkd_hf.precision", "int8"
        onnx.save(proto, str(tmp))
    return out_path


@contextlib.contextmanager
def _quiet():
    """Silence the quantizer's root-logger warnings and its calibration prints."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


# ----------------------------------------------------------------------------- quality
def psnr_db(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of N x C x H x W images in [-1, 1], on the [0, 1] scale after
    clamping (what a saved image holds); inf where identical."""
    a = (output.double().clamp(-1, 1) + 1) / 2
    b = (reference.double().clamp(-1, 1) + 1) / 2
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse)


def quality(output: torch.Tensor, reference: torch.Tensor, levels: int = 3) -> dict:
    """PSNR (mean and worst image, dB), max abs difference and the pooled band distances
    (:func:`wkd_hf.wavelets.band_distances`, haar, ``levels``) of ``output`` against
    ``reference`` (the float32 output)."""
    from .wavelets import band_distances

    psnr = psnr_db(output, reference)
    bands = band_distances(output.float(), reference.float(), levels=levels)
    return {"psnr_db": float(psnr.mean()), "psnr_db_min": float(psnr.min()),
            "max_abs": float((output - reference).abs().max()),
            "bands": {k: float(bands[k]) for k in ("LL", "LH", "HL", "HH")}}


# ----------------------------------------------------------------------------- runners
def runners(fp32_path: str | os.PathLike, int8_path: str | os.PathLike | None,
            threads: int, backends: Sequence[str]) -> dict[str, Callable[[np.ndarray], object]]:
    """``{"<precision> | <backend>": run(array) -> array}`` for float32, bf16 and int8+bf16
    (OpenVINO only: int8 convs, the rest in bf16) and int8 on the chosen backends (``"ort"``,
    ``"openvino"``)."""
    out: dict[str, Callable] = {}
    if "ort" in backends:
        from .onnx_export import make_session

        for name, path in (("fp32", fp32_path), ("int8", int8_path)):
            if path is not None:
                session = make_session(path, num_threads=threads)
                key = session.get_inputs()[0].name
                out[f"{name} | ort"] = (lambda s, k: lambda a: s.run(None, {k: a})[0])(session,
                                                                                        key)
    if "openvino" in backends:
        from .openvino_backend import OpenVinoGenerator

        for name, path, precision in (("fp32", fp32_path, "f32"), ("bf16", fp32_path, "bf16"),
                                      ("int8", int8_path, "f32"),
                                      ("int8+bf16", int8_path, "bf16")):
            if path is not None:
                out[f"{name} | openvino"] = OpenVinoGenerator(path, threads, precision).run
    return out


def evaluate(runs: dict, photos: torch.Tensor, repeats: int, warmup: int = 2,
             levels: int = 3) -> dict:
    """Quality of every runner against the float32 one of its backend (per photo, batch 1), and
    interleaved batch-1 latency (ms, median [p10, p90]) with per-round ratios to float32."""
    from .metrics.efficiency import interleaved, quantiles

    outputs = {name: torch.cat([torch.from_numpy(np.asarray(run(p[None].numpy())))
                                for p in photos]) for name, run in runs.items()}
    first = photos[:1].numpy()
    times = interleaved({name: (lambda r: lambda: r(first))(run) for name, run in runs.items()},
                        repeats, warmup) if repeats else {}
    report = {}
    for name in runs:
        backend = name.split(" | ")[1]
        reference = outputs.get(f"fp32 | {backend}", outputs.get("fp32 | ort"))
        entry = {} if name.startswith("fp32 ") else {
            "quality_vs_fp32": quality(outputs[name], reference, levels)}
        if times:
            entry["ms"] = quantiles(times[name])
            entry["speedup_vs_fp32_same_backend"] = quantiles(
                [a / b for a, b in zip(times[f"fp32 | {backend}"], times[name])])
        report[name] = entry
    return report


def accept(report: dict, min_psnr: float) -> dict[str, bool]:
    """Per reduced precision: its worst backend's mean PSNR vs float32 is >= ``min_psnr``."""
    verdict: dict[str, bool] = {}
    for name, entry in report.items():
        precision = name.split(" | ")[0]
        if "quality_vs_fp32" in entry:
            ok = entry["quality_vs_fp32"]["psnr_db"] >= min_psnr
            verdict[precision] = verdict.get(precision, True) and ok
    return verdict
