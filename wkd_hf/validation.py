"""Validation during a run: cheap scores of the (a2b) generator on the validation batches, and
``--keep_best`` (checked before training; the best generator saved to ``OUTPUT_DIR/best/``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from torch import nn

from .errors import WKDError
from .metrics.bands import BandFidelity
from .metrics.paired import evaluate_paired
from .output_folders import drop_links
from .script_args import VALIDATION_METRICS

logger = get_logger(__name__)


def validation_scores(distiller: nn.Module, batches, accelerator: Accelerator
                      ) -> dict[str, float]:
    """Cheap validation metrics of the (a2b) generator: against the targets for paired batches
    (PSNR, SSIM, L1, one-level band distances: :func:`evaluate_paired`), else, with a teacher,
    L1 and band distances to the teacher's outputs (``teacher_*``); {} when neither applies."""
    batches = [b for b in batches if b is not None]
    students = getattr(distiller, "students", None)
    student = students["a2b"] if students is not None else distiller.student
    student = accelerator.unwrap_model(student)
    if batches and "target" in batches[0] and "source" in batches[0]:
        return evaluate_paired(student, batches, accelerator.device)
    teachers = getattr(distiller, "teachers", None)
    teacher = teachers["a2b"] if teachers is not None else getattr(distiller, "teacher", None)
    if teacher is None or not batches:
        return {}
    bands, l1_sum, count, was_training = BandFidelity(levels=1, device=accelerator.device), 0.0, \
        0, student.training
    student.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                source = (batch.get("source") if "source" in batch else batch["A"]).to(
                    accelerator.device)
                output, reference = student(source).clamp(-1, 1), teacher(source).clamp(-1, 1)
                l1_sum += float((output - reference).abs().flatten(1).mean(1).sum())
                count += len(source)
                bands.update(output, reference)
    finally:
        student.train(was_training)
    return {"teacher_l1": l1_sum / count,
            **{f"teacher_band_{k}": v for k, v in bands.compute().items()}}


def check_keep_best(args: argparse.Namespace, batch: dict | None, distiller: nn.Module) -> None:
    """Before training: ``--keep_best`` must name a metric this run's validation gives (paired
    data: psnr, ssim, l1, band_*; unpaired data with a teacher: teacher_*)."""
    metric = getattr(args, "keep_best", None)
    if not metric:
        return
    has_teacher = getattr(distiller, "teachers", None) is not None or \
        getattr(distiller, "teacher", None) is not None
    if batch is None:
        given = "no validation split"
    elif "target" in batch and "source" in batch:
        given = "paired data: psnr, ssim, l1, band_LL/LH/HL/HH"
    else:
        given = "unpaired data " + ("with a teacher: teacher_l1, teacher_band_*" if has_teacher
                                    else "without a teacher: none")
    fits = batch is not None and (metric.startswith("teacher_") != given.startswith("paired"))
    if not fits or (given.startswith("unpaired") and not has_teacher):
        raise WKDError(f"--keep_best {metric}: this run's validation cannot give it ({given}); "
                       "checked before training: pick one it gives, or drop --keep_best.")


def keep_best_generator(args: argparse.Namespace, distiller: nn.Module, scores: dict[str, float],
                        step: int, accelerator: Accelerator) -> bool:
    """``--keep_best METRIC``: save the (a2b) generator to ``OUTPUT_DIR/best/`` with
    ``best_metric.json`` when ``scores[METRIC]`` beats the one saved there (main process; the
    saved file survives resumes). Returns True when it saved. A metric that this run never
    produces is an error, not a silently empty ``best/``."""
    metric = getattr(args, "keep_best", None)
    if not metric or not accelerator.is_main_process:
        return False
    if metric not in scores:
        available = ", ".join(sorted(scores)) or ("no metric (no validation split, or unpaired "
                                                  "data without a teacher)")
        raise WKDError(f"--keep_best {metric}: this run's validation gives {available}; pick "
                       "one of them.")
    value, higher = float(scores[metric]), VALIDATION_METRICS[metric]
    folder = Path(args.output_dir) / "best"
    record = folder / "best_metric.json"
    if record.is_file():
        best = json.loads(record.read_text())
        if best.get("metric") == metric and (value <= best["value"] if higher
                                             else value >= best["value"]):
            return False
    students = getattr(distiller, "students", None)
    generator = accelerator.unwrap_model(students["a2b"] if students is not None
                                         else distiller.student)
    folder.mkdir(parents=True, exist_ok=True)
    drop_links(folder)  # save_pretrained would write through a link
    generator.save_pretrained(folder)
    record.write_text(json.dumps({"metric": metric, "value": value, "step": step,
                                  "higher_is_better": higher, "split": "validation",
                                  "scores": scores}, indent=2))
    logger.info("New best %s %.4f at step %d: saved %s", metric, value, step, folder,
                main_process_only=True)
    return True
