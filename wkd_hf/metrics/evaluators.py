"""The trained-evaluator metrics of ``evaluate.py``: ``fcn`` (FCN-score, paired label -> photo)
and ``domain`` (target share and classifier Frechet distance, unpaired), read from one
``--evaluator_dir`` written by ``training_scripts/train_evaluators.py``."""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

from ..errors import WKDError
from .domain_classifier import DOMAIN_FILE, load_domain_evaluator
from .fcn_score import FCN_FILE, load_fcn_evaluator

EVALUATOR_METRICS = ("fcn", "domain")
LAYOUT = {"fcn": "paired", "domain": "unpaired"}


class ModelEvaluators:
    """One model's evaluator accumulators. ``update(output, source)`` per batch of translated
    images (and their label-map inputs); ``update_reals(images)`` with real target images."""

    def __init__(self, folder: str | Path, metrics: list[str], device):
        self.fcn = load_fcn_evaluator(folder).to(device) if "fcn" in metrics else None
        self.domain = load_domain_evaluator(folder).to(device) if "domain" in metrics else None

    def update(self, output: Tensor, source: Tensor) -> None:
        if self.fcn is not None:
            self.fcn.update(output, source)
        if self.domain is not None:
            self.domain.update(output)

    def update_reals(self, images: Tensor) -> None:
        if self.domain is not None:
            self.domain.update_reals(images)

    def compute(self) -> dict[str, float]:
        out = {}
        if self.fcn is not None:
            out.update({f"fcn_{k}": v for k, v in self.fcn.compute().items()})
        if self.domain is not None:
            out.update(self.domain.compute())
        return out


def check_evaluators(folder: str | None, metrics: list[str], layout: str) -> list[str]:
    """The evaluator metrics that apply to ``layout``; an error naming the fix when
    ``--evaluator_dir`` is missing."""
    wanted = [m for m in metrics if m in EVALUATOR_METRICS]
    if wanted and folder is None:
        raise WKDError(f"--metrics {','.join(wanted)} needs --evaluator_dir (a folder written by "
                       "training_scripts/train_evaluators.py).")
    skipped = [m for m in wanted if LAYOUT[m] != layout]
    if skipped:
        print(f"note: {','.join(skipped)} apply to {'/'.join(LAYOUT[m] for m in skipped)} data, "
              f"not {layout}: skipped")
    return [m for m in wanted if m not in skipped]


def evaluator_records(folder: str | Path, metrics: list[str]) -> dict:
    """Each used evaluator's own record (its test accuracy, seed, steps) for the settings."""
    names = {"fcn": FCN_FILE, "domain": DOMAIN_FILE}
    return {m: json.loads((Path(folder) / f"{names[m]}.json").read_text()) for m in metrics}
