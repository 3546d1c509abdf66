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

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

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
