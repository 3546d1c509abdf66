"""``wkd-export-onnx``: a saved generator to ONNX (dynamic batch and size), parity-checked against
PyTorch in ONNX Runtime."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..onnx_export import DEFAULT_ATOL, DEFAULT_OPSET, export_onnx
from ..pipeline import ImageTranslationPipeline
from . import guarded

PROG = "wkd-export-onnx"


# ----------------------------------------------------------------------------- CLI
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="Export a wkd_hf generator to ONNX (dynamic batch and size) and check it "
                    "against PyTorch in ONNX Runtime.")
    p.add_argument("--model", required=True,
                   help="Folder or Hub id of a saved generator / pipeline / output folder, or a "
                        "pix2pix / CycleGAN / GAN Compression checkpoint (.pth).")
    p.add_argument("--subfolder", default=None, help="e.g. generator_b2a for a CycleGAN folder.")
    p.add_argument("--direction", default=None, choices=("a2b", "b2a", "AtoB", "BtoA"),
                   help="CycleGAN folders: which generator (default a2b).")
    p.add_argument("--output", required=True, help="The .onnx file to write.")
    p.add_argument("--resolution", type=int, default=None,
                   help="Example input size (default: the model's training resolution, or 256).")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--static_batch", action="store_true", help="Fix the batch axis.")
    p.add_argument("--static_size", action="store_true", help="Fix height and width.")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                   help="Parity tolerance (max abs difference to PyTorch).")
    p.add_argument("--no_check", action="store_true", help="Skip the parity check.")
    p.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript")
    p.add_argument("--graph_rewrites", nargs="*", default=None, help="wkd_hf.graph_rewrites "
                   "(default: head_s2d; none given: the graph as PyTorch exports it).")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``wkd-export-onnx``: one ``error:`` line (exit 1) on any failure, no traceback."""
    args = _parse_args(argv)
    return guarded(PROG, lambda: _export(args))


def _export(args: argparse.Namespace) -> int:
    """Export ``--model`` and report the parity; raises on any problem."""
    if args.resolution is not None and args.resolution < 1:
        raise ValueError(f"--resolution must be >= 1; got {args.resolution}")
    if not str(args.output).endswith(".onnx"):
        raise ValueError(f"--output must be a .onnx file; got {args.output!r}")
    pipe = ImageTranslationPipeline.from_pretrained(args.model, subfolder=args.subfolder,
                                                    direction=args.direction)
    resolution = args.resolution or pipe.resolution or 256
    report = export_onnx(pipe.generator, args.output, resolution=resolution, opset=args.opset,
                         dynamic_batch=not args.static_batch,
                         dynamic_size=not args.static_size, check=not args.no_check,
                         atol=args.atol, exporter=args.exporter,
                         graph_rewrites=args.graph_rewrites,
                         metadata={"resolution": pipe.resolution,
                                   "direction": pipe.direction})
    parity = ("not checked" if report.max_abs_diff is None else
              f"max abs diff vs PyTorch {report.max_abs_diff:.2e} (float64 reference; <= "
              f"{report.atol:g}; {report.max_abs_diff_fp32:.2e} vs float32 PyTorch) on "
              f"{', '.join('x'.join(map(str, s)) for s in report.checked_shapes)}")
    print(f"wrote {report.path} (opset {report.opset}, dynamic batch {report.dynamic_batch}, "
          f"dynamic size {report.dynamic_size}); {parity}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
