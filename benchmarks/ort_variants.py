"""Side-by-side ONNX Runtime variants (export choices and session options) against the current
default, interleaved in the same rounds.

    python benchmarks/ort_variants.py [--models "mobile ngf16" ngf24] [--variants ln nospin]

Each variant is an export choice (``instance_norm``: ``onnx`` = one InstanceNormalization op,
``layer_norm`` = Reshape + LayerNormalization + Reshape) plus ``make_session`` options. Every
(model, variant) pair runs round-robin; the ratio current / variant is taken per round
(> 1: the variant is faster) and printed as median [p10, p90].
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import latency  # noqa: E402

# name -> (instance_norm export, make_session options)
VARIANTS = {
    "current": ("onnx", {}),
    "ln": ("layer_norm", {}),
    "nospin": ("onnx", {"spinning": False}),
    "ln_nospin": ("layer_norm", {"spinning": False}),
    "extended": ("onnx", {"optimization": "extended"}),
    "ln_extended": ("layer_norm", {"optimization": "extended"}),
    "parallel_exec": ("onnx", {"sequential": False}),
}


def runner(path: Path, x: torch.Tensor, threads: int, options: dict):
    from wkd_hf.onnx_export import make_session

    session = make_session(path, num_threads=threads, **options)
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)


def export(model, path: Path, resolution: int, instance_norm: str) -> Path:
    from wkd_hf.onnx_export import export_onnx

    report = export_onnx(model, path, resolution=resolution, instance_norm=instance_norm)
    print(f"exported {path.name}: max abs diff vs PyTorch {report.max_abs_diff:.2e}")
    return path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mobile ngf16", "ngf24"])
    p.add_argument("--variants", nargs="+", default=["current", "ln", "nospin", "ln_nospin"],
                   choices=sorted(VARIANTS))
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    args.gan_compression = ""
    if "current" not in args.variants:
        args.variants.insert(0, "current")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    models = {n: m for n, m in latency.build_models(args).items() if n in args.models}
    x = torch.rand(args.batch_size, 3, args.resolution, args.resolution) * 2 - 1
    start = latency.load_average()
    runners = {}
    with tempfile.TemporaryDirectory(prefix="wkd_variants_") as tmp:
        for name, model in models.items():
            for norm in sorted({VARIANTS[v][0] for v in args.variants}):
                export(model, Path(tmp) / f"{name.replace(' ', '_')}_{norm}.onnx",
                       args.resolution, norm)
            for variant in args.variants:
                norm, options = VARIANTS[variant]
                path = Path(tmp) / f"{name.replace(' ', '_')}_{norm}.onnx"
                runners[f"{name} | {variant}"] = runner(path, x, args.threads, options)
        times = latency.interleaved(runners, args.repeats, args.warmup)
    print(f"\nbatch {args.batch_size}, {args.resolution} px, {args.threads} threads, "
          f"{args.repeats} rounds; load average before {start}, after {latency.load_average()}")
    print(f"{'model | variant':<32}{'ms median [p10, p90]':>28}{'current / variant':>26}")
    result = {"load_average": [start, latency.load_average()], "rows": {}}
    for key, values in times.items():
        ref = times[key.split(" | ")[0] + " | current"]
        speed = latency.quantiles([a / b for a, b in zip(ref, values)])
        result["rows"][key] = {"ms": latency.quantiles(values), "vs_current": speed,
                               "times_ms": values}
        print(f"{key:<32}{latency.fmt(latency.quantiles(values)):>28}"
              f"{latency.fmt(speed, 3):>26}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
