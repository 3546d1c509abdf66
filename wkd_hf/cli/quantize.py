"""``wkd-quantize``: int8 (ONNX Runtime) and bf16 (OpenVINO) students measured against float32,
refused below a PSNR bound."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ..onnx_export import export_onnx
from ..openvino_backend import check_openvino_parity, openvino_available
from ..pipeline import ImageTranslationPipeline
from ..quantize import (
    HALVES,
    MIN_PSNR_DB,
    accept,
    evaluate,
    load_images,
    quantize_int8,
    runners,
)
from . import guarded

PROG = "wkd-quantize"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="Export a generator in float32 (ONNX) and int8 (QDQ, calibrated on training "
                    "images), measure int8 and bf16 against float32 on real photos (PSNR, band "
                    "distances, latency) and refuse a precision below --min_psnr.")
    p.add_argument("--model", required=True, help="Folder / Hub id / .pth of a generator.")
    p.add_argument("--subfolder", default=None)
    p.add_argument("--direction", default=None, choices=("a2b", "b2a", "AtoB", "BtoA"))
    p.add_argument("--output", required=True, help="Folder for generator.onnx, "
                   "generator.int8.onnx and quantization.json.")
    p.add_argument("--calibration", required=True,
                   help="Folder of TRAINING images of the generator's input domain.")
    p.add_argument("--photos", required=True,
                   help="Folder of held-out real photos for the quality check (e.g. testA).")
    p.add_argument("--half", choices=HALVES, default="full",
                   help="Paired A|B files: the half the generator takes (facades BtoA: right).")
    p.add_argument("--num_calibration", type=int, default=32)
    p.add_argument("--num_photos", type=int, default=16)
    p.add_argument("--resolution", type=int, default=None, help="Default: the model's, or 256.")
    p.add_argument("--method", choices=("minmax", "percentile", "entropy"), default="percentile")
    p.add_argument("--keep_ends_float", action="store_true",
                   help="Leave the 7x7 stem and head convolutions in float.")
    p.add_argument("--backends", nargs="+", choices=("ort", "openvino"), default=None,
                   help="Default: ort and openvino (where installed).")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20, help="Interleaved timed rounds (0: none).")
    p.add_argument("--min_psnr", type=float, default=MIN_PSNR_DB,
                   help="Refuse a precision whose mean PSNR vs float32 is below this (dB).")
    p.add_argument("--warn_only", action="store_true",
                   help="Below --min_psnr: keep the int8 file and warn instead of refusing.")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """Export, quantize, evaluate; returns (the report, the refused precisions)."""
    if args.num_calibration < 1 or args.num_photos < 1:
        raise ValueError("--num_calibration and --num_photos must be >= 1")
    backends = args.backends or (["ort", "openvino"] if openvino_available() else ["ort"])
    pipe = ImageTranslationPipeline.from_pretrained(args.model, subfolder=args.subfolder,
                                                    direction=args.direction)
    resolution = args.resolution or pipe.resolution or 256
    channels = pipe._channels()[0]  # what the generator takes (1: grayscale, e.g. colorization)
    calibration = load_images(args.calibration, args.num_calibration, resolution, args.half,
                              channels)
    photos = load_images(args.photos, args.num_photos, resolution, args.half, channels)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    fp32_path = out / "generator.onnx"
    export_onnx(pipe.generator, fp32_path, resolution=resolution,
                metadata={"resolution": pipe.resolution, "direction": pipe.direction})
    if "openvino" in backends:
        check_openvino_parity(pipe.generator, fp32_path,
                              [(1, channels, resolution, resolution)])
    staged = out / ".generator.int8.staged.onnx"
    try:  # the staged file is renamed into place, or removed (also when evaluation fails)
        quantize_int8(fp32_path, staged, calibration, keep_ends_float=args.keep_ends_float,
                      method=args.method)
        torch.set_num_threads(args.threads)
        report = evaluate(runners(fp32_path, staged, args.threads, backends), photos,
                          args.repeats)
        verdict = accept(report, args.min_psnr)
        refused = [p for p, ok in verdict.items() if not ok]
        if "int8" in refused and not args.warn_only:
            (out / "generator.int8.onnx").unlink(missing_ok=True)  # an earlier run's
        else:
            os.replace(staged, out / "generator.int8.onnx")
    finally:
        staged.unlink(missing_ok=True)
    result = {"model": str(args.model), "resolution": resolution, "threads": args.threads,
              "calibration": {"folder": str(args.calibration), "images": len(calibration),
                              "method": args.method, "keep_ends_float": args.keep_ends_float},
              "photos": {"folder": str(args.photos), "images": len(photos)},
              "min_psnr_db": args.min_psnr, "accepted": verdict, "results": report}
    tmp = out / ".quantization.json.partial"
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out / "quantization.json")
    return result, refused


def format_report(result: dict) -> str:
    lines = [f"{'precision | backend':<20}{'PSNR dB (min)':>16}{'LL':>8}{'HH':>8}"
             f"{'ms median [p10, p90]':>26}{'x fp32':>8}"]
    for name, entry in result["results"].items():
        q = entry.get("quality_vs_fp32", {"psnr_db": math.inf, "psnr_db_min": math.inf,
                                           "bands": {"LL": 0.0, "HH": 0.0}})
        ms = entry.get("ms")
        cell = f"{ms['median']:.1f} [{ms['p10']:.1f}, {ms['p90']:.1f}]" if ms else "-"
        ratio = f"{entry['speedup_vs_fp32_same_backend']['median']:.2f}" if ms else "-"
        lines.append(f"{name:<20}{q['psnr_db']:>9.1f} ({q['psnr_db_min']:.1f})"
                     f"{q['bands']['LL']:>8.4f}"
                     f"{q['bands']['HH']:>8.4f}{cell:>26}{ratio:>8}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``wkd-quantize``: exit 1 with one ``error:`` line on failure or a refused precision."""
    args = _parse_args(argv)
    return guarded(PROG, lambda: _report(args, *run(args)))


def _report(args: argparse.Namespace, result: dict, refused: list[str]) -> int:
    """Print the table and each refused (or, with --warn_only, kept) precision; the exit code."""
    print(format_report(result))
    print(f"wrote {Path(args.output) / 'quantization.json'}")
    for precision in refused:
        psnr = min(e["quality_vs_fp32"]["psnr_db"] for n, e in result["results"].items()
                   if n.startswith(precision + " "))
        what = "kept (--warn_only)" if args.warn_only else "refused"
        print(f"wkd-quantize: {'warning' if args.warn_only else 'error'}: {precision} is "
              f"{psnr:.1f} dB from float32 < --min_psnr {args.min_psnr:g}: {what}"
              + ("" if args.warn_only or precision != "int8" else
                 "; generator.int8.onnx not written (try --keep_ends_float, more "
                 "--num_calibration, bf16, or --warn_only)"), file=sys.stderr)
    return 1 if refused and not args.warn_only else 0


if __name__ == "__main__":
    sys.exit(main())
