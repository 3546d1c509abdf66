"""Learning curves of the study: train a run in chunks (resuming its checkpoint), score the
weights at each chunk's end on the validation split, and stop where the curve flattens.

A curve is a list of ``{"step": k, "metrics": {...}}`` points. :func:`flattened` is the rule:
the best value of the last ``window`` points improves the best value before them by less than
``tolerance`` (relative). The rule reads the mean over seeds when several runs share a curve.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path


def best(values: list[float], higher: bool) -> float:
    return max(values) if higher else min(values)


def flattened(values: list[float], higher: bool, window: int, tolerance: float) -> bool:
    """True when the last ``window`` values improve the best before them by < ``tolerance``
    (relative to that best); False while fewer than ``window + 2`` values exist."""
    if len(values) < window + 2:
        return False
    before, recent = best(values[:-window], higher), best(values[-window:], higher)
    gain = (recent - before) if higher else (before - recent)
    return gain < tolerance * max(abs(before), 1e-12)


def mean_curve(curves: list[list[dict]], metric: str) -> list[float]:
    """The mean over runs of ``metric`` at each step all runs have reached."""
    length = min(len(c) for c in curves)
    return [statistics.fmean(c[i]["metrics"][metric] for c in curves) for i in range(length)]


def train_seconds(curve: list[dict]) -> float:
    """A run's training time over every sitting: its points' ``chunk_train_seconds``, as their
    processes timed them (a part resumed in a later sitting keeps the earlier chunks' time)."""
    return round(sum(point.get("chunk_train_seconds", 0) for point in curve), 1)


def read_curve(folder: Path) -> list[dict]:
    path = folder / "curve.json"
    return json.loads(path.read_text()) if path.is_file() else []


def write_curve(folder: Path, curve: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "curve.json.tmp"
    tmp.write_text(json.dumps(curve, indent=1))
    os.replace(tmp, folder / "curve.json")


def checkpoint_step(folder: Path) -> int:
    """The step of the run's newest checkpoint (0 without one)."""
    steps = [int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*")
             if p.name.split("-")[1].isdigit()]
    return max(steps, default=0)
