"""Tables and figures of the seeded study, from the result files that ``study.py`` commits.

    python benchmarks/study_report.py [--scale cpu]     # make study-report

Reads ``benchmarks/study_results/<scale>/**.json`` and writes, beside them, ``REPORT.md`` (the
tables and what they say about each claim), ``bands.png`` (per-band fidelity) and the picture grids
``facades_grid.png`` / ``h2z_grid.png``. Needs no network, no data and no trained model.

Statistics: mean +- sample std over seeds. A difference "exceeds the seed spread" when
``|mean_a - mean_b| > 2 * sqrt(std_a**2 / n_a + std_b**2 / n_b)`` (about a two-standard-error
rule; with 3 seeds it is a screen, not a significance test).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study_figures  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = ROOT / "benchmarks" / "study_results"
HIGH = ("LH", "HL", "HH")
FACADES_ORDER = ("no_kd", "output_kd", "feature_kd", "wkd_low", "wkd_all", "wkd_high",
                 "wkd_high_teacher_D")
LABELS = {"no_kd": "no distillation", "output_kd": "output KD", "feature_kd": "feature KD",
          "wkd_low": "WKD low band (LL)", "wkd_all": "WKD all bands", "wkd_high": "WKD high bands",
          "wkd_high_teacher_D": "WKD high, teacher-width D", "teacher": "teacher"}


# ----------------------------------------------------------------------------- numbers
def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def exceeds_spread(a: list[float], b: list[float]) -> bool:
    """``|mean a - mean b|`` above twice the standard error of the difference."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return abs(ma - mb) > 2 * math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b))


def high_band(bands: dict) -> float:
    """Mean distance over the high bands (LH, HL, HH aggregated over levels)."""
    if all(b in bands for b in HIGH):
        return statistics.fmean(bands[b] for b in HIGH)
    return statistics.fmean(v for k, v in bands.items() if k[:2] in HIGH)  # per level: LH1, ...


def run_values(runs: list[dict], metric: str) -> list[float]:
    """One number per seed: a paired metric, or a band summary (``bands_LL``, ``teacher_high``)."""
    out = []
    for run in runs:
        if metric in run.get("metrics", {}):
            out.append(run["metrics"][metric])
        elif metric.startswith(("bands_", "teacher_")):
            key, band = metric.split("_", 1)
            bands = run.get("bands" if key == "bands" else "teacher_bands")
            if bands:  # the teacher has no distance to itself
                out.append(high_band(bands) if band == "high" else bands[band])
    return out


