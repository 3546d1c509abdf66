"""Tables, figures and verdicts of the converged study, from the files ``study.py`` commits.

    python benchmarks/study_report.py [--scale cpu]     # make study-report

Reads ``benchmarks/study_results/converged/<scale>/**.json`` and writes, beside them,
``REPORT.md`` (the evaluators' own accuracies, the do-nothing baselines, per study a table of test
scores, the differences that decide each claim, the verdicts and the compute used), the learning
curves ``<study>_curves.png`` and the picture grids ``<study>_grid.png``. Needs no network, no
data and no trained model. (The first, 600-step study's report stays in
``study_results/cpu/REPORT.md``, as it was generated.)

Statistics: mean ± sample std over seeds; a difference is marked ``*`` when it exceeds twice its
standard error (``study_verdicts.exceeds_spread``; with 3 seeds a screen, not a significance test).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from PIL import Image

from wkd_hf.grid_labels import add_column_labels
from wkd_hf.metrics.efficiency import quantiles

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study_figures  # noqa: E402
from study_curves import train_seconds  # noqa: E402
from study_verdicts import (  # noqa: E402
    DECIDING,
    band_gap,
    claim_bands,
    claim_discriminator,
    claim_high_bands,
    exceeds_spread,
    fmt,
    metric_values,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = ROOT / "benchmarks" / "study_results" / "converged"
ORDER = ("no_kd", "wkd_high", "output_kd", "wkd_low", "wkd_high_teacher_D", "small_no_kd",
         "small_wkd_high", "small_wkd_high_teacher_D")
LABELS = {"teacher": "teacher", "no_kd": "no distillation", "wkd_high": "WKD high bands",
          "output_kd": "output KD", "wkd_low": "WKD low band (LL)",
          "wkd_high_teacher_D": "WKD high, teacher-width D", "small_no_kd": "small: no distillation",
          "small_wkd_high": "small: WKD high", "small_wkd_high_teacher_D":
          "small: WKD high, teacher-width D"}
# Test-table columns per study: (key, header, digits); "band:LL" / "band:high" are distances to
# the teacher's outputs (``teacher_bands``).
COLUMNS = {"h2z": [("target_share", "zebra share ↑", 3),
                   ("classifier_frechet_distance", "classifier FD ↓", 1),
                   ("band:LL", "LL to teacher ↓", 3), ("band:high", "high to teacher ↓", 3)],
           "facades": [("fcn_pixel_accuracy", "FCN pixel acc ↑", 3),
                       ("fcn_class_accuracy", "FCN class acc ↑", 3), ("fcn_miou", "FCN mIoU ↑", 3),
                       ("psnr", "PSNR (dB) ↑", 2), ("l1", "L1 ↓", 4),
                       ("band:high", "high to teacher ↓", 3)]}
TITLES = {"h2z": "Study 1 (main): horse -> zebra, GAN Compression's published generator as the "
                 "teacher",
          "facades": "Study 2: facades labels -> photo, a teacher trained here"}
BASELINES = {"h2z": ("h2z_untranslated_horses", "untranslated horses (do nothing)"),
             "facades": ("facades_label_maps_as_photos", "label maps as photos (do nothing)")}
GRID_COLUMNS = {"h2z": ["input", "teacher", *ORDER],
                "facades": ["input", "target", "teacher", *ORDER]}


# ----------------------------------------------------------------------------- loading
def load(folder: Path) -> dict[str, dict]:
    """``{"h2z/no_kd": record, "baselines": record, ...}`` for every result file in ``folder``."""
    return {str(p.relative_to(folder).with_suffix("")): json.loads(p.read_text())
            for p in sorted(folder.rglob("*.json"))}


def study_records(results: dict, study: str) -> dict[str, dict]:
    """The finished parts of ``study`` (those with test scores)."""
    return {part.split("/", 1)[1]: record for part, record in results.items()
            if part.startswith(study + "/") and "runs" in record}


def column_values(runs: list[dict], key: str) -> list[float]:
    if key.startswith("band:"):
        runs = [r for r in runs if "teacher_bands" in r]
        return [band_gap(r, "teacher_bands")[0 if key == "band:LL" else 1] for r in runs]
    return metric_values(runs, key)


# ----------------------------------------------------------------------------- tables
def evaluator_lines(results: dict) -> list[str]:
    records = results.get("evaluators", {}).get("evaluators", {})
    lines = []
    if "domain" in records:
        d = records["domain"]
        lines.append(f"- horse/zebra classifier ({d['resolution']} px, trained {d['steps']} steps "
                     f"on {d['train_images']['trainA']} + {d['train_images']['trainB']} train "
                     f"images): test accuracy horses {d['test_accuracy']['testA']:.3f}, zebras "
                     f"{d['test_accuracy']['testB']:.3f}.")
    if "fcn" in records:
        f = records["fcn"]
        s = f["test_scores_on_real_photos"]
        lines.append(f"- FCN-score segmenter ({f['resolution']} px, {f['num_classes']} classes, "
                     f"trained {f['steps']} steps on {f['train_images']} train photos): on the "
                     f"real test photos pixel accuracy {s['pixel_accuracy']:.3f}, class accuracy "
                     f"{s['class_accuracy']:.3f}, mIoU {s['miou']:.3f} (the ceiling).")
    return lines


def test_table(study: str, records: dict, baseline: dict | None) -> list[str]:
    columns = COLUMNS[study]
    lines = ["| model | seeds | steps | params | MACs | " + " | ".join(c[1] for c in columns) + " |",
             "|---|---|---|---|---|" + "---|" * len(columns)]
    if baseline:
        key, label = BASELINES[study]
        cells = [f"{baseline[k]:.{d}f}" if k in baseline else "-" for k, _, d in columns]
        lines.append(f"| {label} | - | - | - | - | " + " | ".join(cells) + " |")
    for name in ("teacher", *ORDER):
        if name not in records:
            continue
        runs = records[name]["runs"]
        seeds = len(runs) if runs[0].get("seed") is not None else "-"
        steps = runs[0].get("steps", "-")
        cells = [fmt(column_values(runs, key), digits) for key, _, digits in columns]
        lines.append(f"| {LABELS[name]} | {seeds} | {steps} | {runs[0]['params']:,} | "
                     f"{runs[0]['macs'] / 1e6:.0f}M | " + " | ".join(cells) + " |")
    return lines


def difference_table(study: str, records: dict, reference: str) -> list[str]:
    """Each variant minus ``reference`` on the deciding metrics; ``*`` beyond the seed spread."""
    if reference not in records:
        return []
    metrics = DECIDING[study]
    lines = [f"| vs {LABELS[reference]} | " + " | ".join(label for _, label, _ in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for name in ORDER:
        if name == reference or name not in records:
            continue
        cells = []
        for key, _, _ in metrics:
            a = metric_values(records[name]["runs"], key)
            b = metric_values(records[reference]["runs"], key)
            if not a or not b:
                cells.append("-")
                continue
            cells.append(f"{statistics.fmean(a) - statistics.fmean(b):+.3f}"
                         f"{' *' if exceeds_spread(a, b) else ''}")
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    return lines if len(lines) > 2 else []


def verdict_lines(study: str, records: dict) -> list[str]:
    teacher = records.get("teacher", {}).get("runs", [None])[0]
    lines = []
    for title, (verdict, reasons) in (
            ("Claim 1 (small GANs fail mostly in the high bands)", claim_bands(records, teacher)),
            ("Claim 2 (distil the high bands only)", claim_high_bands(records, study)),
            ("Claim 3 (shrink the discriminator with the generator)",
             claim_discriminator(records, study))):
        lines.append(f"- **{title}: {verdict}.**" + (" " + "; ".join(reasons) + "." if reasons else ""))
    return lines


def teacher_check(study: str, records: dict) -> str:
    """Whether the teacher beats the undistilled student beyond the spread (every deciding metric)."""
    if not {"teacher", "no_kd"} <= records.keys():
        return ""
    parts, wins = [], []
    for key, label, higher in DECIDING[study]:
        t = metric_values(records["teacher"]["runs"], key)
        s = metric_values(records["no_kd"]["runs"], key)
        if t and s:
            better = (statistics.fmean(t) > statistics.fmean(s)) == higher and (
                len(s) < 2 or abs(statistics.fmean(t) - statistics.fmean(s))
                > 2 * statistics.stdev(s))
            wins.append(better)
            parts.append(f"{label} {fmt(t, 3)} vs {fmt(s, 3)}")
    clearly = bool(wins) and all(wins)
    return (f"The teacher {'is' if clearly else 'is NOT'} clearly better than the undistilled "
            f"student ({'; '.join(parts)}; clearly: beyond twice the students' seed std on "
            "every deciding metric)" + ("." if clearly else ": distilling it cannot be judged "
                                        "here, and this study's verdicts do not count."))


# ----------------------------------------------------------------------------- figures
def picture_grid(folder: Path, columns: list[str], path: Path) -> list[str]:
    """Side by side, the one-column strips ``study.py`` saved, each named above it; returns the
    columns drawn (none when fewer than two strips exist)."""
    present = [c for c in columns if (folder / f"{c}.png").is_file()]
    images = [Image.open(folder / f"{c}.png").convert("RGB") for c in present]
    if len(images) < 2:
        return []
    grid = Image.new("RGB", (sum(i.width for i in images) + 4 * (len(images) - 1),
                             max(i.height for i in images)), "white")
    x = 0
    for image in images:
        grid.paste(image, (x, 0))
        x += image.width + 4
    add_column_labels(grid, [LABELS.get(c, c) for c in present], images[0].width, 4).save(path)
    return present


def curves_figure(results: dict, study: str, folder: Path) -> str | None:
    ordered = sorted(results.items(), key=lambda kv: "progress" not in kv[0])  # finished win
    records = {part.split("/", 1)[1].removesuffix(".progress"): record
               for part, record in ordered if part.startswith(study + "/")}
    curves = study_figures.part_curves(records)
    path = folder / f"{study}_curves.png"
    if curves and study_figures.plot_curves(
            study, curves, path, f"{study}: validation learning curves (mean ± std over seeds)"):
        return path.name
    return None


# ----------------------------------------------------------------------------- report
def study_section(study: str, results: dict, folder: Path) -> list[str]:
    records = study_records(results, study)
    curves = curves_figure(results, study, folder)
    if not records and not curves:
        return []
    lines = [f"## {TITLES[study]}", ""]
    if records:
        first = next(iter(records.values()))
        evaluation = first.get("evaluation", {})
        lines += [f"Test split ({evaluation.get('num_images', '?')} images, "
                  f"{evaluation.get('resolution', '?')} px); final weights of every seed; "
                  "distances to the teacher are normalised L1 per wavelet band (high = mean of "
                  "LH, HL, HH over levels).", "",
                  *test_table(study, records, results.get("baselines", {}).get(
                      BASELINES[study][0])), ""]
        check = teacher_check(study, records)
        if check:
            lines += [check, ""]
        for reference in ("no_kd", "wkd_high"):
            table = difference_table(study, records, reference)
            if table:
                lines += [f"Differences from {LABELS[reference]} (`*`: beyond the seed spread):",
                          "", *table, ""]
        lines += ["Verdicts (deciding metrics: "
                  + ", ".join(label for _, label, _ in DECIDING[study]) + "; no variant trains "
                  "on them):", "", *verdict_lines(study, records), ""]
    if curves:
        lines += [f"![{study} learning curves]({curves})", ""]
    shown = picture_grid(folder / study, GRID_COLUMNS[study], folder / f"{study}_grid.png")
    if shown:
        lines += [f"![{study} pictures]({study}_grid.png)", "",
                  "Fixed test images (the first of the test split, sorted by name), seed 0, at the "
                  "evaluation size; columns: " + ", ".join(shown) + ".", ""]
    return lines


def latency_lines(results: dict) -> list[str]:
    """The efficiency part's table: each network's CPU latency and its speed-up over its study's
    teacher (ratio of medians; [p10, p90] of the per-round ratios, rounds timed interleaved)."""
    record = results.get("efficiency")
    if not record or not record.get("models"):
        return []
    rows = record["models"]
    lines = ["## Efficiency (batch 1, CPU)", "",
             f"{record['rounds']} interleaved rounds in one process, {record['threads']} "
             "thread(s); speed-up = the study's teacher latency / the network's (ratio of "
             "medians; [p10, p90] of the per-round ratios).", "",
             "| network | px | params | MACs | latency ms, median [p10, p90] | speed-up |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        teacher = next((t for t in rows if "teacher" in t and
                        t.split()[0] == name.split()[0]), None)
        speedup = "-"
        if teacher and teacher != name:
            ratios = [t / n for t, n in zip(rows[teacher]["latency_ms_rounds"],
                                            row["latency_ms_rounds"])]
            spread = quantiles(ratios)
            speedup = (f"{rows[teacher]['latency_ms_median'] / row['latency_ms_median']:.2f}x "
                       f"[{spread['p10']:.2f}, {spread['p90']:.2f}]")
        lines.append(f"| {name} | {row['resolution']} | {row['params']:,} | "
                     f"{row['macs'] / 1e6:.0f}M | {row['latency_ms_median']:.2f} "
                     f"[{row['latency_ms_p10']:.2f}, {row['latency_ms_p90']:.2f}] | {speedup} |")
    if record.get("missing"):
        lines += ["", "Not trained yet, so not timed: " + ", ".join(record["missing"]) + "."]
    return lines + [""]


def compute_lines(results: dict) -> list[str]:
    """Training hours from the curves (every chunk of every seed, whichever sitting ran it)."""
    train = sum(train_seconds(run.get("curve") or []) for r in results.values()
                for run in r.get("runs", []))  # not run["train_seconds"]: older records
    # counted only the sitting that finished the part
    machine = next((r["machine"] for r in results.values() if "machine" in r), {})
    return [f"Compute: {train / 3600:.2f} h of training over the finished parts (every chunk of "
            f"every seed, as its process timed it), on {machine.get('cpus')} CPUs "
            f"({machine.get('processor')}, torch {machine.get('torch')}, "
            f"{machine.get('threads')} threads per process); evaluation comes on top. Two or "
            "three parts ran at a time beside other work, so these are wall-clock hours of each "
            "process, not CPU hours.", ""]


def report(folder: Path) -> str:
    results = load(folder)
    if not results:
        raise SystemExit(f"error: no result files under {folder}; run benchmarks/study.py first.")
    lines = ["# Converged study: results", "", f"Scale `{folder.name}`; generated by "
             "`python benchmarks/study_report.py` from the JSON files in this folder.", ""]
    evaluators = evaluator_lines(results)
    if evaluators:
        lines += ["## The evaluators (trained here, no downloaded weights)", "", *evaluators, ""]
    for study in ("h2z", "facades"):
        lines += study_section(study, results, folder)
    return "\n".join(lines + latency_lines(results) + compute_lines(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="cpu",
                        help="Which results: study_results/converged/<scale>/.")
    parser.add_argument("--results_dir", type=Path, default=None,
                        help="Read and write here instead of study_results/converged/<scale>/.")
    args = parser.parse_args(argv)
    folder = args.results_dir or RESULTS_ROOT / args.scale
    text = report(folder)
    (folder / "REPORT.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
