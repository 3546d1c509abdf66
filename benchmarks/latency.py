"""Inference latency of the teacher and of students, in PyTorch eager and in ONNX Runtime.

    python benchmarks/latency.py [--json latency.json] [--batch_sizes 1 8] [--quick]

Models (256 px, fresh weights: latency does not depend on them): the ResNet teacher ngf 64 and
students ResNet ngf 24, ngf 16 and mobile ngf 16 (9 blocks, instance norm), plus GAN Compression's
published horse2zebra student (``--gan_compression``, default
``../shared/data/gan_compression_h2z/latest_net_G.pth``) when it exists and imports.

Backends, each model in each (``--backends``):

- ``eager``: PyTorch eager, ``torch.inference_mode``, NCHW, float32.
- ``eager_cl``: the same with the model and input in ``channels_last``.
- ``compile``: ``torch.compile`` (inductor, CPU C++ kernels); off by default (minutes of compile
  time per model and batch size on 2 cores).
- ``ort``: ONNX Runtime, the exported graph (``wkd_hf.export_onnx``, parity-checked), all graph
  optimisations (``ORT_ENABLE_ALL``: constant folding, fusions, the NCHWc blocked layout).
- ``ort_basic``: the same with only basic optimisations (no NCHWc layout, no layout reorders).
- ``ort_nospin``: ``ort`` with ``session.intra_op.allow_spinning`` off (pool threads sleep instead
  of busy-waiting between parallel ops; see benchmarks/README.md for when that matters).

Every (model, backend) pair runs round-robin after warm-up, so machine noise hits them alike;
speed-ups are taken per round (teacher_i / student_i, same round) and reported as median [p10,
p90], beside the MACs ratio. ``best`` uses, for each model, its fastest backend by median.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import torch

try:
    import wkd_hf  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wkd_hf.metrics.efficiency import count_macs, count_parameters, interleaved, quantiles
from wkd_hf.models import ResnetGenerator

ROOT = Path(__file__).resolve().parents[1]
GAN_COMPRESSION = ROOT.parent / "shared" / "data" / "gan_compression_h2z" / "latest_net_G.pth"
ALL_BACKENDS = ("eager", "eager_cl", "compile", "ort", "ort_basic", "ort_nospin")
ORT_SETTINGS = {"ort": {}, "ort_basic": {"optimization": "basic"},
                "ort_nospin": {"spinning": False}}
DEFAULT_BACKENDS = ("eager", "eager_cl", "ort")


# ----------------------------------------------------------------------------- models
def build_models(args) -> dict[str, torch.nn.Module]:
    """Teacher first. Quick mode: tiny nets (teacher ngf 8, students 4 / 2), 3 blocks."""
    torch.manual_seed(0)
    blocks = 3 if args.quick else 9
    widths = {"teacher": 8, "ngf24": 4, "ngf16": 2} if args.quick else \
        {"teacher": 64, "ngf24": 24, "ngf16": 16}
    models = {
        "teacher ngf64" if not args.quick else "teacher": ResnetGenerator(
            ngf=widths["teacher"], n_blocks=blocks),
        "ngf24" if not args.quick else "student_a": ResnetGenerator(
            ngf=widths["ngf24"], n_blocks=blocks),
        "ngf16" if not args.quick else "student_b": ResnetGenerator(
            ngf=widths["ngf16"], n_blocks=blocks),
        "mobile ngf16" if not args.quick else "mobile": ResnetGenerator(
            ngf=widths["ngf16"], n_blocks=blocks, block_type="mobile"),
    }
    if args.gan_compression and not args.quick:
        try:
            from wkd_hf.recipes import load_generator

            models["GAN Compression h2z"] = load_generator(str(args.gan_compression))
        except Exception as err:  # noqa: BLE001 - optional row
            print(f"note: GAN Compression's student not benchmarked ({args.gan_compression}: "
                  f"{type(err).__name__}: {str(err)[:160]})")
    return {name: m.eval() for name, m in models.items()}


# ----------------------------------------------------------------------------- ONNX
def export(model, path: Path, resolution: int) -> Path:
    from wkd_hf.onnx_export import export_onnx

    export_onnx(model, path, resolution=resolution, check=True)
    return path


def ort_runner(path: Path, x: torch.Tensor, threads: int, backend: str = "ort"):
    from wkd_hf.onnx_export import make_session

    session = make_session(path, num_threads=threads, **ORT_SETTINGS[backend])
    name = session.get_inputs()[0].name
    array = x.numpy()
    return lambda: session.run(None, {name: array})


# ----------------------------------------------------------------------------- torch
def torch_runner(model, x: torch.Tensor, backend: str):
    net = copy.deepcopy(model).eval()
    inp = x
    if backend == "eager_cl":
        net = net.to(memory_format=torch.channels_last)
        inp = x.contiguous(memory_format=torch.channels_last)
    if backend == "compile":
        net = torch.compile(net, dynamic=False)

    def run():
        with torch.inference_mode():
            net(inp)
    return run


# ----------------------------------------------------------------------------- timing
def fmt(q: dict, digits: int = 1) -> str:
    return f"{q['median']:.{digits}f} [{q['p10']:.{digits}f}, {q['p90']:.{digits}f}]"


def machine_info(threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "onnxruntime": ort_version, "python": platform.python_version(), "threads": threads}


def load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def bench_batch(models: dict, batch: int, args, onnx_paths: dict) -> dict:
    torch.manual_seed(batch)
    x = torch.rand(batch, 3, args.resolution, args.resolution) * 2 - 1
    runners = {}
    for name, model in models.items():
        for backend in args.backends:
            key = f"{name} | {backend}"
            if backend.startswith("ort"):
                if name not in onnx_paths:
                    continue
                runners[key] = ort_runner(onnx_paths[name], x, args.threads, backend)
            else:
                runners[key] = torch_runner(model, x, backend)
    times = interleaved(runners, args.repeats, args.warmup)
    teacher = next(iter(models))
    rows = {}
    best = {}
    for name in models:
        keys = [f"{name} | {b}" for b in args.backends if f"{name} | {b}" in times]
        best[name] = min(keys, key=lambda k: statistics.median(times[k]))
    for name in models:
        for backend in args.backends:
            key = f"{name} | {backend}"
            if key not in times:
                continue
            ref = f"{teacher} | {backend}"
            rows[key] = {
                "model": name, "backend": backend, "ms": quantiles(times[key]),
                "per_image_ms": statistics.median(times[key]) / batch, "times_ms": times[key],
                "speedup_same_backend": quantiles([a / b for a, b in zip(times[ref], times[key])]),
                "speedup_vs_teacher_eager": quantiles(
                    [a / b for a, b in zip(times[f"{teacher} | eager"], times[key])])
                if f"{teacher} | eager" in times else None,
            }
    best_rows = {name: {"backend": best[name].split(" | ")[1], "ms": quantiles(times[best[name]]),
                        "speedup_best_vs_best": quantiles(
                            [a / b for a, b in zip(times[best[teacher]], times[best[name]])])}
                 for name in models}
    return {"rows": rows, "best": best_rows}


def print_batch(result: dict, batch: int, profiles: dict) -> None:
    print(f"\n== batch {batch} ==")
    print(f"{'model':<22}{'backend':<11}{'ms median [p10, p90]':>28}{'x teacher (same backend)':>30}"
          f"{'MACs x':>8}")
    for row in result["rows"].values():
        print(f"{row['model']:<22}{row['backend']:<11}{fmt(row['ms']):>28}"
              f"{fmt(row['speedup_same_backend'], 2):>30}{profiles[row['model']]['macs_ratio']:>8.1f}")
    print("-- best backend per model (speed-up: teacher's best / model's best, per round) --")
    for name, row in result["best"].items():
        print(f"{name:<22}{row['backend']:<11}{fmt(row['ms']):>28}"
              f"{fmt(row['speedup_best_vs_best'], 2):>30}{profiles[name]['macs_ratio']:>8.1f}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch_sizes", type=int, nargs="+", default=None, help="default 1 8")
    p.add_argument("--resolution", type=int, default=None, help="default 256 (quick: 32)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 15; quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 3; quick 1)")
    p.add_argument("--backends", nargs="+", choices=ALL_BACKENDS, default=None,
                   help=f"default {' '.join(DEFAULT_BACKENDS)} (quick: eager ort)")
    p.add_argument("--gan_compression", default=str(GAN_COMPRESSION),
                   help="GAN Compression's latest_net_G.pth ('' to skip)")
    p.add_argument("--quick", action="store_true",
                   help="tiny nets at 32 px, 1 thread, 2 rounds (a smoke test; numbers mean "
                        "nothing)")
    p.add_argument("--json", default=None, help="write all timings here")
    args = p.parse_args(argv)
    q = args.quick
    args.batch_sizes = args.batch_sizes or ([1, 2] if q else [1, 8])
    args.resolution = args.resolution or (32 if q else 256)
    args.threads = args.threads or (1 if q else 2)
    args.repeats = args.repeats or (2 if q else 15)
    args.warmup = (1 if q else 3) if args.warmup is None else args.warmup
    args.backends = args.backends or (["eager", "ort"] if q else list(DEFAULT_BACKENDS))
    if "eager" not in args.backends:
        args.backends.insert(0, "eager")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    result = {"machine": info, "settings": {k: v for k, v in vars(args).items()},
              "load_average": {"start": load_average()}}
    print(f"Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']}, onnxruntime "
          f"{info['onnxruntime']}, python {info['python']}; {args.threads} threads (torch "
          f"intra-op and ONNX Runtime intra-op). {args.resolution}x{args.resolution}, "
          f"{args.repeats} interleaved rounds after {args.warmup} warm-up"
          f"{' (QUICK: tiny nets)' if args.quick else ''}. Load average (1, 5, 15 min) before: "
          f"{result['load_average']['start']}.")
    try:
        models = build_models(args)
        teacher = next(iter(models))
        profiles = {}
        for name, model in models.items():
            profiles[name] = {"params": count_parameters(model),
                              "macs": count_macs(model, args.resolution)}
        for name in models:
            profiles[name]["macs_ratio"] = profiles[teacher]["macs"] / profiles[name]["macs"]
        result["models"] = profiles
        with tempfile.TemporaryDirectory(prefix="wkd_latency_") as tmp:
            onnx_paths = {}
            if any(b.startswith("ort") for b in args.backends):
                for name, model in models.items():
                    path = Path(tmp) / f"{name.replace(' ', '_')}.onnx"
                    try:
                        onnx_paths[name] = export(model, path, args.resolution)
                    except Exception as err:  # noqa: BLE001 - e.g. a parity failure: say it
                        print(f"note: {name} not run in ONNX Runtime: {type(err).__name__}: "
                              f"{str(err)[:200]}")
            for batch in args.batch_sizes:
                result[f"batch_{batch}"] = bench_batch(models, batch, args, onnx_paths)
                result["load_average"][f"after_batch_{batch}"] = load_average()
                print_batch(result[f"batch_{batch}"], batch, profiles)
    finally:
        torch.set_num_threads(previous)
    print(f"\nparams / MACs (FlopCounterMode / 2) at {args.resolution} px: " + "; ".join(
        f"{n} {p['params'] / 1e6:.3f}M / {p['macs'] / 1e9:.2f}G" for n, p in profiles.items()))
    print(f"Load average after each batch size (includes this run): "
          f"{ {k: v for k, v in result['load_average'].items() if k != 'start'} }")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
