"""Discrete wavelet band split (pure math, no training code).

A ``J``-level 2-D DWT of an ``N x C x H x W`` image gives one low band and ``3 J`` high bands::

    ll        N x C x h_J x w_J            approximation after J levels (LL)
    highs[j]  N x C x 3 x h_j x w_j        detail bands of level j, j = 0 is the FINEST level

This is ``pytorch_wavelets.DWTForward``'s order (the reverse of PyWavelets' ``wavedec2``). The
size-3 axis holds, in this order (checked against ``pywt.dwt2``):

    0  LH  high-pass along height, low-pass along width: horizontal edges  (pywt ``cH``)
    1  HL  low-pass along height, high-pass along width: vertical edges    (pywt ``cV``)
    2  HH  high-pass along both: diagonal detail                           (pywt ``cD``)

With ``mode="zero"`` and the Haar wavelet, ``h_j = ceil(H / 2**(j+1))``; longer filters give
slightly larger bands (zero padding adds ``len(filter) - 2`` border coefficients per level).
"""

from __future__ import annotations

import contextlib
import warnings

import pywt
import torch
from torch import nn

with warnings.catch_warnings():  # pytorch_wavelets 1.3.0 (unmaintained) imports pkg_resources
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    from pytorch_wavelets import DWTForward

BAND_NAMES = ("LH", "HL", "HH")


def _filter_length(wave: str) -> int:
    """Length of the decomposition filter of a discrete PyWavelets wavelet (haar: 2, db3: 6)."""
    allowed = pywt.wavelist(kind="discrete")
    if wave not in allowed:
        raise ValueError(
            f"Unknown wavelet {wave!r}; use a discrete PyWavelets name such as 'haar', 'db1'-'db38',"
            f" 'sym2'-'sym20', 'coif1'-'coif17', 'bior*', 'rbio*' (see pywt.wavelist('discrete'))."
        )
    return pywt.Wavelet(wave).dec_len


def max_levels(height: int, width: int, wave: str = "haar") -> int:
    """Deepest useful DWT level for an image: ``floor(log2(min(H, W) / (filter_len - 1)))``.

    Same rule as ``pywt.dwt_max_level``: for Haar this is ``floor(log2(min(H, W)))``.
    """
    return pywt.dwt_max_level(min(height, width), _filter_length(wave))


def check_resolution(height: int, width: int, levels: int, wave: str = "haar") -> None:
    """Raise ``ValueError`` if an ``height x width`` image is too small for ``levels`` DWT levels.

    Requires ``min(H, W) >= (filter_len - 1) * 2**levels`` (``2**levels`` for Haar, so that the
    coarsest band still holds at least one coefficient that is not border padding).
    """
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1, got {levels!r}.")
    allowed = max_levels(height, width, wave)
    if levels > allowed:
        needed = (_filter_length(wave) - 1) * 2**levels
        fix = f"Lower --wkd_levels to {allowed} or raise" if allowed else "Raise"
        raise ValueError(
            f"Image of {height}x{width} is too small for a {levels}-level {wave!r} DWT: at most "
            f"{allowed} level(s) fit. {fix} --resolution to at least {needed}."
        )


def _autocast_disabled(device_type: str) -> contextlib.AbstractContextManager:
    """``torch.autocast(enabled=False)`` where autocast exists (not on ``meta``)."""
    if device_type == "meta":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, enabled=False)


