"""Where OpenVINO spends the time: per-layer-type share, float32 vs bf16 vs int8, per network.

    python benchmarks/profile_openvino.py [--models "mobile ngf16" ngf24] [--json out.json]

Exports the networks of ``latency.py`` (256 px, fresh weights), compiles each in OpenVINO on the
CPU (2 threads, latency hint) with ``PERF_COUNT`` on, runs ``--repeats`` batch-1 inferences and
sums OpenVINO's per-node real times by layer type (convs split by kernel size, depthwise apart)
over the last run. The kernel implementation (``exec_type``, e.g. ``brgconv_avx512_amx``)
shows which ISA path each op took. Precisions: ``f32``, ``bf16`` (``INFERENCE_PRECISION_HINT``)
and ``int8`` (the QDQ file of ``wkd_hf.quantize``, calibrated on ``--calibration``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import latency  # noqa: E402  (benchmarks/latency.py: models, export, machine info)


def conv_kernels(path: Path) -> dict[str, str]:
    """ONNX conv node name -> ``KxK`` (`` dw`` for depthwise), to split OpenVINO's convs."""
    import onnx

    out = {}
    for node in onnx.load(str(path)).graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            attrs = {a.name: a for a in node.attribute}
            k = "x".join(map(str, attrs["kernel_shape"].ints)) if "kernel_shape" in attrs else "?"
            depthwise = "group" in attrs and attrs["group"].i > 1
            out[node.name] = k + (" dw" if depthwise else "")
    return out


def layer_kind(info, kernels: dict) -> str:
    """``Convolution 7x7``, ``GroupConvolution 3x3 dw``, ... or the node type."""
    names = [n for n in kernels if info.node_name == n or info.node_name.startswith(n + "/")]
    return f"{info.node_type} {kernels[names[0]]}" if names else info.node_type


def profile(path: Path, precision: str, threads: int, repeats: int, resolution: int) -> dict:
    import openvino as ov

    from wkd_hf.openvino_backend import keep_signal_stack

    with keep_signal_stack():
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU", {
            "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, resolution, resolution)).astype(np.float32)
    for _ in range(repeats):
        request.infer({0: x})
    kernels = conv_kernels(path)
    by_kind: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "nodes": 0, "exec": set()})
    for info in request.profiling_info:
        if info.status != ov.ProfilingInfo.Status.EXECUTED:
            continue
        entry = by_kind[layer_kind(info, kernels)]
        entry["ms"] += info.real_time.total_seconds() * 1000
        entry["nodes"] += 1
        entry["exec"].add(info.exec_type)
    total = sum(e["ms"] for e in by_kind.values())
    return {"total_ms": total, "ops": {k: {"ms": e["ms"], "share": e["ms"] / total,
                                           "nodes": e["nodes"], "exec": sorted(e["exec"])}
                                       for k, e in sorted(by_kind.items(),
                                                          key=lambda kv: -kv[1]["ms"])}}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mobile ngf16", "ngf24"])
    p.add_argument("--precisions", nargs="+", default=["f32", "bf16", "int8"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--calibration", default=str(latency.DATA / "trainA"))
    p.add_argument("--graph_rewrites", nargs="*", default=None,
                   help="as benchmarks/latency.py (none given: the plain graph)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    models = latency.build_models(argparse.Namespace(quick=False, gan_compression=""))
    result = {"machine": latency.machine_info(args.threads), "profiles": {}}
    with tempfile.TemporaryDirectory(prefix="wkd_ov_profile_") as tmp:
        for name in args.models:
            path = latency.export(models[name], Path(tmp) / "g.onnx", args.resolution,
                                  args.graph_rewrites)
            files = {"f32": path, "bf16": path}
            if "int8" in args.precisions:
                calibration = latency.images(args.calibration, 16, args.resolution)
                files["int8"] = latency.export_int8(path, calibration)
            for precision in args.precisions:
                hint = "f32" if precision == "int8" else precision
                prof = profile(files[precision], hint, args.threads, args.repeats,
                               args.resolution)
                result["profiles"][f"{name} | {precision}"] = prof
                print(f"\n== {name} | {precision}: {prof['total_ms']:.1f} ms of node time ==")
                for kind, e in prof["ops"].items():
                    if e["share"] >= 0.01:
                        print(f"  {kind:<28}{e['ms']:>8.2f} ms {e['share']:>6.1%} "
                              f"({e['nodes']} nodes; {', '.join(e['exec'])})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
