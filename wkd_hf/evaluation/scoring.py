"""``evaluate.py``'s scoring: the models (any generator a teacher could be), their per-model
accumulators, one pass over the data for all of them, and FID/KID from the features."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from ..metrics.bands import BandEnergy, BandFidelity
from ..metrics.fcn_score import load_fcn_evaluator
from ..metrics.fid import InceptionFeatures, feature_statistics, frechet_distance, kid_from_features
from ..metrics.paired import paired_scores
from ..recipes import check_resolution_fits, load_teachers

PAIRED_ONLY = ("psnr", "ssim", "l1")


def display_names(specs: list[str]) -> list[str]:
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
    path = os.path.expanduser(spec)
    model = load_teachers(path if os.path.exists(path) else spec, "paired", args.direction)["a2b"]
    check_resolution_fits(model, args.resolution)
    return model.eval()


class ModelState:
    """Per-model accumulators."""

    def __init__(self, name, spec, model, metrics, layout, levels, device, with_teacher):
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


def fid_extractor(args, metrics: list[str]):
    """The InceptionV3 extractor, or None with one ``error:`` line when it cannot run."""
    if not {"fid", "kid"} & set(metrics):
        return None
    try:
        return InceptionFeatures(args.inception_weights).to(args.device)
    except (OSError, ImportError) as error:
        print(f"error: {error} (FID/KID skipped; the other metrics still run)", file=sys.stderr)
        return None


@torch.no_grad()
def evaluate_models(args, data, states: list[ModelState], teacher, extractor, metrics,
                    cached_reals: bool = False) -> dict:
    """Every model on the same batches; ``counted``: image counts, the FCN ceiling and (unless
    ``cached_reals``: the real statistics were read from --real_stats) the real features."""
    device = args.device
    paired_metrics = [m for m in PAIRED_ONLY if m in metrics]
    real_features: list[torch.Tensor] = []
    counted = {"images": 0, "real_images": 0, "ceiling": fcn_ceiling(args, metrics)}
    source_loader = data["loader"] if data["layout"] == "paired" else data["sources"]
    for batch in source_loader:
        if batch is None:
            continue
        source = (batch["source"] if data["layout"] == "paired" else batch["image"]).to(device)
        target = batch["target"].to(device) if data["layout"] == "paired" else None
        teacher_out = teacher(source).clamp(-1, 1) if teacher is not None else None
        if target is not None and extractor is not None and not cached_reals:
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
            if extractor is not None and not cached_reals:
                real_features.append(extractor(real))
    else:
        counted["real_images"] = counted["images"]
    counted["real_features"] = real_features
    return counted


def fcn_ceiling(args, metrics):
    """The FCN-score of the real target photos (pix2pix's ceiling), or None without ``fcn``."""
    if "fcn" not in metrics:
        return None
    return load_fcn_evaluator(args.evaluator_dir).to(args.device)


def fid_kid(args, state, reals, metrics) -> dict:
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