class WaveletBandSplit(nn.Module):
    """Multi-level 2-D DWT (``pytorch_wavelets.DWTForward``, ``mode="zero"``) in float32.

    Args:
        wave: discrete PyWavelets name ("haar", "db3", ...).
        levels: number of decomposition levels J >= 1.

    The filters are buffers, so ``.to(device)`` moves them. The image size is validated with
    :func:`check_resolution` the first time each ``(H, W)`` is seen.
    """

    def __init__(self, wave: str = "haar", levels: int = 4) -> None:
        super().__init__()
        _filter_length(wave)
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be an integer >= 1, got {levels!r}.")
        self.wave = wave
        self.levels = levels
        self.dwt = DWTForward(J=levels, wave=wave, mode="zero")
        self._checked_sizes: set[tuple[int, int]] = set()

    def validate(self, height: int, width: int) -> None:
        """Check once per ``(H, W)`` that the image is large enough for ``levels``."""
        if (height, width) not in self._checked_sizes:
            check_resolution(height, width, self.levels, self.wave)
            self._checked_sizes.add((height, width))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Split ``x`` (N x C x H x W, any float dtype) into ``(ll, highs)``, float32 (float64
        for a float64 ``x``).

        ``ll``: N x C x h x w; ``highs[j]``: N x C x 3 x h_j x w_j, ``highs[0]`` the finest level,
        the 3 being (LH, HL, HH). Autocast is disabled inside, so this is safe under bf16/fp16.
        The filters are buffers: they move with the module, never to ``x``'s device by themselves.
        """
        if x.dim() != 4:
            raise ValueError(f"Expected an N x C x H x W tensor, got shape {tuple(x.shape)}.")
        self.validate(x.shape[-2], x.shape[-1])
        dtype = torch.promote_types(x.dtype, torch.float32)
        if self.dwt.h0_col.dtype != dtype:
            self.dwt.to(dtype)  # half-precision filters would lose the DWT's accuracy
        with _autocast_disabled(x.device.type):
            ll, highs = self.dwt(x.to(dtype))
        return ll, list(highs)

    def extra_repr(self) -> str:
        return f"wave={self.wave!r}, levels={self.levels}"


def _abs_sum(t: torch.Tensor, per_image: bool) -> torch.Tensor:
    """Sum of ``|t|``: over all elements, or over all but the batch axis (shape N)."""
    return t.abs().flatten(1).sum(dim=1) if per_image else t.abs().sum()


def _normalised_l1(
    diffs: list[torch.Tensor], refs: list[torch.Tensor], per_image: bool
) -> float | torch.Tensor:
    """``sum |diffs| / sum |refs|`` over all given coefficient tensors."""
    num = sum(_abs_sum(d, per_image) for d in diffs)
    den = sum(_abs_sum(r, per_image) for r in refs)
    value = num / den.clamp_min(1e-12)
    return value if per_image else value.item()


@torch.no_grad()
def band_distances(
    images: torch.Tensor,
    references: torch.Tensor,
    wave: str = "haar",
    levels: int = 1,
    per_image: bool = False,
    split: WaveletBandSplit | None = None,
) -> dict[str, float | torch.Tensor]:
    """Per-band normalised L1 distance between images and references (the paper's Figure 1).

    For a band ``B`` (a set of DWT coefficients) the distance is::

        d_B = sum |B(images) - B(references)| / sum |B(references)|

    i.e. the mean absolute error of the band divided by the reference band's mean absolute value
    (0 = identical; 1 = as large as the reference band itself).

    Args:
        images, references: N x C x H x W, same shape, any range (typically [-1, 1]).
        wave, levels: the DWT, as in :class:`WaveletBandSplit`.
        per_image: if True, each value is a tensor of shape (N,) (one distance per image, e.g. to
            average over a data set); otherwise one float pooled over the batch.
        split: a ``WaveletBandSplit`` to reuse across calls (it overrides ``wave``/``levels``).

    Returns:
        ``"LL"`` (the coarsest low band) and ``"LH"``, ``"HL"``, ``"HH"``, each pooled over all
        levels (sums over every level's coefficients in numerator and denominator). For
        ``levels > 1`` also per-level entries ``"LH1"``, ``"HL1"``, ..., ``"HH<levels>"`` with
        level 1 the finest.
    """
    if images.shape != references.shape:
        raise ValueError(
            f"images and references must have the same shape, got {tuple(images.shape)} and "
            f"{tuple(references.shape)}."
        )
    if split is None:
        split = WaveletBandSplit(wave, levels).to(images.device)
    levels = split.levels
    ll_x, highs_x = split(images)
    ll_y, highs_y = split(references)
    out: dict[str, float | torch.Tensor] = {"LL": _normalised_l1([ll_x - ll_y], [ll_y], per_image)}
    for b, name in enumerate(BAND_NAMES):
        diffs = [hx[:, :, b] - hy[:, :, b] for hx, hy in zip(highs_x, highs_y)]
        refs = [hy[:, :, b] for hy in highs_y]
        out[name] = _normalised_l1(diffs, refs, per_image)
        if levels > 1:
            for j, (d, r) in enumerate(zip(diffs, refs), start=1):
                out[f"{name}{j}"] = _normalised_l1([d], [r], per_image)
    return out
