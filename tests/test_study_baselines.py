"""The study's do-nothing baselines score the right images: the source domain as translations,
the other domain as the reals; the label maps as photos against themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from conftest import load_benchmark
from PIL import Image

from wkd_hf.metrics.domain_classifier import DomainClassifier, save_domain_evaluator

baselines = load_benchmark("study_baselines")


def _image(path: Path, period: int) -> np.ndarray:
    """A striped image: vertical stripes ``period`` px wide (0: a flat brown horse)."""
    columns = np.arange(32)
    stripes = (columns // period) % 2 if period else np.zeros(32, dtype=int)
    pixels = np.zeros((32, 32, 3), dtype=np.uint8) + np.array([140, 90, 50], dtype=np.uint8)
    pixels[:, stripes == 1] = 240
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def test_untranslated_horses_are_the_translations_and_zebras_the_reals(tmp_path):
    for i in range(3):  # three copies of one flat brown horse
        _image(tmp_path / "data" / "testA" / f"{i}.png", 0)
    for i in range(4):
        _image(tmp_path / "data" / "testB" / f"{i}.png", 1 + i)
    torch.manual_seed(0)
    net = DomainClassifier(width=4).eval()
    for layer in net.body:  # He init: features of order 1 (the default shrinks them ~1e-4)
        if isinstance(layer, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    to_tensor = lambda p: torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():  # a head that calls the horse image "zebra" and the zebra images not
        f_horse = net.features(to_tensor(tmp_path / "data" / "testA" / "0.png"))[0]
        f_zebras = torch.cat([net.features(to_tensor(p))
                              for p in sorted((tmp_path / "data" / "testB").glob("*.png"))])
        w = f_horse - f_zebras.mean(0)
        threshold = ((f_zebras @ w).max() + f_horse @ w) / 2
        net.head.weight.copy_(torch.stack([-w, w]) / 2)
        net.head.bias.copy_(torch.stack([threshold, -threshold]) / 2)
        assert (f_horse @ w) > threshold and ((f_zebras @ w) < threshold).all()
    save_domain_evaluator(tmp_path / "ev", net, 32, 4, {})
    scores = baselines.untranslated_domain_scores(tmp_path / "data", 32, tmp_path / "ev")
    assert scores["target_share"] == 1.0  # the three horse copies; swapped domains give 0.0
    # three identical horses: their feature covariance is 0, so the distance is
    # |mu_h - mu_z|^2 + tr(cov_z), computed here independently of the module
    mu_z, cov_z = f_zebras.double().mean(0), torch.cov(f_zebras.double().T)
    expected = float(((f_horse.double() - mu_z) ** 2).sum() + torch.trace(cov_z))
    assert expected > 1e-3
    assert abs(scores["classifier_frechet_distance"] - expected) < 1e-3 * expected


def test_label_maps_are_scored_as_the_photos(tmp_path, monkeypatch):
    """facades' AB images hold the photo (A, left) and the label map (B, right): the baseline
    feeds the label map as both the generated photo and the labels."""
    pixels = np.zeros((32, 64, 3), dtype=np.uint8)
    pixels[:, :32] = (255, 0, 0)  # A: photo
    pixels[:, 32:] = (0, 0, 255)  # B: label map
    (tmp_path / "test").mkdir()
    Image.fromarray(pixels).save(tmp_path / "test" / "1.png")
    seen = []

    class Recorder:
        def update(self, images, labels):
            seen.append((images, labels))

        def compute(self):
            return {"miou": 0.5}

    monkeypatch.setattr(baselines, "load_fcn_evaluator", lambda folder: Recorder())
    assert baselines.label_map_fcn_scores(tmp_path, 32, tmp_path / "ev") == {"fcn_miou": 0.5}
    (images, labels), = seen
    blue = torch.tensor([-1.0, -1.0, 1.0]).view(1, 3, 1, 1).expand_as(images)
    assert torch.allclose(images, blue, atol=1e-2) and torch.allclose(labels, blue, atol=1e-2)
