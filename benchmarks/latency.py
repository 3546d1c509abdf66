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
- ``openvino``: OpenVINO on the same ``.onnx`` file, float32 (``wkd_hf.openvino_backend``,
  parity-checked against PyTorch).

Reduced precision (``--reduced``; reported in their own columns, with their PSNR against the
model's float32 output on real photos, ``--photos``):

- ``openvino_bf16``: OpenVINO, ``INFERENCE_PRECISION_HINT=bf16`` on the float32 file.
- ``ort_int8`` / ``openvino_int8``: the int8 QDQ file of ``wkd_hf.quantize.quantize_int8``,
  calibrated on ``--calibration`` training images.
- ``openvino_int8_bf16``: the int8 file in OpenVINO with bf16 for what stays float.

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
DATA = ROOT.parent / "shared" / "data" / "horse2zebra"
ALL_BACKENDS = ("eager", "eager_cl", "compile", "ort", "ort_basic", "ort_nospin", "openvino")
REDUCED = ("openvino_bf16", "ort_int8", "openvino_int8", "openvino_int8_bf16")
OV_SETTINGS = {"openvino": ("fp32", "f32"), "openvino_bf16": ("fp32", "bf16"),
               "openvino_int8": ("int8", "f32"), "openvino_int8_bf16": ("int8", "bf16")}
ORT_SETTINGS = {"ort": {}, "ort_basic": {"optimization": "basic"},
                "ort_nospin": {"spinning": False}}
DEFAULT_BACKENDS = ("eager", "eager_cl", "ort")


def shown_path(value):
    """A setting as the results file shows it: an absolute path relative to the repository
    (``../shared/data/...``), so a committed file names no folder of this machine."""
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.relpath(value, ROOT)
    return value


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
def export(model, path: Path, resolution: int, graph_rewrites=None) -> Path:
    """The float32 ``.onnx`` file (parity-checked in ONNX Runtime), with ``graph_rewrites``
    (None: ``export_onnx``'s default, see wkd_hf.graph_rewrites)."""
    from wkd_hf.onnx_export import export_onnx

    export_onnx(model, path, resolution=resolution, check=True, graph_rewrites=graph_rewrites)
    return path


def images(folder: str, count: int, resolution: int) -> torch.Tensor:
    """``count`` images of ``folder`` at ``resolution`` in [-1, 1], or scikit-image's photos
    (``wkd_hf.onnx_export.real_images``) where the folder does not exist."""
    from wkd_hf.onnx_export import real_images
    from wkd_hf.quantize import load_images

    if folder and Path(folder).is_dir():
        return load_images(folder, count, resolution)
    return real_images(min(count, 5), resolution, resolution)


def export_int8(path: Path, calibration: torch.Tensor) -> Path:
    from wkd_hf.quantize import quantize_int8

    return quantize_int8(path, path.with_suffix(".int8.onnx"), calibration)


def file_runner(name: str, backend: str, threads: int, paths: dict):
    """``run(array) -> array`` for an ONNX Runtime / OpenVINO backend of ``name`` (None where its
    file is missing)."""
    if backend in OV_SETTINGS:
        from wkd_hf.openvino_backend import OpenVinoGenerator

        kind, precision = OV_SETTINGS[backend]
        return OpenVinoGenerator(paths[name, kind], threads, precision).run \
            if (name, kind) in paths else None
    from wkd_hf.onnx_export import make_session

    key = (name, "int8" if backend == "ort_int8" else "fp32")
    if key not in paths:
        return None
    session = make_session(paths[key], num_threads=threads, **ORT_SETTINGS.get(backend, {}))
    input_name = session.get_inputs()[0].name
    return lambda array: session.run(None, {input_name: array})[0]


def reduced_quality(names, paths: dict, backends, photos: torch.Tensor, threads: int) -> dict:
    """Per model and reduced backend: PSNR / band distances of its outputs on ``photos`` (batch
    1) against the float32 file's outputs in ONNX Runtime."""
    import numpy as np

    from wkd_hf.quantize import quality

    out: dict = {}
    for name in names:
        outputs = {}
        for backend in ["ort", *[b for b in backends if b in REDUCED]]:
            run = file_runner(name, backend, threads, paths)
            if run is not None:
                outputs[backend] = torch.cat([torch.from_numpy(np.asarray(run(p[None].numpy())))
                                              for p in photos])
        if "ort" in outputs:
            out[name] = {b: quality(o, outputs["ort"]) for b, o in outputs.items() if b != "ort"}
    return out


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
    versions = {}
    for package in ("onnxruntime", "openvino"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, **versions,
            "isa": isa_flags(), "python": platform.python_version(), "threads": threads}


def isa_flags() -> list[str]:
    """The CPU's vector / matrix ISA flags that decide which kernels run (from /proc/cpuinfo)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
              "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next(line.split(":", 1)[1].split() for line in handle
                         if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [f for f in wanted if f in flags]


def load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _best(times: dict, name: str, backends) -> str | None:
    keys = [f"{name} | {b}" for b in backends if f"{name} | {b}" in times]
    return min(keys, key=lambda k: statistics.median(times[k])) if keys else None


def _ratio(times: dict, reference: str, key: str) -> dict:
    return quantiles([a / b for a, b in zip(times[reference], times[key])])


def bench_batch(models: dict, batch: int, args, paths: dict) -> dict:
    """Interleaved rounds over every (model, backend); per model its best float32 backend and,
    separately, its best reduced-precision backend, each with per-round speed-ups against the
    teacher's best float32 (and the teacher's best reduced) backend."""
    torch.manual_seed(batch)
    x = torch.rand(batch, 3, args.resolution, args.resolution) * 2 - 1
    runners = {}
    for name, model in models.items():
        for backend in args.backends:
            if backend in ALL_BACKENDS[:3]:
                runners[f"{name} | {backend}"] = torch_runner(model, x, backend)
                continue
            run = file_runner(name, backend, args.threads, paths)
            if run is not None:
                runners[f"{name} | {backend}"] = (lambda r, a: lambda: r(a))(run, x.numpy())
    times = interleaved(runners, args.repeats, args.warmup)
    teacher = next(iter(models))
    rows = {}
    for name in models:
        for backend in args.backends:
            key = f"{name} | {backend}"
            if key not in times:
                continue
            ref = f"{teacher} | {backend}"
            rows[key] = {
                "model": name, "backend": backend, "ms": quantiles(times[key]),
                "per_image_ms": statistics.median(times[key]) / batch, "times_ms": times[key],
                "speedup_same_backend": _ratio(times, ref, key) if ref in times else None,
                "speedup_vs_teacher_eager": _ratio(times, f"{teacher} | eager", key)
                if f"{teacher} | eager" in times else None,
            }
    fp32 = [b for b in args.backends if b not in REDUCED]
    reduced = [b for b in args.backends if b in REDUCED]
    teacher_fp32, teacher_reduced = _best(times, teacher, fp32), _best(times, teacher, reduced)
    best_rows = {}
    for name in models:
        best = _best(times, name, fp32)
        entry = {"backend": best.split(" | ")[1], "ms": quantiles(times[best]),
                 "speedup_best_vs_best": _ratio(times, teacher_fp32, best)}
        low = _best(times, name, reduced)
        if low is not None:
            entry["reduced"] = {
                "backend": low.split(" | ")[1], "ms": quantiles(times[low]),
                "speedup_vs_teacher_best_fp32": _ratio(times, teacher_fp32, low),
                "speedup_vs_teacher_best_reduced": _ratio(times, teacher_reduced, low),
                "speedup_vs_own_best_fp32": _ratio(times, best, low)}
        best_rows[name] = entry
    return {"rows": rows, "best": best_rows}


def print_batch(result: dict, batch: int, profiles: dict) -> None:
    print(f"\n== batch {batch} ==")
    print(f"{'model':<22}{'backend':<19}{'ms median [p10, p90]':>20}{'x teacher (same backend)':>30}"
          f"{'MACs x':>8}")
    for row in result["rows"].values():
        print(f"{row['model']:<22}{row['backend']:<19}{fmt(row['ms']):>20}"
              f"{fmt(row['speedup_same_backend'], 2):>30}{profiles[row['model']]['macs_ratio']:>8.1f}")
    print("-- best backend per model, float32 (speed-up: teacher's best float32 / model's best "
          "float32, per round) --")
    for name, row in result["best"].items():
        print(f"{name:<22}{row['backend']:<19}{fmt(row['ms']):>20}"
              f"{fmt(row['speedup_best_vs_best'], 2):>30}{profiles[name]['macs_ratio']:>8.1f}")
    if any("reduced" in row for row in result["best"].values()):
        print("-- best backend per model, reduced precision (x teacher's best float32 | x "
              "teacher's best reduced | x own best float32) --")
        for name, row in result["best"].items():
            low = row.get("reduced")
            if low:
                print(f"{name:<22}{low['backend']:<19}{fmt(low['ms']):>24}  "
                      f"{fmt(low['speedup_vs_teacher_best_fp32'], 2)} | "
                      f"{fmt(low['speedup_vs_teacher_best_reduced'], 2)} | "
                      f"{fmt(low['speedup_vs_own_best_fp32'], 2)}")


def export_all(models: dict, args, folder: Path) -> dict:
    """``{(name, "fp32" | "int8"): .onnx path}`` for the backends that read files."""
    paths: dict = {}
    if all(b in ALL_BACKENDS[:3] for b in args.backends):
        return paths
    int8 = any("int8" in b for b in args.backends)
    calibration = images(args.calibration, args.num_calibration, args.resolution) if int8 else None
    for name, model in models.items():
        path = folder / f"{name.replace(' ', '_')}.onnx"
        try:
            paths[name, "fp32"] = export(model, path, args.resolution, args.graph_rewrites)
            if any(b in OV_SETTINGS for b in args.backends):
                from wkd_hf.openvino_backend import check_openvino_parity

                check_openvino_parity(model, path, [(1, 3, args.resolution, args.resolution)])
            if int8:
                paths[name, "int8"] = export_int8(path, calibration)
        except Exception as err:  # noqa: BLE001 - e.g. a parity failure: say it
            print(f"note: {name}: {type(err).__name__}: {str(err)[:200]}")
    return paths


def print_quality(quality: dict) -> None:
    print("\n-- reduced precision vs the model's float32 output (ONNX Runtime) on real photos: "
          "PSNR dB mean (worst image); band distances LL / HH --")
    for name, entries in quality.items():
        for backend, q in entries.items():
            print(f"{name:<22}{backend:<20}{q['psnr_db']:>7.1f} ({q['psnr_db_min']:.1f})"
                  f"{q['bands']['LL']:>9.4f}{q['bands']['HH']:>9.4f}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch_sizes", type=int, nargs="+", default=None, help="default 1 8")
    p.add_argument("--resolution", type=int, default=None, help="default 256 (quick: 32)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 15; quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 3; quick 1)")
    p.add_argument("--backends", nargs="+", choices=ALL_BACKENDS + REDUCED, default=None,
                   help=f"default {' '.join(DEFAULT_BACKENDS)} (quick: eager ort)")
    p.add_argument("--reduced", action="store_true",
                   help=f"add the reduced-precision backends ({' '.join(REDUCED)}; or name some "
                        "in --backends) and their PSNR against float32 on --photos")
    p.add_argument("--calibration", default=str(DATA / "trainA"),
                   help="int8 calibration images (training data; default horse2zebra trainA)")
    p.add_argument("--photos", default=str(DATA / "testA"),
                   help="real photos for the reduced-precision quality check (default testA)")
    p.add_argument("--num_calibration", type=int, default=None, help="default 8 (quick: 4)")
    p.add_argument("--num_photos", type=int, default=None, help="default 8 (quick: 4)")
    p.add_argument("--gan_compression", default=str(GAN_COMPRESSION),
                   help="GAN Compression's latest_net_G.pth ('' to skip)")
    p.add_argument("--graph_rewrites", nargs="*", default=None,
                   help="wkd_hf.graph_rewrites for the exported files (default: the export's "
                        "default; none given: the plain graph)")
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
    args.num_calibration = args.num_calibration or (4 if q else 8)
    args.num_photos = args.num_photos or (4 if q else 8)
    args.backends = args.backends or (["eager", "ort"] if q else list(DEFAULT_BACKENDS))
    if "eager" not in args.backends:
        args.backends.insert(0, "eager")
    if args.reduced and not any(b in REDUCED for b in args.backends):
        args.backends += list(REDUCED)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    result = {"machine": info, "settings": {k: shown_path(v) for k, v in vars(args).items()},
              "load_average": {"start": load_average()}}
    print(f"Machine: {info['cpu']}, {info['cores']} cores, ISA {' '.join(info['isa'])}; torch "
          f"{info['torch']}, onnxruntime {info['onnxruntime']}, openvino {info['openvino']}, "
          f"python {info['python']}; {args.threads} threads (torch, ONNX Runtime and OpenVINO). "
          f"{args.resolution}x{args.resolution}, "
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
            paths = export_all(models, args, Path(tmp))
            if any(b in REDUCED for b in args.backends):
                photos = images(args.photos, args.num_photos, args.resolution)
                result["quality"] = reduced_quality(models, paths, args.backends, photos,
                                                    args.threads)
                print_quality(result["quality"])
            for batch in args.batch_sizes:
                result[f"batch_{batch}"] = bench_batch(models, batch, args, paths)
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
