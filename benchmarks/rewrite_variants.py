"""Graph rewrites and OpenVINO settings, side by side against the current export, interleaved.

    python benchmarks/rewrite_variants.py [--models "mobile ngf16" ngf24] [--backend openvino]
        [--variants head_s2d subpixel_up static] [--repeats 41] [--json out.json]

A variant is a list of ``wkd_hf.graph_rewrites`` rewrites applied to the plain exported ``.onnx``
file (``export_onnx(..., graph_rewrites=())``; ``current`` is that file)
plus, for OpenVINO, extra ``compile_model`` settings (``static``: the model reshaped to the
benchmark's fixed input shape before compiling). Every (model, variant) pair runs round-robin in
one process; the ratio current / variant is taken per round (> 1: the variant is faster) and
printed as median [p10, p90], beside the variant's max abs output difference to the current file
in the same runtime on real photos (the rewrites are exact up to summation order).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import latency  # noqa: E402

# name -> (graph rewrites, OpenVINO settings; ``instance_norm``: export_onnx's instance norm form)
VARIANTS = {
    "current": ((), {}),
    "head_s2d": (("head_s2d",), {}),
    "stem_s2d": (("stem_s2d",), {}),
    "subpixel_up": (("subpixel_up",), {}),
    "pad_slices": (("pad_slices",), {}),
    "head_s2d4": (("head_s2d4",), {}),
    "stem_s2d4": (("stem_s2d4",), {}),
    "layer_norm": ((), {"instance_norm": "layer_norm"}),
    "s2d_both": (("head_s2d", "stem_s2d"), {}),
    "all_rewrites": (("head_s2d", "stem_s2d", "subpixel_up", "pad_slices"), {}),
    "head_s2d_static": (("head_s2d",), {"static": True}),
    "static": ((), {"static": True}),
    "no_pinning": ((), {"ENABLE_CPU_PINNING": False}),
    "denormals": ((), {"CPU_DENORMALS_OPTIMIZATION": True}),
}


def ov_runner(path: Path, x: np.ndarray, threads: int, settings: dict):
    """``run() -> array`` of ``path`` compiled by OpenVINO (float32, latency hint) with the
    extra ``settings``."""
    import openvino as ov

    from wkd_hf.openvino_backend import keep_signal_stack

    settings = dict(settings)
    static = settings.pop("static", False)
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
              "PERFORMANCE_HINT": "LATENCY", **settings}
    with keep_signal_stack():
        core = ov.Core()
        model = core.read_model(str(path))
        if static:
            model.reshape(list(x.shape))
        request = core.compile_model(model, "CPU", config).create_infer_request()

    def run():
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy()
    return run


def ort_runner(path: Path, x: np.ndarray, threads: int, settings: dict):
    from wkd_hf.onnx_export import make_session

    session = make_session(path, num_threads=threads)
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: x})[0]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mobile ngf16", "ngf24"])
    p.add_argument("--backend", choices=("openvino", "ort"), default="openvino")
    p.add_argument("--variants", nargs="+", default=["current", "head_s2d", "subpixel_up"],
                   choices=sorted(VARIANTS))
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: the process's CPU time (all threads) per call, which a loaded "
                        "machine's waiting does not inflate (spinning does)")
    p.add_argument("--no_check", action="store_true",
                   help="skip the export's parity check against PyTorch (float64 reference: "
                        "minutes for the teacher on a loaded machine); the max abs difference "
                        "to the current file is still printed")
    p.add_argument("--quick", action="store_true", help="tiny networks (tests)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    args.gan_compression = ""
    if "current" not in args.variants:
        args.variants.insert(0, "current")
    return args


def main(argv=None) -> dict:
    from wkd_hf.graph_rewrites import rewrite_file
    from wkd_hf.onnx_export import export_onnx, real_images

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    models = {n: m for n, m in latency.build_models(args).items() if n in args.models}
    x = real_images(1, args.resolution, args.resolution).numpy()
    make = ov_runner if args.backend == "openvino" else ort_runner
    start, runners, diffs, counts = latency.load_average(), {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="wkd_rewrites_") as tmp:
        for name, model in models.items():
            base = Path(tmp) / f"{name.replace(' ', '_')}.onnx"
            export_onnx(model, base, resolution=args.resolution, graph_rewrites=(),
                        check=not args.no_check)
            for variant in args.variants:
                rewrites, settings = VARIANTS[variant]
                settings, path = dict(settings), base
                if "instance_norm" in settings:
                    path = base.with_suffix(f".{variant}.onnx")
                    export_onnx(model, path, resolution=args.resolution, graph_rewrites=(),
                                instance_norm=settings.pop("instance_norm"))
                elif rewrites:
                    path = base.with_suffix(f".{variant}.onnx")
                    counts[f"{name} | {variant}"] = rewrite_file(base, path, rewrites)
                key = f"{name} | {variant}"
                runners[key] = make(path, x, args.threads, settings)
                diffs[key] = float(np.abs(runners[key]() - runners[f"{name} | current"]()).max())
        clock = time.process_time if args.clock == "cpu" else None
        times = latency.interleaved(runners, args.repeats, args.warmup, clock)
    end = latency.load_average()
    print(f"\n{args.backend}, {args.clock} clock, batch 1, {args.resolution} px, {args.threads} threads, "
          f"{args.repeats} rounds; load average before {start}, after {end}")
    print(f"{'model | variant':<30}{'ms median [p10, p90]':>26}{'current / variant':>24}"
          f"{'max abs vs current':>20}")
    result = {"machine": latency.machine_info(args.threads), "backend": args.backend,
              "clock": args.clock,
              "load_average": [start, end], "repeats": args.repeats, "rows": {}}
    for key, values in times.items():
        ref = times[key.split(" | ")[0] + " | current"]
        speed = latency.quantiles([a / b for a, b in zip(ref, values)])
        result["rows"][key] = {"ms": latency.quantiles(values), "vs_current": speed,
                               "max_abs_vs_current": diffs[key], "rewritten": counts.get(key),
                               "times_ms": values}
        print(f"{key:<30}{latency.fmt(latency.quantiles(values)):>26}"
              f"{latency.fmt(speed, 3):>24}{diffs[key]:>20.2e}")
    teacher = "teacher ngf64" if "teacher ngf64" in models else None
    if teacher:
        print("-- speed-up vs the teacher under the same variant (teacher / model, per round) --")
        for key, values in times.items():
            model, variant = key.split(" | ")
            if model != teacher:
                speed = latency.quantiles([a / b for a, b in
                                           zip(times[f"{teacher} | {variant}"], values)])
                result["rows"][key]["vs_teacher"] = speed
                print(f"{key:<30}{latency.fmt(speed, 2):>26}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
