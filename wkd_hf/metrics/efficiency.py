"""Efficiency profile of a generator: parameters, MACs and measured latency.

``wkd-profile`` (see :func:`main`) prints the profile of one model and its ratios to others
(saved model folders, Hub ids, or pix2pix / CycleGAN / GAN Compression checkpoint files)::

    wkd-profile --model teacher_dir --compare student_dir --resolution 256 --num_threads 2
    wkd-profile --model latest_net_G.pth --no_latency
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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
    bad_threads = num_threads is not None and num_threads < 1
    if repeats < 1 or warmup < 0 or batch_size < 1 or bad_threads:
        raise ValueError(
            f"Need repeats >= 1, warmup >= 0, batch_size >= 1 and num_threads >= 1 (or None); got "
            f"repeats={repeats}, warmup={warmup}, batch_size={batch_size}, "
            f"num_threads={num_threads}."
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


def _count(minimum: int):
    """argparse type: an int >= ``minimum`` (a bad value is one ``error:`` line, no traceback)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="wkd-profile", description="Params, MACs, latency of models.",
                                allow_abbrev=False)
    p.add_argument("--model", required=True,
                   help="Folder or Hub id of a save_pretrained model, or a pix2pix / CycleGAN / "
                        "GAN Compression checkpoint file (.pth, .safetensors).")
    p.add_argument("--subfolder", default=None, help="Subfolder inside --model and --compare.")
    p.add_argument("--compare", nargs="*", default=[], help="More models; ratios are vs --model.")
    p.add_argument("--resolution", type=_count(1), default=256, help="Square input size (px).")
    p.add_argument("--batch_size", type=_count(1), default=1, help="Images per timed forward.")
    p.add_argument("--num_threads", type=_count(1), default=None, help="torch threads (timing).")
    p.add_argument("--repeats", type=_count(1), default=20, help="Timed forward passes per model.")
    p.add_argument("--warmup", type=_count(0), default=3, help="Untimed forward passes first.")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--no_latency", action="store_true", help="Only params and MACs.")
    p.add_argument("--suggest", action="store_true",
                   help="Treat --model as a teacher and list candidate students (ResNet and "
                        "mobile ngf 8-48, or U-Nets) with params, MACs and measured latency.")
    p.add_argument("--json", default=None, help="Also write the profiles to this JSON file.")
    return p.parse_args(argv)


def _fail(message: str) -> None:
    sys.exit(f"wkd-profile: error: {message}")


def _check_device(device: str) -> None:
    """``--device`` must parse and exist on this machine."""
    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        _fail(f"--device {device!r} is not a device ({err}); use cpu, cuda or cuda:<index>")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            _fail(f"--device {device} but CUDA is not available on this machine; use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            _fail(f"--device {device} but this machine has {count} CUDA device(s) (0..{count - 1})")
    elif parsed.type not in ("cpu", "mps"):
        _fail(f"--device {device}: use cpu, cuda or cuda:<index>")


def _check_json_path(path: str) -> None:
    """Create ``--json``'s folder and check the file can be written, before any profiling."""
    existed = os.path.exists(path)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as err:
        where = f" ({err.filename})" if err.filename and err.filename != path else ""
        _fail(f"cannot write --json {path}: {err.strerror or err}{where}")
    if not existed:
        os.remove(path)


def _load(name: str, subfolder: str | None) -> nn.Module:
    """Load a saved model, or convert a checkpoint file; a failure exits with a one-line message,
    no traceback."""
    from wkd_hf.models import load_pretrained_model

    try:
        if os.path.isfile(name):
            from wkd_hf.conversion import convert_pix2pix_checkpoint

            return convert_pix2pix_checkpoint(name)
        return load_pretrained_model(name, subfolder=subfolder)
    except Exception as err:  # noqa: BLE001 - any loading failure becomes a CLI error
        where = repr(name) + (f" (subfolder {subfolder!r})" if subfolder else "")
        _fail(f"could not load model {where}: {type(err).__name__}: {err}")


def _profile(name: str, args: argparse.Namespace) -> EfficiencyProfile:
    model = _load(name, args.subfolder)
    check = getattr(model, "check_input_size", None)
    if callable(check):
        try:
            check(args.resolution, args.resolution)
        except ValueError as err:
            _fail(f"--resolution {args.resolution} does not fit {name}: {err}")
    model = model.to(args.device)
    if args.no_latency:
        return profile_model(model, args.resolution, latency=False, name=name)
    timing = {"num_threads": args.num_threads, "warmup": args.warmup, "repeats": args.repeats,
              "batch_size": args.batch_size}
    return profile_model(model, args.resolution, name=name, device=args.device, **timing)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wkd-profile`` console script; prints a table, optionally writes JSON.
    Bad arguments, devices, output paths, models or resolutions exit with one ``error:`` line."""
    args = _parse_args(argv)
    _check_device(args.device)
    if args.json:
        _check_json_path(args.json)
    if args.suggest:
        from wkd_hf.budget import suggest_students

        teacher = _load(args.model, args.subfolder).to(args.device)
        timing = {} if args.no_latency else {"num_threads": args.num_threads, "warmup":
                                              args.warmup, "repeats": args.repeats,
                                              "batch_size": args.batch_size}
        try:
            profiles = suggest_students(teacher, args.resolution, latency=not args.no_latency,
                                        device=args.device, **timing)
        except ValueError as err:
            _fail(f"--suggest for {args.model}: {err}")
    else:
        profiles = [_profile(name, args) for name in [args.model, *args.compare]]
    batch = 1 if args.no_latency else args.batch_size
    print(f"resolution {args.resolution}x{args.resolution}, device {args.device}, batch {batch}")
    print(format_profiles(profiles))
    if args.json:
        report = {
            "profiles": [p.to_dict() for p in profiles],
            "ratios_vs_first": [compression_ratios(profiles[0], p) for p in profiles],
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
