"""An unpaired translation's scores from a small domain classifier (e.g. horse vs zebra) trained
on the train splits: the share of translated images it calls the target domain, and the
*classifier Frechet distance* — the Frechet distance between Gaussians fitted to its
penultimate features of translated images and of real target-domain images. The classifier is
this project's, trained in minutes; the distance is not FID and not comparable with published
FIDs."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .evaluator_io import load_evaluator, save_evaluator
from .fid import feature_statistics, frechet_distance

DOMAIN_FILE = "domain_evaluator"


class DomainClassifier(nn.Module):
    """N x 3 x R x R images in [-1, 1] -> N x 2 logits (class 1 = the target domain);
    :meth:`features` gives the N x 8w penultimate features (global average pool)."""

    def __init__(self, width: int = 16):
        super().__init__()
        layers, cin = [], 3
        for cout in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 2)

    def features(self, images: Tensor) -> Tensor:
        return self.body(images).mean((2, 3))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


class DomainScore(nn.Module):
    """``update(images)`` for translated images, ``update_reals(images)`` for real target-domain
    images (N x 3 x H x W in [-1, 1], resized to the classifier's resolution); :meth:`compute`:
    ``{"target_share", "classifier_frechet_distance"}``."""

    def __init__(self, net: DomainClassifier, resolution: int):
        super().__init__()
        self.net, self.resolution = net.eval(), resolution
        self.generated: list[Tensor] = []
        self.reals: list[Tensor] = []
        self.target_count = 0

    @torch.no_grad()
    def _features(self, images: Tensor) -> Tensor:
        x = F.interpolate(images.float(), size=(self.resolution,) * 2, mode="bilinear",
                          align_corners=False, antialias=True)
        return self.net.features(x)

    @torch.no_grad()
    def update(self, images: Tensor) -> None:
        features = self._features(images)
        self.target_count += int((self.net.head(features).argmax(1) == 1).sum())
        self.generated.append(features.double().cpu())

    @torch.no_grad()
    def update_reals(self, images: Tensor) -> None:
        self.reals.append(self._features(images).double().cpu())

    def compute(self) -> dict[str, float]:
        generated, reals = torch.cat(self.generated), torch.cat(self.reals)
        if len(generated) < 2 or len(reals) < 2:
            raise ValueError("the classifier Frechet distance needs at least 2 translated and 2 "
                             "real images.")
        return {"target_share": self.target_count / len(generated),
                "classifier_frechet_distance": frechet_distance(
                    *feature_statistics(generated), *feature_statistics(reals))}


def save_domain_evaluator(folder: str | Path, net: DomainClassifier, resolution: int, width: int,
                          record: dict) -> Path:
    config = {"kind": "domain_classifier", "width": width, "resolution": resolution}
    return save_evaluator(folder, DOMAIN_FILE, net, config, record)


def load_domain_evaluator(folder: str | Path) -> DomainScore:
    """The :class:`DomainScore` saved by ``train_evaluators.py domain`` in ``folder``."""
    state, config = load_evaluator(folder, DOMAIN_FILE, "domain_classifier")
    net = DomainClassifier(config["width"])
    net.load_state_dict(state)
    return DomainScore(net, config["resolution"])
