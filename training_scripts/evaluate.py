#!/usr/bin/env python
"""Evaluate generators on the same images: quality (PSNR/SSIM/L1, FID/KID, per-band wavelet
fidelity) and efficiency (params, MACs, CPU latency), written as JSON, a table and a figure.

    python training_scripts/evaluate.py --model teacher_dir --model student_dir \
        --train_data_dir facades/test --direction BtoA --resolution 256 --output_dir eval_out \
        [--metrics psnr,ssim,l1,bands,fid,kid] [--inception_weights PATH] [--teacher teacher_dir] \
        [--update_card]

Paired data (pix2pix side-by-side AB images, imagefolders, parquet, Hub ids): PSNR, SSIM, L1 and
band distances against the targets, FID/KID against the targets of the split (pix2pix: test vs
test). Unpaired data (``trainA/ trainB/ testA/ testB/`` folders or two-column datasets): the
source domain is translated and FID/KID are measured against the other domain; ``bands`` is then
the gap in band energy to the real images. With ``--teacher``, each model's band distances to
the teacher's outputs on the same inputs are added (the distillation target of WKD).

Writes ``OUTPUT_DIR/results.json`` (one record per model), ``results.md`` and ``bands.png``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from wkd_hf.evaluation.data import build_data, dataset_label, split_label
from wkd_hf.evaluation.reports import results_table, update_cards, write_reports
from wkd_hf.evaluation.scoring import (
    PAIRED_ONLY,
    ModelState,
    display_names,
    evaluate_models,
    fid_extractor,
    fid_kid,
    load_model,
)
from wkd_hf.metrics.evaluators import ModelEvaluators, check_evaluators, evaluator_records
from wkd_hf.metrics.fid import feature_statistics, load_statistics, save_statistics
from wkd_hf.metrics.model_timing import time_models
from wkd_hf.run import run_cli
from wkd_hf.run_record import command_line
from wkd_hf.script_args import ScriptArgumentParser, add_data_args, readme_epilog

logger = logging.getLogger("wkd_hf.evaluate")

ALL_METRICS = ("psnr", "ssim", "l1", "bands", "fid", "kid")
EVALUATOR_METRICS = ("fcn", "domain")  # trained evaluators (--evaluator_dir): asked for by name


def _metric_list(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_METRICS + EVALUATOR_METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown metric(s) {unknown or text!r}; choose from "
            f"{','.join(ALL_METRICS + EVALUATOR_METRICS)}")
    return list(dict.fromkeys(names))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptArgumentParser(description=__doc__.split("\n")[0],
                                  epilog=readme_epilog("Evaluate"))
    models = parser.add_argument_group("models")
    models.add_argument("--model", action="append", required=True,
                        help="A generator to evaluate (repeat for several): a save_pretrained "
                             "folder (a CycleGAN folder: the --direction generator), a Hub id, "
                             "or a pytorch-CycleGAN-and-pix2pix / GAN Compression .pth file "
                             "(required).")
    models.add_argument("--teacher", default=None,
                        help="Also measure each model's band distances to this generator's "
                             "outputs on the same inputs (default: none).")
    add_data_args(parser, training=False)
    ev = parser.add_argument_group("evaluation")
    ev.add_argument("--output_dir", required=True,
                    help="Folder of results.json, results.md and bands.png (required).")
    ev.add_argument("--split", default=None,
                    help="Split to evaluate (default: 'test' when the data has one, else "
                         "'train', e.g. a folder of test images given as --train_data_dir). "
                         "--validation_split is not used here.")
    ev.add_argument("--layout", choices=("auto", "paired", "unpaired"), default="auto",
                    help="auto: unpaired for <split>A/ + <split>B/ folders, else paired.")
    ev.add_argument("--metrics", type=_metric_list, default=list(ALL_METRICS),
                    help="Comma-separated subset of " + ",".join(ALL_METRICS) + " (default: "
                         "all; psnr, ssim and l1 need paired data), and the trained "
                         "evaluators' " + ",".join(EVALUATOR_METRICS) + " (with --evaluator_dir).")
    ev.add_argument("--inception_weights", default=None,
                    help="InceptionV3 FID weights (pt_inception-2015-12-05-6726825d.pth). "
                         "Default: the torch hub cache, or torch-fidelity's download online.")
    ev.add_argument("--real_stats", default=None,
                    help="A .npz of real statistics (mu, sigma[, features]): read if it exists "
                         "(GAN Compression's files work), else written after computing them "
                         "(default: none, computed each time).")
    ev.add_argument("--evaluator_dir", default=None,
                    help="Folder of the evaluators that --metrics fcn (FCN-score of label -> "
                         "photo) and domain (target share, classifier Frechet distance) use, "
                         "written by training_scripts/train_evaluators.py (default: none).")
    ev.add_argument("--band_levels", type=_positive, default=3,
                    help="Haar DWT levels of the band metrics (level 1 = finest).")
    ev.add_argument("--batch_size", type=_positive, default=8,
                    help="Images per forward pass of the evaluated models.")
    ev.add_argument("--max_eval_samples", type=_positive, default=None,
                    help="Evaluate only the first N images (of each domain; default: all).")
    ev.add_argument("--latency_repeats", type=_non_negative, default=10,
                    help="Rounds of CPU latency timing, every model once per round, "
                         "interleaved (0: no latency).")
    ev.add_argument("--num_threads", type=_positive, default=None,
                    help="torch threads for the latency measurement (default: torch's).")
    ev.add_argument("--kid_subsets", type=_positive, default=100,
                    help="KID: random subsets averaged (torch-fidelity's).")
    ev.add_argument("--kid_subset_size", type=_positive, default=1000,
                    help="KID: images per subset, capped at the images available "
                         "(torch-fidelity's).")
    ev.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="Device of the quality metrics (default: cuda when available, else "
                         "cpu); latency is always measured on the CPU.")
    ev.add_argument("--update_card", action="store_true",
                    help="Write the results into each model folder's README.md (model-index "
                         "eval results and an Evaluation table).")
    return parser.parse_args(input_args)


# ----------------------------------------------------------------------------- main
def main(args: argparse.Namespace, argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    metrics = list(args.metrics)
    os.makedirs(args.output_dir, exist_ok=True)
    if (args.dataset_name is None) == (args.train_data_dir is None):
        raise ValueError("pass exactly one of --dataset_name or --train_data_dir.")
    data = build_data(args)
    if data["layout"] == "unpaired":
        dropped = [m for m in metrics if m in PAIRED_ONLY]
        if dropped:
            print(f"note: {','.join(dropped)} need paired targets; unpaired data: skipped")
            metrics = [m for m in metrics if m not in PAIRED_ONLY]
    evaluator_metrics = check_evaluators(args.evaluator_dir, metrics, data["layout"])
    metrics = [m for m in metrics if m not in EVALUATOR_METRICS] + evaluator_metrics
    skipped_fid = False
    extractor = fid_extractor(args, metrics)
    if extractor is None and {"fid", "kid"} & set(metrics):
        skipped_fid = True
        metrics = [m for m in metrics if m not in ("fid", "kid")]
    cached_reals, reals = False, None
    if extractor is not None and args.real_stats and os.path.isfile(args.real_stats):
        reals = load_statistics(args.real_stats)
        cached_reals = "kid" not in metrics or "features" in reals
        if not cached_reals:
            reals = None
        else:
            print(f"Real statistics read from {args.real_stats}")
    specs = list(args.model)
    names = display_names(specs)
    teacher = load_model(args.teacher, args).to(args.device) if args.teacher else None
    states = []
    for name, spec in zip(names, specs):
        model = load_model(spec, args).to(args.device)
        print(f"Loaded {name}: {type(model).__name__}")
        states.append(ModelState(name, spec, model, metrics, data["layout"], args.band_levels,
                                  args.device, teacher is not None))
        if evaluator_metrics:
            states[-1].evaluators = ModelEvaluators(args.evaluator_dir, evaluator_metrics,
                                                    args.device)
    counted = evaluate_models(args, data, states, teacher, extractor, metrics, cached_reals)
    if extractor is not None and reals is None:
        features = torch.cat(counted["real_features"])
        if len(features) < 2:
            raise ValueError("FID/KID need at least 2 readable real images.")
        if args.real_stats:
            save_statistics(args.real_stats, features,
                            {"resolution": args.resolution, "num_images": len(features)})
            print(f"Real statistics written to {args.real_stats}")
        mu, sigma = feature_statistics(features)
        reals = {"mu": mu, "sigma": sigma, "features": features}
    records, panels = [], {}
    efficiency, latency_warning = time_models({s.name: s.model for s in states}, args.resolution,
                                              args.latency_repeats, args.num_threads)
    if latency_warning:
        print(latency_warning, file=sys.stderr)
    band_panel = ("vs real targets (normalised L1)" if data["layout"] == "paired"
                  else "band energy gap to real images")
    for state in states:
        metrics_out = {key: value / state.count for key, value in state.sums.items()}
        if extractor is not None:
            metrics_out.update(fid_kid(args, state, reals, metrics))
        if state.evaluators is not None:
            metrics_out.update(state.evaluators.compute())
        record = {"name": state.name, "source": state.spec, "class": type(state.model).__name__,
                  **efficiency[state.name], "num_images": state.count,
                  "metrics": metrics_out}
        if state.bands is not None:
            record["bands"] = state.bands.compute()
            panels.setdefault(band_panel, {})[state.name] = record["bands"]
        if state.teacher_bands is not None:
            record["teacher_bands"] = state.teacher_bands.compute()
            panels.setdefault("vs the teacher's outputs (normalised L1)", {})[state.name] = \
                record["teacher_bands"]
        records.append(record)
    settings = {
        "dataset": dataset_label(args), "split": split_label(args, data["split"]),
        "layout": data["layout"],
        "direction": args.direction, "resolution": args.resolution,
        "num_images": counted["images"],
        "num_real_images": (len(reals["features"]) if reals and "features" in reals
                            else counted["real_images"]),
        "metrics": metrics, "band_levels": args.band_levels, "teacher": args.teacher,
        "evaluators": evaluator_records(args.evaluator_dir, evaluator_metrics),
        "fcn_real_photos": (counted["ceiling"].compute() if counted["ceiling"] is not None
                            else None),
        "device": str(args.device),
        "latency_threads": next((r["latency_threads"] for r in records
                                 if r["latency_threads"]), None),
        "latency_rounds": args.latency_repeats, "latency_warning": latency_warning,
        "fid_protocol": ("FID/KID: InceptionV3 pool3 (2048-d), TF-ported FID weights, "
                         "torch-fidelity's extractor; generated vs real images of the split."
                         if extractor is not None else "FID/KID not computed."),
        "command": command_line("evaluate.py", argv).replace("accelerate launch ", "python "),
    }
    write_reports(args, records, settings, panels)
    print(results_table(records))
    print(f"Wrote {Path(args.output_dir) / 'results.json'}, results.md"
          f"{', bands.png' if panels else ''}")
    if args.update_card:
        update_cards(args, records, settings, lambda record: results_table([record]))
    if skipped_fid:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(run_cli(main, parse_args))
