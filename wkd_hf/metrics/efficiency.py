"""Efficiency profile of a generator: parameters, MACs and measured latency.

``wkd-profile`` (see :func:`main`) prints the profile of a reference model (``--model``, e.g. the
teacher) and of others (``--compare``, e.g. students: saved model folders, Hub ids, or pix2pix /
CycleGAN / GAN Compression checkpoint files), with ratios reference / model (> 1: smaller or
faster than the reference)::

    wkd-profile --model teacher_dir --compare student_dir --resolution 256 --num_threads 2
    wkd-profile --model latest_net_G.pth --no_latency

Latency is timed interleaved (:func:`interleaved`): every model is warmed up, then each round
times every model once, in an order rotated per round, so machine load hits all models alike.
Latencies are median [p10, p90] over rounds; a speed-up is the ratio of medians, with the p10-p90
of the per-round ratios as its range.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..safe_files import write_text_beside

Resolution = int | tuple[int, int]

SPREAD_WARNING = 0.25
"""Warn when (p90 - p10) / median of a latency, or of the per-round speed-ups, exceeds this."""


@dataclasses.dataclass
class LatencyResult:
    """Wall-clock forward latency over ``repeats`` timed rounds (after ``warmup`` untimed runs).

    ``times_ms``: one time per round, in round order (per-round speed-ups pair them up);
    ``spread``: (p90 - p10) / median.
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    num_threads: int
    device: str
    batch_size: int
    times_ms: list[float] = dataclasses.field(default_factory=list)
    spread: float = 0.0


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


def quantiles(values: Sequence[float]) -> dict:
    """``{"median", "p10", "p90"}`` of ``values`` (deciles interpolated, inclusive)."""
    if len(values) < 2:
        return {"median": values[0], "p10": values[0], "p90": values[0]}
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return {"median": statistics.median(values), "p10": deciles[0], "p90": deciles[-1]}


def relative_spread(values: Sequence[float]) -> float:
    """(p90 - p10) / median of ``values``: 0.25 means the middle 80 % spans 25 % of the median."""
    q = quantiles(values)
    return (q["p90"] - q["p10"]) / q["median"] if q["median"] else 0.0


def interleaved(
    runners: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    clock: Callable[[], float] | None = None,
) -> dict[str, list[float]]:
    """Time each runner once per round, in ``repeats`` rounds, after ``warmup`` untimed calls of
    every runner. Round ``r`` starts at the ``r``-th runner (rotated order), so every runner
    takes every place in the round equally often and load hits all alike.

    Returns name -> ``repeats`` times in ms (round order). ``clock`` (seconds) defaults to
    ``time.perf_counter``.
    """
    clock = clock or time.perf_counter
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            runners[name]()
            times[name].append((clock() - start) * 1000)
    return times


def _latency_result(times: list[float], threads: int, device: str,
                    batch_size: int) -> LatencyResult:
    q = quantiles(times)
    return LatencyResult(
        median_ms=q["median"], p10_ms=q["p10"], p90_ms=q["p90"], min_ms=min(times),
        max_ms=max(times), repeats=len(times), num_threads=threads, device=device,
        batch_size=batch_size, times_ms=list(times), spread=relative_spread(times),
    )


def _check_timing_args(repeats: int, warmup: int, batch_size: int, num_threads: int | None):
    bad_threads = num_threads is not None and num_threads < 1
    if repeats < 1 or warmup < 0 or batch_size < 1 or bad_threads:
        raise ValueError(
            f"Need repeats >= 1, warmup >= 0, batch_size >= 1 and num_threads >= 1 (or None); got "
            f"repeats={repeats}, warmup={warmup}, batch_size={batch_size}, "
            f"num_threads={num_threads}."
        )


def _check_on_device(model: nn.Module, device: torch.device) -> None:
    param = next(model.parameters(), None)
    if param is not None and param.device.type != device.type:
        raise ValueError(
            f"Model is on {param.device} but device={device}; call model.to({str(device)!r})."
        )


