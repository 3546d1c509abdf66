"""Paired-data quality: L1, PSNR, and the paper's per-band wavelet distances to the targets."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from ..wavelets import WaveletBandSplit, band_distances


def psnr(images: Tensor, targets: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB per image (shape N) for N x C x H x W in [-1, 1]."""
    mse = ((images.float() - targets.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


@torch.no_grad()
def evaluate_paired(generator: nn.Module, batches: Iterable[Mapping[str, Tensor] | None],
                    device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean L1, PSNR and per-band normalised L1 (``band_LL``, ``band_LH``, ...) of
    ``generator(source)`` against ``target`` over ``batches`` of ``{"source", "target"}``.

    The generator runs in eval mode; its mode is restored afterwards. Band distances are the
    paper's Figure-1 measure (one Haar level; see :func:`wkd_hf.wavelets.band_distances`).
    """
    was_training = generator.training
    generator.eval()
    sums: dict[str, float] = defaultdict(float)
    count = 0
    split = WaveletBandSplit("haar", levels=1).to(device)  # built once, not per batch
    try:
        for batch in batches:
            if batch is None:
                continue
            source, target = batch["source"].to(device), batch["target"].to(device)
            output = generator(source).clamp(-1, 1)
            n = source.shape[0]
            sums["l1"] += float((output - target).abs().flatten(1).mean(1).sum())
            sums["psnr"] += float(psnr(output, target).sum())
            for band, value in band_distances(output, target, per_image=True, split=split).items():
                sums[f"band_{band}"] += float(value.sum())
            count += n
    finally:
        generator.train(was_training)
    if count == 0:
        raise ValueError("evaluate_paired got no usable batch.")
    return {key: value / count for key, value in sums.items()}
