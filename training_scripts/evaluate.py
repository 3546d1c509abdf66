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
import json
import logging
import os
import sys
from pathlib import Path

import torch

from wkd_hf.metrics.model_timing import for_card, latency_cell, latency_note, time_models
from wkd_hf.run_record import command_line
from wkd_hf.script_args import ScriptArgumentParser, add_data_args, readme_epilog

logger = logging.getLogger("wkd_hf.evaluate")

ALL_METRICS = ("psnr", "ssim", "l1", "bands", "fid", "kid")
EVALUATOR_METRICS = ("fcn", "domain")  # trained evaluators (--evaluator_dir): asked for by name
PAIRED_ONLY = ("psnr", "ssim", "l1")
TABLE_COLUMNS = [("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
                 ("l1", "L1", "{:.4f}"), ("fid", "FID", "{:.2f}"),
                 ("fcn_pixel_accuracy", "FCN pixel acc", "{:.3f}"),
                 ("fcn_class_accuracy", "FCN class acc", "{:.3f}"),
                 ("fcn_miou", "FCN mIoU", "{:.3f}"),
                 ("target_share", "target share", "{:.3f}"),
                 ("classifier_frechet_distance", "classifier FD", "{:.3f}")]


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
                         "all; psnr, ssim and l1 need paired data).")
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


# ----------------------------------------------------------------------------- data
def _split_candidates(args) -> list[str]:
    return [args.split] if args.split else ["test", "train"]


def _dataset_label(args) -> str:
    if args.dataset_name and not os.path.isdir(args.dataset_name):
        return args.dataset_name
    folder = Path(os.path.expanduser(args.train_data_dir or args.dataset_name)).resolve()
    if folder.name.lower() in ("train", "test", "val", "validation", "testa", "testb", "traina",
                               "trainb"):
        return folder.parent.name
    return folder.name


def _split_label(args, split: str) -> str:
    """The split as readers know it: a folder of test images given as --train_data_dir loads as
    the single split 'train', but is the test split."""
    if args.split is None and split == "train" and args.train_data_dir:
        name = Path(os.path.expanduser(args.train_data_dir)).resolve().name.lower()
        if name in ("test", "val", "validation"):
            return name
    return split


def _layout(args) -> str:
    if args.layout != "auto":
        return args.layout
    from wkd_hf.data.sources import domain_folders, local_source

    folder = local_source(args.dataset_name, args.train_data_dir)
    if folder is not None and domain_folders(folder):
        return "unpaired"
    return "paired"


def _first_rows(dataset, count):
    if count is None:
        return dataset
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        return dataset.take(count)
    return dataset.select(range(min(count, len(dataset))))


def _load_split(args, loader_fn, **kwargs):
    """Try each candidate split; the first that exists wins (an explicit --split must exist)."""
    candidates = _split_candidates(args)
    for i, split in enumerate(candidates):
        try:
            return split, loader_fn(split=split, **kwargs)
        except ValueError as error:
            if i + 1 == len(candidates) or "split" not in str(error):
                raise
    raise AssertionError("unreachable")


def build_data(args) -> dict:
    """``{"layout", "split", "loader"}`` (paired) or ``{"layout", "split", "sources", "reals"}``."""
    from wkd_hf.data import (
        PairedTransform,
        UnpairedTransform,
        build_eval_dataloader,
        load_paired_dataset,
        load_unpaired_datasets,
        set_max_image_pixels,
    )

    set_max_image_pixels(args.max_image_pixels or None)
    common = dict(dataset_name=args.dataset_name, dataset_config_name=args.dataset_config_name,
                  train_data_dir=args.train_data_dir, streaming=args.streaming,
                  cache_dir=args.cache_dir)
    loader_kwargs = dict(num_workers=args.dataloader_num_workers,
                         max_bad_fraction=args.max_bad_fraction)
    layout = _layout(args)
    if layout == "paired":
        split, dataset = _load_split(args, load_paired_dataset, source_column=args.source_column,
                                     target_column=args.target_column, direction=args.direction,
                                     **common)
        dataset = _first_rows(dataset, args.max_eval_samples)
        loader = build_eval_dataloader(dataset, PairedTransform(args.resolution, train=False),
                                       args.batch_size, **loader_kwargs)
        return {"layout": layout, "split": split, "loader": loader}
    split, (domain_a, domain_b) = _load_split(
        args, load_unpaired_datasets, domain_a_column=args.domain_a_column,
        domain_b_column=args.domain_b_column, **common)
    sources, reals = (domain_a, domain_b) if args.direction == "AtoB" else (domain_b, domain_a)
    transform = UnpairedTransform(args.resolution, train=False)
    return {"layout": layout, "split": split,
            "sources": build_eval_dataloader(_first_rows(sources, args.max_eval_samples),
                                             transform, args.batch_size, **loader_kwargs),
            "reals": build_eval_dataloader(_first_rows(reals, args.max_eval_samples),
                                           transform, args.batch_size, **loader_kwargs)}