def measure_latencies(
    models: Mapping[str, nn.Module],
    resolution: Resolution,
    in_channels: int | None = None,
    batch_size: int = 1,
    num_threads: int | None = None,
    warmup: int = 3,
    repeats: int = 20,
    device: str | torch.device = "cpu",
) -> dict[str, LatencyResult]:
    """Forward latency of several models, timed :func:`interleaved` (eval mode, no grad).

    Each model gets a random ``batch_size x C x H x W`` input. ``num_threads`` sets torch's
    intra-op threads for the measurement only (restored after). Models must already be on
    ``device``; CUDA is synchronised after each forward.
    """
    _check_timing_args(repeats, warmup, batch_size, num_threads)
    device = torch.device(device)
    for model in models.values():
        _check_on_device(model, device)
    inputs = {name: _example_input(m, resolution, in_channels, batch_size, device=device)
              for name, m in models.items()}
    old_threads = torch.get_num_threads()
    was_training = {name: m.training for name, m in models.items()}

    def runner(name: str) -> Callable[[], None]:
        def run() -> None:
            models[name](inputs[name])
            _sync(device)
        return run

    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        threads = torch.get_num_threads()
        for model in models.values():
            model.eval()
        with torch.no_grad():
            _sync(device)
            times = interleaved({name: runner(name) for name in models}, repeats, warmup)
    finally:
        torch.set_num_threads(old_threads)
        for name, model in models.items():
            model.train(was_training[name])
    return {name: _latency_result(t, threads, str(device), batch_size)
            for name, t in times.items()}


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
    """:func:`measure_latencies` of one model (``repeats`` timed forwards after ``warmup``)."""
    return measure_latencies({"model": model}, resolution, in_channels, batch_size, num_threads,
                             warmup, repeats, device)["model"]


def profile_models(
    models: Mapping[str, nn.Module],
    resolution: Resolution = 256,
    latency: bool = True,
    in_channels: int | None = None,
    **latency_kwargs,
) -> list[EfficiencyProfile]:
    """Params, MACs per image and (if ``latency``) interleaved :func:`measure_latencies` of
    ``models`` (name -> model), in their order."""
    timings = (measure_latencies(models, resolution, in_channels, **latency_kwargs)
               if latency else {})
    return [
        EfficiencyProfile(
            name=name,
            params=count_parameters(model),
            macs=count_macs(model, resolution, in_channels),
            resolution=_as_hw(resolution),
            latency=timings.get(name),
        )
        for name, model in models.items()
    ]


def profile_model(
    model: nn.Module,
    resolution: Resolution = 256,
    latency: bool = True,
    name: str | None = None,
    in_channels: int | None = None,
    **latency_kwargs,
) -> EfficiencyProfile:
    """Params, MACs per image and (if ``latency``) :func:`measure_latency` of ``model``."""
    name = name or type(model).__name__
    return profile_models({name: model}, resolution, latency, in_channels, **latency_kwargs)[0]


def _per_round_speedups(reference: EfficiencyProfile, profile: EfficiencyProfile) -> list[float]:
    """reference_i / model_i for each round i (empty unless both were timed in the same rounds)."""
    ref, lat = reference.latency, profile.latency
    if ref is None or lat is None or len(ref.times_ms) != len(lat.times_ms):
        return []
    return [r / t for r, t in zip(ref.times_ms, lat.times_ms) if t > 0]


def compression_ratios(reference: EfficiencyProfile, profile: EfficiencyProfile) -> dict:
    """Ratios reference / ``profile`` (> 1: ``profile`` is smaller or faster than the reference).

    ``params_ratio``, ``macs_ratio``; ``speedup``: reference median latency / model median
    latency (None without both latencies); ``speedup_p10`` / ``speedup_p90``: range of the
    per-round ratios (None unless timed in the same rounds); ``speedup_spread``: their
    (p90 - p10) / median.
    """
    speedup = None
    if reference.latency is not None and profile.latency is not None:
        speedup = reference.latency.median_ms / profile.latency.median_ms
    rounds = _per_round_speedups(reference, profile)
    q = quantiles(rounds) if rounds else {"p10": None, "p90": None}
    return {
        "params_ratio": reference.params / max(profile.params, 1),
        "macs_ratio": reference.macs / max(profile.macs, 1),
        "speedup": speedup,
        "speedup_p10": q["p10"],
        "speedup_p90": q["p90"],
        "speedup_spread": relative_spread(rounds) if rounds else None,
    }


def spread_warning(profiles: Sequence[EfficiencyProfile],
                   threshold: float = SPREAD_WARNING) -> str | None:
    """One line when a latency's, or a per-round speed-up's, (p90 - p10) / median exceeds
    ``threshold`` (the first profile is the reference); None when all are tight."""
    timed = [p for p in profiles if p.latency is not None]
    if not timed:
        return None
    worst = max(timed, key=lambda p: p.latency.spread)
    spreads = {p.name: compression_ratios(profiles[0], p)["speedup_spread"] or 0.0
               for p in timed[1:]}
    worst_ratio = max(spreads, key=spreads.get, default=None)
    problems = []
    if worst.latency.spread > threshold:
        problems.append(f"latency p10-p90 spans {worst.latency.spread:.0%} of the median "
                        f"for {worst.name}")
    if worst_ratio is not None and spreads[worst_ratio] > threshold:
        problems.append(f"per-round speed-up of {worst_ratio} varies by "
                        f"{spreads[worst_ratio]:.0%} (p10-p90 / median)")
    if not problems:
        return None
    return (f"warning: timings are noisy ({'; '.join(problems)}; limit {threshold:.0%}): the "
            f"machine is probably busy; rerun on a quiet machine or with more --repeats.")


