"""torch.compile against eager PyTorch and ONNX Runtime on one model, interleaved.

    python benchmarks/compile_check.py "mobile ngf16" [--mode max-autotune-no-cudagraphs]

Prints the compile time (compile + first run), the compiled model's max abs difference to eager,
then each backend's median [p10, p90] ms and ``ort`` / backend per round (< 1: slower than ONNX
Runtime). Batch 1, 256 px, 2 threads.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import latency  # noqa: E402


def compiled_runner(model, x: torch.Tensor, mode: str):
    """Compile ``model`` (timed, first run included) and return (runner, seconds, max diff)."""
    net = torch.compile(copy.deepcopy(model).eval(), dynamic=False,
                        mode=None if mode == "default" else mode)
    start = time.perf_counter()
    with torch.inference_mode():
        got = net(x)
        diff = (model(x) - got).abs().max().item()
    seconds = time.perf_counter() - start

    def run():
        with torch.inference_mode():
            net(x)
    return run, seconds, diff


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a latency.py model name, e.g. 'mobile ngf16'")
    p.add_argument("--mode", default="default")
    p.add_argument("--repeats", type=int, default=6)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    model = latency.build_models(argparse.Namespace(quick=False, gan_compression=""))[args.model]
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    compiled, seconds, diff = compiled_runner(model, x, args.mode)
    print(f"compile ({args.mode}) + first run: {seconds:.1f} s; max abs diff vs eager {diff:.2e}; "
          f"load {latency.load_average()}")
    from wkd_hf.onnx_export import export_onnx

    path = Path(tempfile.mkdtemp(prefix="wkd_compile_")) / "model.onnx"
    export_onnx(model, path, resolution=256, check=False)
    runners = {"eager": latency.torch_runner(model, x, "eager"), "compile": compiled,
               "ort": latency.ort_runner(path, x, 2, "ort")}
    times = latency.interleaved(runners, args.repeats, 1)
    for name, values in times.items():
        ratio = latency.quantiles([a / b for a, b in zip(times["ort"], values)])
        print(f"{name:<10}{latency.fmt(latency.quantiles(values)):>28} ms   ort / this "
              f"{latency.fmt(ratio, 3)}")
    print(f"load after {latency.load_average()}")


if __name__ == "__main__":
    main()