# ----------------------------------------------------------------------------- models
def _display_names(specs: list[str]) -> list[str]:
    names = []
    for spec in specs:
        path = Path(os.path.expanduser(spec))
        if path.is_file():
            name = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
        elif path.is_dir():
            name = path.resolve().name
        else:
            name = spec
        names.append(name)
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            names[i] = f"{name} ({seen[name]})"
    return names


def load_model(spec: str, args) -> torch.nn.Module:
    from wkd_hf.recipes import check_resolution_fits, load_teachers

    path = os.path.expanduser(spec)
    model = load_teachers(path if os.path.exists(path) else spec, "paired", args.direction)["a2b"]
    check_resolution_fits(model, args.resolution)
    return model.eval()


# ----------------------------------------------------------------------------- evaluation
class _ModelState:
    """Per-model accumulators."""

    def __init__(self, name, spec, model, metrics, layout, levels, device, with_teacher):
        from wkd_hf.metrics.bands import BandEnergy, BandFidelity

        self.name, self.spec, self.model = name, spec, model
        self.sums: dict[str, float] = {}
        self.count = 0
        self.bands = None
        if "bands" in metrics:
            self.bands = (BandFidelity(levels, device=device) if layout == "paired"
                          else BandEnergy(levels, device=device))
        self.teacher_bands = BandFidelity(levels, device=device) if with_teacher else None
        self.features: list[torch.Tensor] = []
        self.evaluators = None  # wkd_hf.metrics.evaluators.ModelEvaluators with --evaluator_dir

    def add(self, scores: dict[str, torch.Tensor]) -> None:
        for key, values in scores.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(values.sum())


def _fid_extractor(args, metrics: list[str]):
    """The InceptionV3 extractor, or None with one ``error:`` line when it cannot run."""
    if not {"fid", "kid"} & set(metrics):
        return None
    from wkd_hf.metrics.fid import InceptionFeatures

    try:
        return InceptionFeatures(args.inception_weights).to(args.device)
    except (OSError, ImportError) as error:
        print(f"error: {error} (FID/KID skipped; the other metrics still run)", file=sys.stderr)
        return None


@torch.no_grad()
def evaluate_models(args, data, states: list[_ModelState], teacher, extractor, metrics) -> dict:
    from wkd_hf.metrics.paired import paired_scores

    device = args.device
    paired_metrics = [m for m in PAIRED_ONLY if m in metrics]
    real_features: list[torch.Tensor] = []
    counted = {"images": 0, "real_images": 0, "ceiling": _fcn_ceiling(args, metrics)}
    source_loader = data["loader"] if data["layout"] == "paired" else data["sources"]
    for batch in source_loader:
        if batch is None:
            continue
        source = (batch["source"] if data["layout"] == "paired" else batch["image"]).to(device)
        target = batch["target"].to(device) if data["layout"] == "paired" else None
        teacher_out = teacher(source).clamp(-1, 1) if teacher is not None else None
        if target is not None and extractor is not None and not args._cached_reals:
            real_features.append(extractor(target))
        if target is not None and counted.get("ceiling") is not None:
            counted["ceiling"].update(target, source)
        counted["images"] += len(source)
        for state in states:
            output = state.model(source).clamp(-1, 1)
            if target is not None:
                state.add(paired_scores(output, target, paired_metrics))
                if state.bands is not None:
                    state.bands.update(output, target)
            elif state.bands is not None:
                state.bands.update(images=output)
            if state.teacher_bands is not None:
                state.teacher_bands.update(output, teacher_out)
            if extractor is not None:
                state.features.append(extractor(output))
            if state.evaluators is not None:
                state.evaluators.update(output, source)
            state.count += len(source)
    if counted["images"] == 0:
        raise ValueError("No readable image to evaluate.")
    if data["layout"] == "unpaired":
        for batch in data["reals"]:
            if batch is None:
                continue
            real = batch["image"].to(device)
            counted["real_images"] += len(real)
            for state in states:
                if state.bands is not None:
                    state.bands.update(references=real)
                if state.evaluators is not None:
                    state.evaluators.update_reals(real)
            if extractor is not None and not args._cached_reals:
                real_features.append(extractor(real))
    else:
        counted["real_images"] = counted["images"]
    counted["real_features"] = real_features
    return counted


