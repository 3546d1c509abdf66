"""Do-nothing baselines of the study: what the trained evaluators say of images no network made.

- horse -> zebra: the *untranslated* test horses scored as translations (target share and
  classifier Frechet distance to the real test zebras): the floor a student must leave behind.
- facades: the test *label maps* scored as photos by the FCN-score: the floor of a generator
  that copies its input.
"""

from __future__ import annotations

from pathlib import Path

import torch

from wkd_hf.data import (
    PairedTransform,
    UnpairedTransform,
    build_eval_dataloader,
    load_paired_dataset,
    load_unpaired_datasets,
)
from wkd_hf.metrics.domain_classifier import load_domain_evaluator
from wkd_hf.metrics.fcn_score import load_fcn_evaluator


@torch.inference_mode()
def untranslated_domain_scores(data_dir: Path, resolution: int, evaluator_dir: Path) -> dict:
    """Target share and classifier Frechet distance of the test horses themselves."""
    horses, zebras = load_unpaired_datasets(train_data_dir=str(data_dir), split="test")
    transform = UnpairedTransform(resolution, train=False)
    score = load_domain_evaluator(evaluator_dir)
    for batch in build_eval_dataloader(horses, transform, 8):
        score.update(batch["image"])
    for batch in build_eval_dataloader(zebras, transform, 8):
        score.update_reals(batch["image"])
    return score.compute()


@torch.inference_mode()
def label_map_fcn_scores(data_dir: Path, resolution: int, evaluator_dir: Path) -> dict:
    """FCN-score of the test label maps given as the generated photos (B -> A: labels -> photo)."""
    dataset = load_paired_dataset(train_data_dir=str(data_dir), split="test", direction="BtoA")
    score = load_fcn_evaluator(evaluator_dir)
    for batch in build_eval_dataloader(dataset, PairedTransform(resolution, train=False), 8):
        score.update(batch["source"], batch["source"])
    return {f"fcn_{k}": v for k, v in score.compute().items()}
