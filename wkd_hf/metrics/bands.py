"""Per-band wavelet fidelity over a data set (the paper's Figure 1) and its figure.

:func:`wkd_hf.wavelets.band_distances` gives, per image, the normalised L1 distance of each DWT
band (``LL`` and, per level ``j`` (1 = finest), ``LHj``/``HLj``/``HHj``, plus ``LH``/``HL``/``HH``
pooled over the levels)::

    d_B = sum |B(image) - B(reference)| / sum |B(reference)|

:class:`BandFidelity` averages it over batches (generated vs real targets for paired data, or a
student vs its teacher on the same inputs); :class:`BandEnergy` compares the mean band magnitude
of two unaligned image sets (unpaired data, where no pixel-wise reference exists);
:func:`plot_band_fidelity` draws several generators band by band.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ..wavelets import BAND_NAMES, WaveletBandSplit, band_distances


def band_order(levels: int) -> list[str]:
    """Band names in plotting order: ``LL``, then ``LH1 HL1 HH1 ... LHJ HLJ HHJ`` (finest first),
    or ``LL LH HL HH`` for one level."""
    if levels == 1:
        return ["LL", *BAND_NAMES]
    return ["LL", *(f"{name}{j}" for j in range(1, levels + 1) for name in BAND_NAMES)]


class BandFidelity:
    """Mean per-image normalised L1 per band between images and aligned references.

    ``update(images, references)`` takes N x C x H x W batches (any range, e.g. [-1, 1]);
    ``compute()`` returns ``{band: mean over all images}`` in :func:`band_order` order (plus the
    pooled ``LH``/``HL``/``HH`` for ``levels > 1``). ``per_image()`` gives the N x bands matrix
    (e.g. for the ``band_fidelity`` evaluate module).
    """

    def __init__(self, levels: int = 3, wave: str = "haar", device: torch.device | str = "cpu"):
        self.split = WaveletBandSplit(wave, levels).to(device)
        self.levels = levels
        self.names = band_order(levels) + ([*BAND_NAMES] if levels > 1 else [])
        self._rows: list[Tensor] = []

    @torch.no_grad()
    def update(self, images: Tensor, references: Tensor) -> None:
        values = band_distances(images.float(), references.float(), per_image=True,
                                split=self.split)
        self._rows.append(torch.stack([values[name].double().cpu() for name in self.names], 1))

    def per_image(self) -> Tensor:
        if not self._rows:
            raise ValueError("BandFidelity got no images.")
        return torch.cat(self._rows)

    def compute(self) -> dict[str, float]:
        means = self.per_image().mean(0)
        return {name: float(value) for name, value in zip(self.names, means)}


class BandEnergy:
    """Relative gap in mean band magnitude between two unaligned image sets (unpaired data)::

        g_B = | mean|B(images)| - mean|B(references)| | / mean|B(references)|

    0 when the generated images carry as much detail in band B as the real ones; a small GAN that
    blurs shows a gap in the high bands. Sets may differ in size.
    """

    def __init__(self, levels: int = 3, wave: str = "haar", device: torch.device | str = "cpu"):
        self.split = WaveletBandSplit(wave, levels).to(device)
        self.levels = levels
        self.names = band_order(levels)
        self._sums = {side: torch.zeros(len(self.names), dtype=torch.float64) for side in "xy"}
        self._counts = {side: torch.zeros(len(self.names), dtype=torch.float64) for side in "xy"}

    @torch.no_grad()
    def _add(self, side: str, images: Tensor) -> None:
        ll, highs = self.split(images.float())
        bands = {"LL": ll}
        for j, high in enumerate(highs, start=1):
            for b, name in enumerate(BAND_NAMES):
                bands[f"{name}{j}" if self.levels > 1 else name] = high[:, :, b]
        for i, name in enumerate(self.names):
            self._sums[side][i] += float(bands[name].abs().sum())
            self._counts[side][i] += bands[name].numel()

    def update(self, images: Tensor | None = None, references: Tensor | None = None) -> None:
        if images is not None:
            self._add("x", images)
        if references is not None:
            self._add("y", references)

    def compute(self) -> dict[str, float]:
        if not (self._counts["x"].all() and self._counts["y"].all()):
            raise ValueError("BandEnergy needs images on both sides.")
        mx, my = (self._sums[s] / self._counts[s] for s in "xy")
        gap = (mx - my).abs() / my.clamp_min(1e-12)
        return {name: float(value) for name, value in zip(self.names, gap)}


def plot_band_fidelity(panels: Mapping[str, Mapping[str, Mapping[str, float]]],
                       path: str, title: str = "Per-band wavelet fidelity") -> str:
    """Grouped bar chart: one panel per comparison (e.g. ``"vs real targets"``, ``"vs teacher"``),
    one group per band, one bar per generator. ``panels[panel][generator][band] = distance``.

    Needs matplotlib (the ``eval`` extra); returns ``path``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("The band figure needs matplotlib: pip install 'wkd_hf[eval]'.") from error
    panels = {k: v for k, v in panels.items() if v}
    if not panels:
        raise ValueError("plot_band_fidelity got nothing to plot.")
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 3.6 * len(panels)), squeeze=False)
    for ax, (panel, models) in zip(axes[:, 0], panels.items()):
        bands = [b for b in next(iter(models.values())) if b not in ("LH", "HL", "HH")
                 or len(next(iter(models.values()))) <= 4]
        width = 0.8 / len(models)
        for i, (name, values) in enumerate(models.items()):
            xs = [k + (i - (len(models) - 1) / 2) * width for k in range(len(bands))]
            ax.bar(xs, [values.get(b, float("nan")) for b in bands], width, label=name)
        ax.set_xticks(range(len(bands)), bands)
        ax.set_ylabel("normalised L1 (lower is better)")
        ax.set_title(panel)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    axes[-1, 0].set_xlabel("wavelet band (level 1 = finest)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def band_table(values: Mapping[str, Mapping[str, float]], bands: Sequence[str]) -> str:
    """Markdown table: one row per generator, one column per band."""
    lines = ["| model | " + " | ".join(bands) + " |", "|---|" + "---|" * len(bands)]
    for name, row in values.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[b]:.4f}" if b in row else "-"
                                                   for b in bands) + " |")
    return "\n".join(lines)