def _latency_cell(latency: LatencyResult | None) -> str:
    if latency is None:
        return "-"
    return f"{latency.median_ms:.1f} [{latency.p10_ms:.1f}, {latency.p90_ms:.1f}]"


def _speedup_cell(ratios: dict) -> str:
    if ratios["speedup"] is None:
        return "-"
    if ratios["speedup_p10"] is None:
        return f"{ratios['speedup']:.2f}x"
    return f"{ratios['speedup']:.2f}x [{ratios['speedup_p10']:.2f}, {ratios['speedup_p90']:.2f}]"


def _table_row(profile: EfficiencyProfile, reference: EfficiencyProfile) -> list[str]:
    ratios = compression_ratios(reference, profile)
    return [
        profile.name,
        f"{profile.params / 1e6:.3f}",
        f"{profile.macs / 1e9:.2f}",
        _latency_cell(profile.latency),
        f"{ratios['params_ratio']:.2f}",
        f"{ratios['macs_ratio']:.2f}",
        _speedup_cell(ratios),
    ]


def format_profiles(profiles: Sequence[EfficiencyProfile]) -> str:
    """Aligned text table; ratio columns are the first row (the reference) / each row."""
    header = ["model", "params (M)", "MACs (G)", "latency ms [p10, p90]", "params x", "MACs x",
              "speed-up [p10, p90]"]
    rows = [header] + [_table_row(p, profiles[0]) for p in profiles]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        for row in rows
    ]
    return "\n".join(lines)


def ratio_legend(profiles: Sequence[EfficiencyProfile]) -> str:
    """What the ratio columns mean, naming the reference (the first profile)."""
    ref = profiles[0].name
    return (f"speed-up vs {ref} (the reference, --model) = reference latency / model latency "
            f"(ratio of medians; [p10, p90] of the per-round ratios); params x and MACs x are "
            f"also reference / model: > 1 means smaller or faster than {ref}.")


def bigger_than_reference_note(profiles: Sequence[EfficiencyProfile]) -> str | None:
    """A hint when a compared model has more MACs than the reference (its ratios are < 1)."""
    bigger = [p.name for p in profiles[1:] if p.macs > profiles[0].macs]
    if not bigger:
        return None
    return (f"note: {', '.join(bigger)} has more MACs than the reference {profiles[0].name}, so "
            f"its ratios are < 1; to read students' speed-ups as > 1, pass the teacher as --model "
            f"and the students as --compare.")


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
    p = argparse.ArgumentParser(
        prog="wkd-profile", allow_abbrev=False,
        description="Params, MACs and latency of models. --model is the reference: every ratio "
                    "(params x, MACs x, speed-up) is reference / model, so with the teacher as "
                    "--model and students as --compare the teacher shows 1.00x and students > 1. "
                    "Latency: every model is warmed up, then each of --repeats rounds times every "
                    "model once (order rotated per round), so load hits all alike; reported as "
                    "median [p10, p90], speed-up = reference median / model median [p10, p90 of "
                    "the per-round ratios].",
        epilog="example: wkd-profile --model teacher_dir --compare student_dir --resolution 256 "
               "--num_threads 2")
    p.add_argument("--model", required=True,
                   help="The reference (e.g. the teacher): folder or Hub id of a save_pretrained "
                        "model, or a pix2pix / CycleGAN / GAN Compression checkpoint file (.pth, "
                        ".safetensors). Its ratios are 1.00.")
    p.add_argument("--subfolder", default=None, help="Subfolder inside --model and --compare.")
    p.add_argument("--compare", nargs="*", default=[],
                   help="More models (e.g. students), compared with --model: ratio = --model / "
                        "this model (> 1: smaller or faster than the reference).")
    p.add_argument("--resolution", type=_count(1), default=256, help="Square input size (px).")
    p.add_argument("--batch_size", type=_count(1), default=1, help="Images per timed forward.")
    p.add_argument("--num_threads", type=_count(1), default=None,
                   help="torch intra-op threads while timing (default: torch's current setting, "
                        "torch.get_num_threads(); the count used is printed).")
    p.add_argument("--repeats", type=_count(1), default=20,
                   help="Timed rounds; each round times every model once. More rounds narrow "
                        "the range on a busy machine.")
    p.add_argument("--warmup", type=_count(0), default=3,
                   help="Untimed forward passes of every model before the rounds.")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--no_latency", action="store_true", help="Only params and MACs.")
    p.add_argument("--suggest", action="store_true",
                   help="Treat --model as a teacher (the reference) and list candidate students "
                        "(ResNet and mobile ngf 8-48, or U-Nets) with params, MACs and measured "
                        "latency.")
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
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
        _fail(f"--json {path} is a link or not a regular file; give a new file name")
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


