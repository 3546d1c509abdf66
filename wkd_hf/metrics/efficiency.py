"""Efficiency profile of a generator: parameters, MACs and measured latency.

``wkd-profile`` (see :func:`main`) prints the profile of one model and its ratios to others::

    wkd-profile --model teacher_dir --compare student_dir --resolution 256 --num_threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Resolution = int | tuple[int, int]


@dataclasses.dataclass
class LatencyResult:
    """Wall-clock forward latency over ``repeats`` timed runs (after ``warmup`` untimed runs)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    num_threads: int
    device: str
    batch_size: int


@dataclasses.dataclass
class EfficiencyProfile:
    """Params, MACs per image and (optionally) latency of one model at one resolution."""

    name: str
    params: int
    macs: int
    resolution: tuple[int, int]
    latency: LatencyResult | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _as_hw(resolution: Resolution) -> tuple[int, int]:
    hw = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if len(hw) != 2 or not all(isinstance(v, int) and v > 0 for v in hw):
        raise ValueError(
            f"resolution must be a positive int or (height, width), got {resolution!r}."
        )
    return hw


def _in_channels(model: nn.Module, in_channels: int | None) -> int:
    """``in_channels`` if given, else ``model.config.in_channels`` (diffusers models)."""
    if in_channels is not None:
        return in_channels
    config = getattr(model, "config", None)
    if isinstance(config, dict):  # diffusers' FrozenDict
        value = config.get("in_channels")
    else:
        value = getattr(config, "in_channels", None)
    if value is None:
        raise ValueError(
            f"{type(model).__name__} has no config.in_channels; pass in_channels explicitly."
        )
    return int(value)