def fmt(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


# ----------------------------------------------------------------------------- loading
def load(folder: Path) -> dict[str, dict]:
    """``{"facades/no_kd": record, ...}`` for every result file under ``folder``."""
    return {str(p.relative_to(folder).with_suffix("")): json.loads(p.read_text())
            for p in sorted(folder.rglob("*.json"))}


def study_records(results: dict, study: str) -> dict[str, dict]:
    return {part.split("/", 1)[1]: record for part, record in results.items()
            if part.startswith(study + "/") and "runs" in record}


# ----------------------------------------------------------------------------- tables
def facades_table(records: dict[str, dict]) -> list[str]:
    columns = [("psnr", "PSNR (dB) ↑", 2), ("ssim", "SSIM ↑", 4), ("l1", "L1 ↓", 4),
               ("bands_LL", "LL to photo ↓", 3), ("bands_high", "high to photo ↓", 3),
               ("teacher_LL", "LL to teacher ↓", 3), ("teacher_high", "high to teacher ↓", 3)]
    lines = ["| model | seeds | " + " | ".join(c[1] for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for name in ("teacher", *FACADES_ORDER):
        if name in records:
            runs = records[name]["runs"]
            cells = [fmt(run_values(runs, key), digits) for key, _, digits in columns]
            lines.append(f"| {LABELS[name]} | {len(runs)} | " + " | ".join(cells) + " |")
    return lines


def comparison_table(records: dict[str, dict], reference: str, metrics: list[tuple]) -> list[str]:
    """Each variant minus ``reference``: the difference of means and whether it beats the spread."""
    if reference not in records:
        return []
    ref = records[reference]["runs"]
    lines = [f"| vs {LABELS[reference]} | " + " | ".join(label for _, label, _ in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for name in FACADES_ORDER:
        if name == reference or name not in records:
            continue
        cells = []
        for key, _, digits in metrics:
            a, b = run_values(records[name]["runs"], key), run_values(ref, key)
            if not a or not b:
                cells.append("-")
                continue
            diff = statistics.fmean(a) - statistics.fmean(b)
            cells.append(f"{diff:+.{digits}f}{' *' if exceeds_spread(a, b) else ''}")
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    return lines


def magnitude_table(record: dict) -> list[str]:
    """Detail per band relative to the photos (``facades/band_energy``): mean ± std over seeds."""
    ratios = record["band_magnitude_ratio"]
    lines = ["| model | " + " | ".join(f"{b} ratio" for b in ("LL", *HIGH)) + " |", "|---|---|---|---|---|"]
    for name in ("teacher", *FACADES_ORDER):
        if name in ratios:
            cells = [fmt([r[b] for r in ratios[name]], 3) for b in ("LL", *HIGH)]
            lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    return lines


def finding_detail(energy: dict | None) -> str:
    """Claim 1 measured as detail kept: the no-KD student's band magnitudes over the teacher's."""
    ratios = (energy or {}).get("band_magnitude_ratio", {})
    if not {"teacher", "no_kd"} <= ratios.keys():
        return ""
    teacher = ratios["teacher"][0]
    kept = {b: statistics.fmean(r[b] for r in ratios["no_kd"]) / teacher[b] for b in ("LL", *HIGH)}
    text = ", ".join(f"{b} {v:.2f}x" for b, v in kept.items())
    verdict = ("keeps less of the teacher's detail in every high band than in LL: agrees with claim 1"
               if max(kept[b] for b in HIGH) < kept["LL"] else
               "does not lose more in every high band than in LL: claim 1 is not supported by this measure")
    return (f" Measured as detail (mean |wavelet coefficient| relative to the photos), the "
            f"undistilled student keeps, relative to the teacher: {text}; it {verdict}.")


def h2z_table(records: dict[str, dict]) -> list[str]:
    lines = ["| model | seeds | params | MACs | LL to teacher ↓ | high to teacher ↓ | "
             "HH to teacher ↓ | high-band energy gap to zebras ↓ |", "|---|---|---|---|---|---|---|---|"]
    for name in ("teacher", "no_kd", "wkd_high"):
        if name not in records:
            continue
        runs = records[name]["runs"]
        teacher_cols = ([fmt(run_values(runs, k), 3) for k in ("teacher_LL", "teacher_high")]
                        + [fmt([r["teacher_bands"]["HH"] for r in runs], 3)]
                        if "teacher_bands" in runs[0] else ["-", "-", "-"])
        lines.append(f"| {LABELS[name]} | {len(runs) if runs[0]['seed'] is not None else '-'} | "
                     f"{runs[0]['params']:,} | {runs[0]['macs'] / 1e6:.0f}M | "
                     + " | ".join(teacher_cols) + f" | {fmt(run_values(runs, 'bands_high'), 3)} |")
    return lines


def efficiency_table(record: dict) -> list[str]:
    lines = ["| network | input | params | MACs | CPU latency, batch 1 (ms): median [p10, p90] |",
             "|---|---|---|---|---|"]
    for name, row in record["models"].items():
        lines.append(f"| {name} | {row['resolution']} px | {row['params']:,} | "
                     f"{row['macs'] / 1e6:.0f}M | {row['latency_ms_median']:.1f} "
                     f"[{row['latency_ms_p10']:.1f}, {row['latency_ms_p90']:.1f}] |")
    return lines


# ----------------------------------------------------------------------------- findings
def finding_bands(records: dict[str, dict]) -> str:
    """Claim 1: the no-KD student's shortfall against the teacher, per band, to the real photos."""
    if not {"teacher", "no_kd"} <= records.keys():
        return "Claim 1: not measured yet."
    teacher = records["teacher"]["runs"][0]["bands"]
    student = [r["bands"] for r in records["no_kd"]["runs"]]
    ratios = {band: statistics.fmean(s[band] for s in student) / teacher[band]
              for band in ("LL", *HIGH)}
    text = ", ".join(f"{band} {ratio:.2f}x" for band, ratio in ratios.items())
    verdict = ("larger in every high band than in LL: agrees with claim 1"
               if min(ratios[b] for b in HIGH) > ratios["LL"] else
               "not larger in every high band than in LL: claim 1 is not supported here")
    return (f"Claim 1 (small GANs fail mostly in the high bands): the undistilled student's band "
            f"distance to the real photos, relative to the teacher's: {text}. The gap is "
            f"{verdict}.")


def finding_ranking(records: dict[str, dict]) -> str:
    present = [n for n in FACADES_ORDER[:-1] if n in records]
    if "wkd_high" not in present or len(present) < 2:
        return "Claim 2: not measured yet."
    parts = []
    for key, label, higher_better in (("psnr", "PSNR", True), ("l1", "L1", False),
                                      ("teacher_high", "high-band distance to the teacher", False)):
        ranked = sorted(present, key=lambda n: statistics.fmean(run_values(records[n]["runs"], key)),
                        reverse=higher_better)
        best = ranked[0]
        beaten = [n for n in present if n != "wkd_high" and exceeds_spread(
            run_values(records["wkd_high"]["runs"], key), run_values(records[n]["runs"], key))
            and (statistics.fmean(run_values(records["wkd_high"]["runs"], key))
                 > statistics.fmean(run_values(records[n]["runs"], key))) == higher_better]
        parts.append(f"{label}: best {LABELS[best]}; WKD high ranks {ranked.index('wkd_high') + 1}"
                     f" of {len(ranked)} and beats beyond the seed spread: "
                     f"{', '.join(LABELS[n] for n in beaten) or 'none'}")
    return "Claim 2 (high bands are the part to distil): " + "; ".join(parts) + "."


def finding_discriminator(records: dict[str, dict]) -> str:
    if not {"wkd_high", "wkd_high_teacher_D"} <= records.keys():
        return "Claim 3: not measured yet."
    parts = []
    for key, label, digits in (("psnr", "PSNR", 2), ("l1", "L1", 4), ("teacher_high", "high to teacher", 3)):
        a = run_values(records["wkd_high"]["runs"], key)
        b = run_values(records["wkd_high_teacher_D"]["runs"], key)
        parts.append(f"{label} {fmt(a, digits)} (shrunk D) vs {fmt(b, digits)} (teacher-width D)"
                     f"{', beyond the seed spread' if exceeds_spread(a, b) else ', within the seed spread'}")
    return "Claim 3 (shrink the discriminator with the generator): " + "; ".join(parts) + "."


# ----------------------------------------------------------------------------- figures
def band_figure(results: dict, path: Path) -> bool:
    from wkd_hf.metrics.bands import plot_band_fidelity

    facades = study_records(results, "facades")
    panels = {"facades: distance to the real photos (test)": {}, "facades: distance to the teacher": {},
              "horse -> zebra: distance to the GAN Compression teacher": {}}
    order = ("LL", "LH", "HL", "HH")
    for name in ("teacher", *FACADES_ORDER):
        if name in facades:
            runs = facades[name]["runs"]
            panels["facades: distance to the real photos (test)"][LABELS[name]] = {
                b: statistics.fmean(r["bands"][b] for r in runs) for b in order}
            if "teacher_bands" in runs[0]:
                panels["facades: distance to the teacher"][LABELS[name]] = {
                    b: statistics.fmean(r["teacher_bands"][b] for r in runs) for b in order}
    for name, record in study_records(results, "h2z").items():
        runs = record["runs"]
        if "teacher_bands" in runs[0]:
            panels["horse -> zebra: distance to the GAN Compression teacher"][LABELS[name]] = {
                b: statistics.fmean(r["teacher_bands"][b] for r in runs) for b in order}
    if not any(panels.values()):
        return False
    plot_band_fidelity(panels, str(path), title="Per-band wavelet distance (mean over seeds)")
    return True


def picture_grid(folder: Path, columns: list[str], path: Path) -> bool:
    """Side by side, the one-column strips ``study.py`` saved (input, teacher, students...)."""
    strips = [folder / f"{c}.png" for c in columns]
    strips = [s for s in strips if s.is_file()]
    if len(strips) < 2:
        return False
    images = [Image.open(s).convert("RGB") for s in strips]
    grid = Image.new("RGB", (sum(i.width for i in images) + 4 * (len(images) - 1),
                             max(i.height for i in images)), "white")
    x = 0
    for image in images:
        grid.paste(image, (x, 0))
        x += image.width + 4
    grid.save(path)
    return True


# ----------------------------------------------------------------------------- report
def report(folder: Path) -> str:
    results = load(folder)
    if not results:
        raise SystemExit(f"error: no result files under {folder}; run benchmarks/study.py first.")
    facades, h2z = study_records(results, "facades"), study_records(results, "h2z")
    lines = ["# Seeded study: results", "", f"Scale `{folder.name}`; generated by "
             "`python benchmarks/study_report.py` from the JSON files in this folder.", ""]
    if facades:
        first = next(iter(facades.values()))
        lines += [f"## Study 1: facades labels -> photo, {first['settings']['resolution']} px, "
                  f"test split ({first['evaluation']['num_images']} images)", "",
                  "Mean ± std over seeds. Band columns: normalised L1 per band (LL; high = mean "
                  "of LH, HL, HH over levels).", "", *facades_table(facades), "",
                  "Differences from the undistilled student (`*`: beyond the seed spread):", "",
                  *comparison_table(facades, "no_kd", [("psnr", "PSNR", 2), ("l1", "L1", 4),
                                                       ("teacher_high", "high to teacher", 3)]),
                  "", "Differences from WKD high bands (`*`: beyond the seed spread):", "",
                  *comparison_table(facades, "wkd_high", [("psnr", "PSNR", 2), ("l1", "L1", 4),
                                                          ("teacher_high", "high to teacher", 3)]),
                  ""]
    if h2z:
        lines += ["## Study 2: horse -> zebra from GAN Compression's published student", "",
                  *h2z_table(h2z), ""]
    if "efficiency" in results:
        lines += ["## Efficiency", "", *efficiency_table(results["efficiency"]), "",
                  f"{results['efficiency']['threads']} threads, "
                  f"{results['efficiency']['rounds']} interleaved rounds.", ""]
    energy = results.get("facades/band_energy")
    if energy:
        lines += ["Detail per band (`facades/band_energy`): mean |wavelet coefficient| of the "
                  "generated test images over that of the real photos (haar, 3 levels, LH/HL/HH "
                  "pooled over levels). 1 = as much detail as the photos; below 1 is blur, above "
                  "1 added texture or artefacts. Unlike the distances above, it does not reward "
                  "blur.", "", *magnitude_table(energy), ""]
    lines += ["## What the evidence says", "", f"- {finding_bands(facades)}{finding_detail(energy)}",
              f"- {finding_ranking(facades)}", f"- {finding_discriminator(facades)}", ""]
    wall = sum(r.get("wall_seconds", 0) for r in results.values())
    machine = next(iter(results.values())).get("machine", {})
    lines += [f"Compute: {wall / 3600:.2f} h of wall time in all parts on {machine.get('cpus')} "
              f"CPUs ({machine.get('processor')}, torch {machine.get('torch')}, "
              f"{machine.get('threads')} threads).", ""]
    for study in ("facades", "h2z"):
        ordered = sorted(results.items(), key=lambda kv: "progress" not in kv[0])  # finished win
        records = {part.split("/", 1)[1].removesuffix(".progress"): record
                   for part, record in ordered if part.startswith(study + "/")}
        curves = study_figures.part_curves(records)
        path = folder / f"{study}_curves.png"
        if curves and study_figures.plot_curves(
                study, curves, path, f"{study}: validation learning curves (mean +- std over seeds)"):
            lines += [f"![{study} learning curves]({path.name})", ""]
    if band_figure(results, folder / "bands.png"):
        lines += ["![per-band distances](bands.png)", ""]
    seeds = {p.stem.rsplit("_seed", 1)[1] for p in folder.glob("*/*_seed*.png")}
    seed = min(seeds) if seeds else "0"
    for study, columns, caption in (
            ("facades", ["input", "target", "teacher", f"no_kd_seed{seed}", f"wkd_high_seed{seed}"],
             "label map | photo | teacher | no-KD student | WKD student"),
            ("h2z", ["input", "teacher", f"no_kd_seed{seed}", f"wkd_high_seed{seed}"],
             "horse photo | GAN Compression teacher | no-KD student | WKD student")):
        if picture_grid(folder / study, columns, folder / f"{study}_grid.png"):
            lines += [f"![{study} grid]({study}_grid.png)", "", f"Columns: {caption} (seed {seed}).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="cpu", help="Which results: study_results/<scale>/.")
    parser.add_argument("--results_dir", type=Path, default=None,
                        help="Read and write here instead of benchmarks/study_results/<scale>/.")
    args = parser.parse_args(argv)
    folder = args.results_dir or RESULTS_ROOT / args.scale
    text = report(folder)
    (folder / "REPORT.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
