"""Paired-data quality: L1, PSNR, SSIM and the paper's per-band wavelet distances to the targets.

SSIM is torchmetrics' implementation (Gaussian window 11, sigma 1.5, on [0, 1] images, the
standard Wang et al. 2004 constants); PSNR and L1 are one line each. All work on batches of
N x C x H x W tensors in [-1, 1] and return one value per image.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..wavelets import WaveletBandSplit, band_distances

PAIRED_METRICS = ("psnr", "ssim", "l1")


def psnr(images: Tensor, targets: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB per image (shape N) for N x C x H x W in [-1, 1]."""
    mse = ((images.float() - targets.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def l1(images: Tensor, targets: Tensor) -> Tensor:
    """Mean absolute error per image (shape N), in the images' [-1, 1] units."""
    return (images.float() - targets.float()).abs().flatten(1).mean(1)


def ssim(images: Tensor, targets: Tensor) -> Tensor:
    """Structural similarity per image (shape N) for N x C x H x W in [-1, 1], computed by
    ``torchmetrics.functional.structural_similarity_index_measure`` on [0, 1] images
    (data_range 1, 11x11 Gaussian window, sigma 1.5; channels averaged)."""
    try:
        from torchmetrics.functional.image import structural_similarity_index_measure
    except ImportError as error:
        raise ImportError("SSIM needs torchmetrics: pip install torchmetrics (a dependency of "
                          "wkd_hf).") from error
    x = ((images.float() + 1) / 2).clamp(0, 1)
    y = ((targets.float() + 1) / 2).clamp(0, 1)
    return structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")


def paired_scores(images: Tensor, targets: Tensor, metrics: Sequence[str] = PAIRED_METRICS,
                  split: WaveletBandSplit | None = None) -> dict[str, Tensor]:
    """Per-image scores (each shape N): any of ``psnr``, ``ssim``, ``l1``, and with ``split``
    the band distances ``band_<name>`` (see :func:`wkd_hf.wavelets.band_distances`)."""
    functions = {"psnr": psnr, "ssim": ssim, "l1": l1}
    out = {name: functions[name](images, targets).double().cpu() for name in metrics}
    if split is not None:
        for band, value in band_distances(images, targets, per_image=True, split=split).items():
            out[f"band_{band}"] = value.double().cpu()
    return out


@torch.no_grad()
def evaluate_paired(generator: nn.Module, batches: Iterable[Mapping[str, Tensor] | None],
                    device: torch.device | str = "cpu", levels: int = 1,
                    metrics: Sequence[str] = PAIRED_METRICS) -> dict[str, float]:
    """Mean L1, PSNR, SSIM and per-band normalised L1 (``band_LL``, ``band_LH``, ...) of
    ``generator(source)`` against ``target`` over ``batches`` of ``{"source", "target"}``.

    The generator runs in eval mode; its mode is restored afterwards. Band distances are the
    paper's Figure-1 measure (``levels`` Haar levels, default 1; see
    :func:`wkd_hf.wavelets.band_distances`).
    """
    was_training = generator.training
    generator.eval()
    sums: dict[str, float] = defaultdict(float)
    count = 0
    split = WaveletBandSplit("haar", levels=levels).to(device)  # built once, not per batch
    try:
        for batch in batches:
            if batch is None:
                continue
            source, target = batch["source"].to(device), batch["target"].to(device)
            output = generator(source).clamp(-1, 1)
            for key, values in paired_scores(output, target, metrics, split).items():
                sums[key] += float(values.sum())
            count += source.shape[0]
    finally:
        generator.train(was_training)
    if count == 0:
        raise ValueError("evaluate_paired got no usable batch.")
    return {key: value / count for key, value in sums.items()}
