"""The pix2pix, CycleGAN and WKD objectives written again from their formulas, independently of
``wkd_hf.losses`` (float64, PyWavelets for the DWT), to pin the distillers' losses in tests.

Every function takes network outputs (tensors) and returns a float64 scalar tensor.
"""

from __future__ import annotations

import numpy as np
import pywt
import torch
from torch import Tensor


def gan(prediction: Tensor, real: bool, gan_mode: str, for_generator: bool = False) -> Tensor:
    """LSGAN ``mean((p - y)^2)``; vanilla ``mean(-log sigmoid(p))`` (real) or
    ``mean(-log(1 - sigmoid(p)))`` (fake); hinge ``mean(max(0, 1 -/+ p))``, generator ``-mean(p)``."""
    p = prediction.double()
    if gan_mode == "lsgan":
        return ((p - (1.0 if real else 0.0)) ** 2).mean()
    if gan_mode == "vanilla":
        sigmoid = 1 / (1 + torch.exp(-p))
        return (-torch.log(sigmoid if real else 1 - sigmoid)).mean()
    if for_generator:
        return -p.mean()
    return torch.clamp(1 - p if real else 1 + p, min=0).mean()


def l1(a: Tensor, b: Tensor) -> Tensor:
    return (a.double() - b.double()).abs().mean()


def wkd(student: Tensor, teacher: Tensor, wave: str, levels: int, bands: str,
        distance: str) -> Tensor:
    """Sum over levels of the mean distance of the (LH, HL, HH) coefficients (``high``), the mean
    distance of the coarsest LL (``low``), or both (``all``); PyWavelets ``wavedec2``, zero mode."""
    def decompose(images: Tensor) -> list:
        array = images.detach().double().numpy()
        return [[pywt.wavedec2(channel, wave, mode="zero", level=levels) for channel in image]
                for image in array]

    s, t = decompose(student), decompose(teacher)
    d = (lambda a, b: np.abs(a - b)) if distance == "l1" else (lambda a, b: (a - b) ** 2)
    total = 0.0
    if bands in ("high", "all"):
        for level in range(1, levels + 1):
            diffs = [d(np.stack(s[n][c][level]), np.stack(t[n][c][level]))
                     for n in range(len(s)) for c in range(len(s[n]))]
            total += float(np.mean(np.stack(diffs)))
    if bands in ("low", "all"):
        diffs = [d(s[n][c][0], t[n][c][0]) for n in range(len(s)) for c in range(len(s[n]))]
        total += float(np.mean(np.stack(diffs)))
    return torch.tensor(total, dtype=torch.float64)