def _fcn_ceiling(args, metrics):
    """The FCN-score of the real target photos (pix2pix's ceiling), or None without ``fcn``."""
    if "fcn" not in metrics:
        return None
    from wkd_hf.metrics.fcn_score import load_fcn_evaluator

    return load_fcn_evaluator(args.evaluator_dir).to(args.device)


def _fid_kid(args, state, reals, metrics) -> dict:
    from wkd_hf.metrics.fid import feature_statistics, frechet_distance, kid_from_features

    features = torch.cat(state.features)
    out = {}
    if "fid" in metrics:
        if len(features) < 2:
            raise ValueError("FID needs at least 2 generated images.")
        out["fid"] = frechet_distance(*feature_statistics(features), reals["mu"], reals["sigma"])
    if "kid" in metrics:
        out["kid_mean"], out["kid_std"] = kid_from_features(
            features, reals["features"], subsets=args.kid_subsets,
            subset_size=args.kid_subset_size)
    return out


# ----------------------------------------------------------------------------- reports
def _fmt(value, pattern):
    return pattern.format(value) if value is not None else "-"


def results_table(records: list[dict]) -> str:
    """Markdown table: efficiency and quality, one row per model."""
    from wkd_hf.cards import format_count

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
    from wkd_hf.metrics.bands import band_table, plot_band_fidelity
    from wkd_hf.safe_files import finite_or_null, write_text_beside

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
    from wkd_hf.hub import write_evaluation_results

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
    from wkd_hf.metrics.evaluators import ModelEvaluators, check_evaluators, evaluator_records

    evaluator_metrics = check_evaluators(args.evaluator_dir, metrics, data["layout"])
    metrics = [m for m in metrics if m not in EVALUATOR_METRICS] + evaluator_metrics
    skipped_fid = False
    extractor = _fid_extractor(args, metrics)
    if extractor is None and {"fid", "kid"} & set(metrics):
        skipped_fid = True
        metrics = [m for m in metrics if m not in ("fid", "kid")]
    args._cached_reals = False
    reals = None
    if extractor is not None and args.real_stats and os.path.isfile(args.real_stats):
        from wkd_hf.metrics.fid import load_statistics

        reals = load_statistics(args.real_stats)
        args._cached_reals = "kid" not in metrics or "features" in reals
        if not args._cached_reals:
            reals = None
        else:
            print(f"Real statistics read from {args.real_stats}")
    specs = list(args.model)
    names = _display_names(specs)
    teacher = load_model(args.teacher, args).to(args.device) if args.teacher else None
    states = []
    for name, spec in zip(names, specs):
        model = load_model(spec, args).to(args.device)
        print(f"Loaded {name}: {type(model).__name__}")
        states.append(_ModelState(name, spec, model, metrics, data["layout"], args.band_levels,
                                  args.device, teacher is not None))
        if evaluator_metrics:
            states[-1].evaluators = ModelEvaluators(args.evaluator_dir, evaluator_metrics,
                                                    args.device)
    counted = evaluate_models(args, data, states, teacher, extractor, metrics)
    if extractor is not None and reals is None:
        features = torch.cat(counted["real_features"])
        if len(features) < 2:
            raise ValueError("FID/KID need at least 2 readable real images.")
        from wkd_hf.metrics.fid import feature_statistics, save_statistics

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
            metrics_out.update(_fid_kid(args, state, reals, metrics))
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
        "dataset": _dataset_label(args), "split": _split_label(args, data["split"]),
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
    from wkd_hf.run import run_cli

    sys.exit(run_cli(main, parse_args))
