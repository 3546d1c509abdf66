"""``evaluate.py``'s outputs: ``results.json``, ``results.md`` (one table row per model),
``bands.png`` and, with ``--update_card``, each local model's card."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..cards import format_count
from ..hub import write_evaluation_results
from ..metrics.bands import band_table, plot_band_fidelity
from ..metrics.model_timing import for_card, latency_cell, latency_note
from ..safe_files import finite_or_null, write_text_beside

TABLE_COLUMNS = [("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
                 ("l1", "L1", "{:.4f}"), ("fid", "FID", "{:.2f}"),
                 ("fcn_pixel_accuracy", "FCN pixel acc", "{:.3f}"),
                 ("fcn_class_accuracy", "FCN class acc", "{:.3f}"),
                 ("fcn_miou", "FCN mIoU", "{:.3f}"),
                 ("target_share", "target share", "{:.3f}"),
                 ("classifier_frechet_distance", "classifier FD", "{:.3f}")]


def _fmt(value, pattern):
    return pattern.format(value) if value is not None else "-"


def results_table(records: list[dict]) -> str:
    """Markdown table: efficiency and quality, one row per model."""
    present = [c for c in TABLE_COLUMNS if any(c[0] in r["metrics"] for r in records)]
    with_kid = any("kid_mean" in r["metrics"] for r in records)
    header = ["model", "params", "MACs", "CPU latency ms [p10-p90]",
              *[label for _, label, _ in present]] + (["KID x 1000"] if with_kid else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        m = r["metrics"]
        row = [r["name"], format_count(r["params"]), format_count(r["macs"]),
               latency_cell(r)]
        row += [_fmt(m.get(key), pattern) for key, _, pattern in present]
        if with_kid:
            row.append(f"{m['kid_mean'] * 1000:.2f} ± {m['kid_std'] * 1000:.2f}"
                       if "kid_mean" in m else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_reports(args, records, settings, figure_panels) -> None:
    out = Path(args.output_dir)
    write_text_beside(out / "results.json", json.dumps(
        finite_or_null({"settings": settings, "models": records}), indent=2, default=str,
        allow_nan=False))  # valid JSON: a NaN / infinite score is written as null
    lines = [f"# Evaluation: {settings['dataset']} ({settings['direction']}), split "
             f"{settings['split']}, {settings['resolution']}x{settings['resolution']}", "",
             f"{settings['num_images']} input images ({settings['layout']} data); "
             f"{settings['num_real_images']} real images for FID/KID. {settings['fid_protocol']}",
             "", results_table(records), ""]
    for panel, values in figure_panels.items():
        bands = list(next(iter(values.values())))
        lines += [f"## Wavelet bands: {panel}", "", band_table(values, bands), ""]
    lines += [latency_note(settings, settings["latency_warning"]) + " MACs: torch "
              "FlopCounterMode / 2.", "", "```bash", settings["command"], "```", ""]
    write_text_beside(out / "results.md", "\n".join(lines))
    if figure_panels:
        try:
            plot_band_fidelity(figure_panels, str(out / "bands.png"),
                               f"Per-band wavelet fidelity: {settings['dataset']} "
                               f"({settings['direction']}, {settings['split']})")
        except ImportError as error:
            print(f"warning: no bands.png: {error}", file=sys.stderr)


def update_cards(args, records, settings, table_for) -> None:
    for record in (for_card(record, settings["latency_warning"]) for record in records):
        folder = os.path.expanduser(record["source"])
        if not os.path.isdir(folder):
            print(f"warning: --update_card: {record['source']} is not a local model folder; its "
                  "card was not updated", file=sys.stderr)
            continue
        path = write_evaluation_results(
            folder, record, dataset_name=settings["dataset"], dataset_type=settings["dataset"],
            dataset_split=settings["split"], task_name=f"{settings['dataset']} "
            f"({settings['direction']})", table=table_for(record), command=settings["command"])
        print(f"Updated {path}")
