"""The study's learning-curve figure: per variant, the mean over seeds of a validation metric at
each step, with a band of +- one sample standard deviation (none for a single seed)."""

from __future__ import annotations

import statistics
from pathlib import Path

# Validation metrics drawn per study: (key in the curve points, axis label).
CURVE_METRICS = {"facades": [("fcn_miou", "FCN mIoU (higher is better)"),
                             ("fcn_pixel_accuracy", "FCN pixel accuracy"),
                             ("l1", "L1 to the photo (lower is better)")],
                 "h2z": [("classifier_frechet_distance", "classifier Frechet distance (lower)"),
                         ("target_share", "share classified as zebra (higher)")]}


def curve_band(curves: list[list[dict]], metric: str) -> tuple[list[int], list[float], list[float]]:
    """``(steps, mean, std)`` over the runs at each step every run has reached."""
    length = min(len(c) for c in curves)
    steps = [curves[0][i]["step"] for i in range(length)]
    values = [[c[i]["metrics"][metric] for c in curves] for i in range(length)]
    return (steps, [statistics.fmean(v) for v in values],
            [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values])


def part_curves(records: dict[str, dict]) -> dict[str, list[list[dict]]]:
    """``{variant: [curve per seed]}`` from finished parts (their runs) or progress files."""
    out = {}
    for name, record in records.items():
        if "runs" in record and all("curve" in run for run in record["runs"]):
            out[name] = [run["curve"] for run in record["runs"]]
        elif "curves" in record:
            out[name] = record["curves"]
    return {name: curves for name, curves in out.items() if curves and all(curves)}


def plot_curves(study: str, curves: dict[str, list[list[dict]]], path: Path, title: str) -> bool:
    """One panel per metric of ``CURVE_METRICS[study]``, a line and band per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [(k, label) for k, label in CURVE_METRICS[study]
               if any(k in c[0][0]["metrics"] for c in curves.values())]
    if not metrics:
        return False
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for axis, (metric, label) in zip(axes[0], metrics):
        for name, runs in curves.items():
            if metric not in runs[0][0]["metrics"]:
                continue
            steps, mean, std = curve_band(runs, metric)
            axis.plot(steps, mean, marker="o", markersize=3, label=f"{name} ({len(runs)})")
            axis.fill_between(steps, [m - s for m, s in zip(mean, std)],
                              [m + s for m, s in zip(mean, std)], alpha=0.2)
        axis.set_xlabel("training step")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, title="variant (seeds)", title_fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
