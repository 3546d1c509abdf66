"""The study's verdict on each of the paper's claims, from metrics that no variant trains on.

A comparison of two variants on one metric is ``"better"`` / ``"worse"`` when the difference of
the seed means exceeds the seed spread (``exceeds_spread``: twice the standard error of the
difference) in that direction, else ``"within"``. A claim is *supported* when every deciding
comparison goes its way beyond the spread, *not supported* when any goes against it beyond the
spread, and *inconclusive at this scale* otherwise.
"""

from __future__ import annotations

import math
import statistics

HIGH = ("LH", "HL", "HH")

# The metrics that decide, per study: (key in a run's "metrics", label, higher is better).
DECIDING = {"h2z": [("target_share", "zebra share", True),
                    ("classifier_frechet_distance", "classifier FD", False)],
            "facades": [("fcn_miou", "FCN mIoU", True),
                        ("fcn_pixel_accuracy", "FCN pixel accuracy", True)]}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def exceeds_spread(a: list[float], b: list[float]) -> bool:
    """``|mean a - mean b|`` above twice the standard error of the difference."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return abs(ma - mb) > 2 * math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b))


def metric_values(runs: list[dict], key: str) -> list[float]:
    return [run["metrics"][key] for run in runs if key in run.get("metrics", {})]


def compare(a: list[float], b: list[float], higher: bool) -> str:
    """``a`` against ``b``: "better", "worse" (beyond the spread) or "within"."""
    if not a or not b or not exceeds_spread(a, b):
        return "within"
    return "better" if (statistics.fmean(a) > statistics.fmean(b)) == higher else "worse"


def verdict(outcomes: list[str]) -> str:
    if outcomes and all(o == "better" for o in outcomes):
        return "supported"
    if "worse" in outcomes:
        return "not supported"
    return "inconclusive at this scale"


def fmt(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def _pairs(records: dict, study: str, method: str, others: list[str]) -> tuple[list[str], list[str]]:
    """Every deciding metric of ``method`` against each of ``others``: outcomes and sentences."""
    outcomes, lines = [], []
    for other in others:
        if method not in records or other not in records:
            continue
        for key, label, higher in DECIDING[study]:
            a = metric_values(records[method]["runs"], key)
            b = metric_values(records[other]["runs"], key)
            if not a or not b:
                continue
            outcome = compare(a, b, higher)
            outcomes.append(outcome)
            lines.append(f"{label} {fmt(a, 3)} ({method}) vs {fmt(b, 3)} ({other}): {outcome}")
    return outcomes, lines


def band_gap(run: dict, key: str) -> tuple[float, float]:
    """``(LL, mean of the high bands)`` of a run's band distances (``bands`` or ``teacher_bands``)."""
    bands = run[key]
    high = [bands[b] for b in HIGH] if all(b in bands for b in HIGH) else [
        v for k, v in bands.items() if k[:2] in HIGH]
    return bands["LL"], statistics.fmean(high)


def claim_bands(records: dict, teacher: dict | None) -> tuple[str, list[str]]:
    """Claim 1, small GANs fail mostly in the high bands: per undistilled student, (a) its
    distance to the teacher's outputs is larger in the high bands than in LL, on every seed;
    (b) its band gap to the real target images exceeds the teacher's more in the high bands
    than in LL, on every seed. Neither is any training objective of an undistilled student."""
    outcomes, lines = [], []
    for name in ("no_kd", "small_no_kd"):
        if name not in records:
            continue
        runs = records[name]["runs"]
        if all("teacher_bands" in r for r in runs):
            gaps = [band_gap(r, "teacher_bands") for r in runs]
            ok = all(high > ll for ll, high in gaps)
            outcomes.append("better" if ok else "worse")
            lines.append(f"{name}: distance to the teacher LL {fmt([g[0] for g in gaps], 3)}, "
                         f"high {fmt([g[1] for g in gaps], 3)}: high {'>' if ok else 'not >'} "
                         "LL on every seed")
        if teacher and all("bands" in r for r in runs):
            t_ll, t_high = band_gap(teacher, "bands")
            extra = [(high - t_high, ll - t_ll) for ll, high in (band_gap(r, "bands") for r in runs)]
            ok = all(h > l for h, l in extra)
            outcomes.append("better" if ok else "worse")
            lines.append(f"{name}: band gap to the real images above the teacher's, LL "
                         f"{fmt([e[1] for e in extra], 3)}, high {fmt([e[0] for e in extra], 3)}"
                         f": high {'>' if ok else 'not >'} LL on every seed")
    return _verdict_of(outcomes, lines)


def claim_high_bands(records: dict, study: str) -> tuple[str, list[str]]:
    """Claim 2, distil the high bands: WKD high against no KD, output KD (the whole image) and
    WKD on the low band, on the study's deciding metrics."""
    return _verdict_of(*_pairs(records, study, "wkd_high", ["no_kd", "output_kd", "wkd_low"]))


def claim_discriminator(records: dict, study: str) -> tuple[str, list[str]]:
    """Claim 3, shrink the discriminator with the generator: WKD high with the shrunk D against
    the same with the teacher-width D; and the small student's gain from WKD."""
    outcomes, lines = _pairs(records, study, "wkd_high", ["wkd_high_teacher_D"])
    _, small_lines = _pairs(records, study, "small_wkd_high", ["small_no_kd"])
    if small_lines:
        lines += ["small student (not deciding claim 3, for context): " + "; ".join(small_lines)]
    return _verdict_of(outcomes, lines)


def _verdict_of(outcomes: list[str], lines: list[str]) -> tuple[str, list[str]]:
    return (verdict(outcomes) if outcomes else "not measured yet"), lines
