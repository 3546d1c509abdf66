"""Where ONNX Runtime spends the time: kernel time per op type, teacher vs students.

    python benchmarks/profile_ops.py [--batch_sizes 1 8] [--json profile_ops.json]

Exports the teacher (ResNet ngf 64) and the students of ``latency.py`` (ngf 24, ngf 16, mobile
ngf 16; 9 blocks, 256 px), runs each in ONNX Runtime with its built-in profiler
(``SessionOptions.enable_profiling``; the session settings of ``latency.py``'s ``ort``) and
sums the profiler's per-node kernel times by op type over the timed runs. Convs are split by kind
(7x7, 3x3, depthwise 3x3, 1x1) and carry their executed MACs, computed from the shapes the
profiler records (NCHWc convs pad output channels to the block size: the 7x7 head computes 8
channels for 3). For each student and op type the table gives the teacher's time / the student's time
next to the MACs ratio: ops whose time falls much less than their MACs are what keeps a student
from its MACs ratio. ``parallel`` is the share of that op's kernel time spent in nodes that split
their work over the intra-op thread pool (ONNX Runtime's thread-scheduling stats); 0 % means
single-threaded.
``overhead`` is the session's ``model_run`` time minus the sum of kernel times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import latency  # noqa: E402  (benchmarks/latency.py: models, export, machine info)

NORM_OPS = ("InstanceNormalization", "LayerNormalization", "ReduceMean", "Sub", "Pow", "Sqrt",
            "Div", "Reshape", "Shape")
LAYOUT_OPS = ("ReorderInput", "ReorderOutput", "Transpose")


# ----------------------------------------------------------------------------- one profile
def op_kind(event: dict) -> str:
    """The op type, with convs split by kernel size and depthwise."""
    args = event["args"]
    op = args["op_name"]
    if op not in ("Conv", "FusedConv"):
        return op
    weight = list(args["input_type_shape"][1].values())[0]
    kernel = f"{weight[2]}x{weight[3]}"
    if weight[1] == 1 and weight[0] > 1 and weight[2] > 1:
        return f"Conv {kernel} depthwise"
    return f"Conv {kernel}"


def node_macs(event: dict, weights: dict[str, list[int]]) -> int:
    """MACs of a Conv / ConvTranspose node from its recorded shapes (0 for other ops). A
    pre-packed weight is missing from the record: ``weights`` (node name -> shape) fills it."""
    args = event["args"]
    op = args["op_name"]
    if op not in ("Conv", "FusedConv", "ConvTranspose"):
        return 0
    shapes = [list(s.values())[0] for s in args["input_type_shape"]]
    weight = shapes[1] if len(shapes[1]) == 4 else weights[event["name"][:-len("_kernel_time")]]
    per_element = weight[1] * weight[2] * weight[3]
    if op == "ConvTranspose":  # each input element is spread over Cout/g x kh x kw outputs
        return math.prod(shapes[0]) * per_element
    out = list(args["output_type_shape"][0].values())[0]
    return math.prod(out) * per_element


def used_pool(event: dict) -> bool:
    """Whether the node split its work over the intra-op thread pool (its scheduling stats
    record the block sizes of a parallel loop; single-threaded kernels record none)."""
    stats = event["args"].get("thread_scheduling_stats") or {}
    return bool((stats.get("main_thread") or {}).get("block_size"))


def weight_shapes(onnx_path: Path) -> dict[str, list[int]]:
    """Node name -> weight shape for the Conv / ConvTranspose nodes of the exported graph."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    dims = {t.name: list(t.dims) for t in graph.initializer}
    return {n.name: dims[n.input[1]] for n in graph.node
            if n.op_type in ("Conv", "ConvTranspose") and n.input[1] in dims}


def profile_session(onnx_path: Path, x, threads: int, runs: int, warmup: int,
                    options: dict | None = None) -> dict:
    """Profile ``runs`` timed runs after ``warmup``; kernel ms per run by op kind."""
    from wkd_hf.onnx_export import make_session

    with tempfile.TemporaryDirectory(prefix="wkd_ortprof_") as tmp:
        session = make_session(onnx_path, num_threads=threads, profile_prefix=f"{tmp}/prof",
                               **(options or {}))
        feed = {session.get_inputs()[0].name: x.numpy()}
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    return aggregate(events, warmup, weight_shapes(onnx_path))