def _unique(names: Sequence[str]) -> list[str]:
    """``names`` with repeats suffixed ``#2``, ``#3``... (the same model may be listed twice)."""
    out: list[str] = []
    for name in names:
        label, n = name, 1
        while label in out:
            n += 1
            label = f"{name}#{n}"
        out.append(label)
    return out


def _loaded_models(names: Sequence[str], args: argparse.Namespace) -> dict[str, nn.Module]:
    """Name -> model on ``--device``, in order; a resolution a model cannot take exits cleanly."""
    models = {}
    for label, name in zip(_unique(names), names):
        model = _load(name, args.subfolder)
        check = getattr(model, "check_input_size", None)
        if callable(check):
            try:
                check(args.resolution, args.resolution)
            except ValueError as err:
                _fail(f"--resolution {args.resolution} does not fit {name}: {err}")
        models[label] = model.to(args.device)
    return models


def _suggested_models(args: argparse.Namespace) -> dict[str, nn.Module]:
    """The teacher (--model) then the candidate students of ``wkd_hf.budget`` (fresh weights)."""
    from wkd_hf.budget import candidate_students
    from wkd_hf.recipes import build_student

    teacher = _loaded_models([args.model], args)[args.model]
    models = {"teacher": teacher}
    try:
        for label, ngf, kind in candidate_students(teacher, args.resolution):
            models[label] = build_student(teacher, ngf, kind).to(args.device)
    except ValueError as err:
        _fail(f"--suggest for {args.model}: {err}")
    return models


def _report(profiles: list[EfficiencyProfile], args: argparse.Namespace) -> dict:
    """The JSON report: settings, profiles, ratios vs the reference and the spread warning."""
    latency = profiles[0].latency
    return {
        "reference": profiles[0].name,
        "speedup_definition": "reference median latency / model median latency; speedup_p10 / "
                              "speedup_p90: p10 / p90 of the per-round ratios",
        "num_threads": latency.num_threads if latency else None,
        "rounds": None if args.no_latency else args.repeats,
        "warmup": None if args.no_latency else args.warmup,
        "order": None if args.no_latency else "interleaved, rotated each round",
        "warning": spread_warning(profiles),
        "profiles": [p.to_dict() for p in profiles],
        "ratios_vs_reference": [compression_ratios(profiles[0], p) for p in profiles],
    }


def _header(profiles: list[EfficiencyProfile], args: argparse.Namespace) -> str:
    line = f"resolution {args.resolution}x{args.resolution}, device {args.device}"
    latency = profiles[0].latency
    if latency is None:
        return line + ", batch 1"
    return (line + f", batch {args.batch_size}, torch threads {latency.num_threads} "
            f"(torch.get_num_threads; set with --num_threads), {args.repeats} interleaved rounds "
            f"after {args.warmup} warm-up")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wkd-profile`` console script; prints a table, optionally writes JSON.
    Bad arguments, devices, output paths, models or resolutions exit with one ``error:`` line."""
    args = _parse_args(argv)
    _check_device(args.device)
    if args.json:
        _check_json_path(args.json)
    models = _suggested_models(args) if args.suggest else \
        _loaded_models([args.model, *args.compare], args)
    timing = {"num_threads": args.num_threads, "warmup": args.warmup, "repeats": args.repeats,
              "batch_size": args.batch_size, "device": args.device}
    try:
        if args.no_latency:
            profiles = profile_models(models, args.resolution, latency=False)
        else:
            profiles = profile_models(models, args.resolution, **timing)
    except (MemoryError, RuntimeError) as err:  # torch.OutOfMemoryError is a RuntimeError
        message = str(err)
        if not isinstance(err, (MemoryError, torch.OutOfMemoryError)) and \
                "alloc" not in message.lower():
            raise
        first = (message.strip().splitlines() or [type(err).__name__])[0][:200]
        _fail(f"--resolution {args.resolution} needs more memory than {args.device} has "
              f"({first}); use a smaller --resolution or --batch_size")
    report = _report(profiles, args)
    print(_header(profiles, args))
    print(format_profiles(profiles))
    for line in (ratio_legend(profiles), bigger_than_reference_note(profiles), report["warning"]):
        if line:
            print(line)
    if args.json:
        write_text_beside(args.json, json.dumps(report, indent=2), "--json report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