def _example_input(
    model: nn.Module,
    resolution: Resolution,
    in_channels: int | None,
    batch_size: int,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Random N x C x H x W input in [-1, 1] with the model's dtype, on ``device`` or its own."""
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = device if device is not None else (param.device if param is not None else "cpu")
    h, w = _as_hw(resolution)
    c = _in_channels(model, in_channels)
    return torch.rand(batch_size, c, h, w, dtype=dtype, device=device) * 2 - 1


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(
    model: nn.Module, resolution: Resolution, in_channels: int | None = None, batch_size: int = 1
) -> int:
    """Multiply-accumulates per image for one forward pass at ``resolution``.

    Convention: ``torch.utils.flop_counter.FlopCounterMode`` total FLOPs / 2, i.e. the MACs of
    convolutions and matmuls as torch counts them (a transposed conv is counted per *input* pixel:
    ``Cin * Cout * k * k * H_in * W_in``); normalisation, activations, padding and additions are
    not counted. This gives 49.55G for the ngf-64 9-block ResNet generator at 256x256 (GAN
    Compression's counter, which counts transposed convs per output pixel, gives 56.8G).
    """
    x = _example_input(model, resolution, in_channels, batch_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2 // batch_size


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(
    model: nn.Module,
    resolution: Resolution,
    in_channels: int | None = None,
    batch_size: int = 1,
    num_threads: int | None = None,
    warmup: int = 3,
    repeats: int = 20,
    device: str | torch.device = "cpu",
) -> LatencyResult:
    """Time ``repeats`` forward passes (eval mode, no grad) with ``time.perf_counter``.

    ``num_threads`` sets torch's intra-op threads for the measurement only (restored after).
    The model must already be on ``device``; CUDA is synchronised around each run.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"Need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}."
        )
    device = torch.device(device)
    param = next(model.parameters(), None)
    if param is not None and param.device.type != device.type:
        raise ValueError(
            f"Model is on {param.device} but device={device}; call model.to({str(device)!r})."
        )
    x = _example_input(model, resolution, in_channels, batch_size, device=device)
    old_threads, was_training = torch.get_num_threads(), model.training
    times = []
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        model.eval()
        with torch.no_grad():
            for i in range(warmup + repeats):
                _sync(device)
                start = time.perf_counter()
                model(x)
                _sync(device)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
    deciles = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else times * 9
    return LatencyResult(
        median_ms=statistics.median(times),
        p10_ms=deciles[0],
        p90_ms=deciles[-1],
        min_ms=min(times),
        max_ms=max(times),
        repeats=repeats,
        num_threads=threads,
        device=str(device),
        batch_size=batch_size,
    )


def profile_model(
    model: nn.Module,
    resolution: Resolution = 256,
    latency: bool = True,
    name: str | None = None,
    in_channels: int | None = None,
    **latency_kwargs,
) -> EfficiencyProfile:
    """Params, MACs per image and (if ``latency``) :func:`measure_latency` of ``model``."""
    timing = measure_latency(model, resolution, in_channels, **latency_kwargs) if latency else None
    return EfficiencyProfile(
        name=name or type(model).__name__,
        params=count_parameters(model),
        macs=count_macs(model, resolution, in_channels),
        resolution=_as_hw(resolution),
        latency=timing,
    )


def compression_ratios(teacher: EfficiencyProfile, student: EfficiencyProfile) -> dict:
    """``params_ratio`` and ``macs_ratio`` (teacher / student, > 1 means smaller) and ``speedup``
    (teacher / student median latency; None without both latencies)."""
    speedup = None
    if teacher.latency is not None and student.latency is not None:
        speedup = teacher.latency.median_ms / student.latency.median_ms
    return {
        "params_ratio": teacher.params / max(student.params, 1),
        "macs_ratio": teacher.macs / max(student.macs, 1),
        "speedup": speedup,
    }


def _table_row(profile: EfficiencyProfile, reference: EfficiencyProfile) -> list[str]:
    ratios = compression_ratios(reference, profile)
    latency = profile.latency
    return [
        profile.name,
        f"{profile.params / 1e6:.3f}",
        f"{profile.macs / 1e9:.2f}",
        f"{latency.median_ms:.1f}" if latency else "-",
        f"{ratios['params_ratio']:.2f}",
        f"{ratios['macs_ratio']:.2f}",
        f"{ratios['speedup']:.2f}" if ratios["speedup"] is not None else "-",
    ]


def format_profiles(profiles: Sequence[EfficiencyProfile]) -> str:
    """Aligned text table; ratio columns compare every row with the first."""
    header = ["model", "params (M)", "MACs (G)", "latency (ms)", "params x", "MACs x", "speedup"]
    rows = [header] + [_table_row(p, profiles[0]) for p in profiles]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        for row in rows
    ]
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="wkd-profile", description="Params, MACs, latency of models.")
    p.add_argument("--model", required=True, help="Folder or Hub id of a save_pretrained model.")
    p.add_argument("--subfolder", default=None, help="Subfolder inside --model and --compare.")
    p.add_argument("--compare", nargs="*", default=[], help="More models; ratios are vs --model.")
    p.add_argument("--resolution", type=int, default=256, help="Square input size in pixels.")
    p.add_argument("--num_threads", type=int, default=None, help="torch threads while timing.")
    p.add_argument("--repeats", type=int, default=20, help="Timed forward passes per model.")
    p.add_argument("--warmup", type=int, default=3, help="Untimed forward passes first.")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--no_latency", action="store_true", help="Only params and MACs.")
    p.add_argument("--json", default=None, help="Also write the profiles to this JSON file.")
    return p.parse_args(argv)


def _load(name: str, subfolder: str | None) -> nn.Module:
    """Load through ``wkd_hf.models``; a failure exits with a one-line message, no traceback."""
    from wkd_hf.models import load_pretrained_model

    try:
        return load_pretrained_model(name, subfolder=subfolder)
    except Exception as err:  # noqa: BLE001 - any loading failure becomes a CLI error
        where = repr(name) + (f" (subfolder {subfolder!r})" if subfolder else "")
        sys.exit(f"wkd-profile: error: could not load model {where}: {type(err).__name__}: {err}")


def _profile(name: str, args: argparse.Namespace) -> EfficiencyProfile:
    model = _load(name, args.subfolder).to(args.device)
    if args.no_latency:
        return profile_model(model, args.resolution, latency=False, name=name)
    timing = {"num_threads": args.num_threads, "warmup": args.warmup, "repeats": args.repeats}
    return profile_model(model, args.resolution, name=name, device=args.device, **timing)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wkd-profile`` console script; prints a table, optionally writes JSON."""
    args = _parse_args(argv)
    profiles = [_profile(name, args) for name in [args.model, *args.compare]]
    print(f"resolution {args.resolution}x{args.resolution}, device {args.device}, batch 1")
    print(format_profiles(profiles))
    if args.json:
        report = {
            "profiles": [p.to_dict() for p in profiles],
            "ratios_vs_first": [compression_ratios(profiles[0], p) for p in profiles],
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