def aggregate(events: list[dict], warmup: int, weights: dict) -> dict:
    """Sum kernel time (ms per run), MACs and pool use by op kind over the runs after warm-up."""
    model_runs = sorted((e for e in events if e.get("name") == "model_run"),
                        key=lambda e: e["ts"])[warmup:]
    start = model_runs[0]["ts"]
    runs = len(model_runs)
    ms, macs, pooled, nodes = defaultdict(float), defaultdict(int), defaultdict(float), \
        defaultdict(int)
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        if event["ts"] < start:
            continue
        kind = op_kind(event)
        ms[kind] += event["dur"] / 1e3 / runs
        macs[kind] += node_macs(event, weights) // runs
        pooled[kind] += event["dur"] / 1e3 / runs if used_pool(event) else 0.0
        nodes[kind] += 1
    kernels = sum(ms.values())
    wall = statistics.median(e["dur"] / 1e3 for e in model_runs)
    return {"run_ms": wall, "kernel_ms": kernels, "overhead_ms": wall - kernels, "runs": runs,
            "ops": {k: {"ms": ms[k], "share": ms[k] / kernels, "macs": macs[k],
                        "nodes": nodes[k] // runs, "parallel": pooled[k] / ms[k] if ms[k] else 0}
                    for k in sorted(ms, key=ms.get, reverse=True)}}


# ----------------------------------------------------------------------------- tables
def group_of(kind: str) -> str:
    if kind.startswith("Conv") or kind == "ConvTranspose":
        return "convs"
    if kind in NORM_OPS:
        return "norms"
    if kind in LAYOUT_OPS:
        return "reorders"
    if kind == "Pad":
        return "pads"
    return "element-wise"


def groups(profile: dict) -> dict[str, float]:
    out = defaultdict(float)
    for kind, row in profile["ops"].items():
        out[group_of(kind)] += row["ms"]
    return dict(out)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


def markdown(name: str, profile: dict, teacher: dict | None) -> str:
    """One model's op-type table, with the teacher's time / this model's time per op type."""
    lines = [f"**{name}**: run {profile['run_ms']:.1f} ms (median), kernels "
             f"{profile['kernel_ms']:.1f} ms, overhead {profile['overhead_ms']:.1f} ms",
             "", "| op type | nodes | ms | share | parallel | GMAC/s | teacher ms / this ms | "
             "MACs ratio |", "|---|---|---|---|---|---|---|---|"]
    for kind, row in profile["ops"].items():
        ref = (teacher or {}).get("ops", {}).get(kind, {})
        rate = f"{row['macs'] / row['ms'] / 1e6:.1f}" if row["macs"] else "-"
        lines.append(f"| {kind} | {row['nodes']} | {row['ms']:.2f} | {row['share']:.1%} | "
                     f"{row['parallel']:.0%} | {rate} | "
                     f"{ratio(ref.get('ms', 0), row['ms']) if teacher else '-'} | "
                     f"{ratio(ref.get('macs', 0), row['macs']) if teacher else '-'} |")
    return "\n".join(lines)


def summary(models: dict[str, dict], teacher_name: str) -> str:
    """Per model: time by group (convs, norms, reorders, pads, element-wise), shares and the
    teacher / model ratio of each group."""
    teacher = groups(models[teacher_name])
    conv_macs = {n: sum(r["macs"] for r in p["ops"].values()) for n, p in models.items()}
    head = ["convs", "norms", "reorders", "pads", "element-wise"]
    lines = ["| model | run ms | " + " | ".join(f"{g} ms (share; teacher/this)" for g in head)
             + " | conv MACs ratio |", "|---|---|" + "---|" * len(head) + "---|"]
    for name, profile in models.items():
        mine = groups(profile)
        cells = [f"{mine.get(g, 0):.1f} ({mine.get(g, 0) / profile['kernel_ms']:.0%}; "
                 f"{ratio(teacher.get(g, 0), mine.get(g, 0))})" for g in head]
        lines.append(f"| {name} | {profile['run_ms']:.1f} | " + " | ".join(cells) +
                     f" | {ratio(conv_macs[teacher_name], conv_macs[name])} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def export(model, path: Path, resolution: int, instance_norm: str,
           graph_rewrites=None) -> Path:
    """The graph ``latency.py`` times, without its parity check (tests/test_onnx.py has it)."""
    from wkd_hf.onnx_export import export_onnx

    export_onnx(model, path, resolution=resolution, check=False, instance_norm=instance_norm,
                graph_rewrites=graph_rewrites)
    return path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch_sizes", type=int, nargs="+", default=[1])
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5, help="profiled runs per model (after warm-up)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--instance_norm", choices=("onnx", "layer_norm"), default=None,
                   help="how instance norm is exported (default: export_onnx's default)")
    p.add_argument("--graph_rewrites", nargs="*", default=None,
                   help="wkd_hf.graph_rewrites (default: the export's; none given: plain graph)")
    p.add_argument("--spinning", type=int, choices=(0, 1), default=None,
                   help="session.intra_op.allow_spinning (default: ONNX Runtime's, 1)")
    p.add_argument("--models", nargs="+", default=None, help="a subset (the teacher is kept)")
    p.add_argument("--quick", action="store_true", help="tiny nets at 32 px (a smoke test)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.resolution, args.runs, args.warmup, args.threads = 32, 2, 1, 1
    args.gan_compression = ""
    if args.instance_norm is None:
        from wkd_hf.onnx_export import INSTANCE_NORM

        args.instance_norm = INSTANCE_NORM
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    models = latency.build_models(args)
    teacher = next(iter(models))
    models = {n: m for n, m in models.items() if n == teacher or n in (args.models or [n])}
    options = {} if args.spinning is None else {"spinning": bool(args.spinning)}
    result = {"machine": latency.machine_info(args.threads),
              "load_average": {"start": latency.load_average()}, "settings": vars(args)}
    print(f"ONNX Runtime profile, {args.resolution} px, {args.threads} threads, {args.runs} runs "
          f"after {args.warmup} warm-up; instance norm as {args.instance_norm}, spinning "
          f"{args.spinning}; load average before: {result['load_average']['start']}")
    with tempfile.TemporaryDirectory(prefix="wkd_profile_") as tmp:
        paths = {n: export(m, Path(tmp) / f"{n.replace(' ', '_')}.onnx", args.resolution,
                           args.instance_norm, args.graph_rewrites)
                 for n, m in models.items()}
        for batch in args.batch_sizes:
            torch.manual_seed(batch)
            x = torch.rand(batch, 3, args.resolution, args.resolution) * 2 - 1
            profiles = {n: profile_session(p, x, args.threads, args.runs, args.warmup, options)
                        for n, p in paths.items()}
            result[f"batch_{batch}"] = profiles
            result["load_average"][f"after_batch_{batch}"] = latency.load_average()
            print(f"\n## batch {batch}\n\n{summary(profiles, teacher)}")
            for name, profile in profiles.items():
                ref = None if name == teacher else profiles[teacher]
                print("\n" + markdown(name, profile, ref))
    print(f"\nload average after: {result['load_average']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
