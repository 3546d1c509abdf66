"""Efficiency columns of ``training_scripts/evaluate.py``: params, MACs and CPU latency of several
models, timed interleaved as ``wkd-profile`` does, with the spread and a warning when load made
the figures meaningless.

All models are timed in the same rounds (:func:`wkd_hf.metrics.efficiency.interleaved`: each
round times every model once, in a rotated order), so load that comes and goes hits them alike;
one model timed after the other is not comparable on a busy machine. A latency goes into a model
card only when it was timed over at least ``MIN_CARD_ROUNDS`` rounds and no spread exceeded
``SPREAD_WARNING``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from torch import nn

from .efficiency import SPREAD_WARNING, compression_ratios, profile_models, spread_warning

MIN_CARD_ROUNDS = 5  # fewer rounds give no usable spread
LATENCY_KEYS = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "latency_spread",
                "speedup_vs_first", "speedup_spread")


def time_models(models: Mapping[str, nn.Module], resolution: int, repeats: int,
                num_threads: int | None, warmup: int = 2) -> tuple[dict[str, dict], str | None]:
    """Params, MACs (per ``3 x resolution x resolution`` image) and, if ``repeats``, interleaved
    CPU float32 latency at batch 1 of copies of ``models`` (name -> model).

    Returns name -> fields (``latency_ms`` is the median over rounds, ``latency_spread`` its
    (p90 - p10) / median, ``speedup_vs_first`` the first model's median / this one's) and the
    ``spread_warning`` line (None when tight or untimed).
    """
    cpu = {name: copy.deepcopy(model).cpu().float() for name, model in models.items()}
    profiles = profile_models(cpu, resolution, latency=repeats > 0, num_threads=num_threads,
                              warmup=warmup, repeats=max(repeats, 1))
    fields = {}
    for profile in profiles:
        timing, ratios = profile.latency, compression_ratios(profiles[0], profile)
        fields[profile.name] = {
            "params": profile.params, "macs": profile.macs,
            "latency_ms": timing and timing.median_ms, "latency_p10_ms": timing and timing.p10_ms,
            "latency_p90_ms": timing and timing.p90_ms,
            "latency_spread": timing and timing.spread,
            "latency_rounds": timing and timing.repeats,
            "latency_threads": timing and timing.num_threads,
            "speedup_vs_first": ratios["speedup"], "speedup_spread": ratios["speedup_spread"]}
    return fields, spread_warning(profiles) if repeats else None


def card_worthy(record: Mapping, warning: str | None) -> bool:
    """Whether ``record``'s latency may be written into a model card."""
    rounds = record.get("latency_rounds") or 0
    return record.get("latency_ms") is not None and warning is None and rounds >= MIN_CARD_ROUNDS


def for_card(record: Mapping, warning: str | None) -> dict:
    """``record`` with its latency fields set to None unless :func:`card_worthy`."""
    if card_worthy(record, warning):
        return dict(record)
    return {**record, **dict.fromkeys(LATENCY_KEYS)}


def latency_cell(record: Mapping) -> str:
    """``"10.9 [10.2-11.5]"``: median [p10-p90] ms, or ``"-"`` when untimed."""
    if record.get("latency_ms") is None:
        return "-"
    if (record.get("latency_rounds") or 0) < 2:
        return f"{record['latency_ms']:.1f}"
    return f"{record['latency_ms']:.1f} [{record['latency_p10_ms']:.1f}-{record['latency_p90_ms']:.1f}]"


def latency_note(settings: Mapping, warning: str | None) -> str:
    """The results.md line under the table: how latency was timed, and the warning if any."""
    note = (f"Latency: CPU forward at batch 1, {settings.get('latency_threads')} thread(s), "
            f"median [p10-p90] over {settings.get('latency_rounds')} rounds, all models timed "
            "interleaved in the same rounds (rotated order).")
    if warning:
        note += (f" **{warning.removeprefix('warning: ')}** Latency was not written into any "
                 f"model card (limit: p10-p90 within {SPREAD_WARNING:.0%} of the median).")
    return note
