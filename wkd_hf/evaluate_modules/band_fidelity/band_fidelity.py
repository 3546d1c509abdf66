"""Per-band wavelet fidelity (Zhang et al., CVPR 2022, Figure 1) as an ``evaluate`` metric."""

import datasets
import evaluate

_DESCRIPTION = """
Mean per-image normalised L1 distance of each DWT band (LL, and LH/HL/HH per level) between
generated images and references (real targets, or a teacher's outputs):
d_B = sum |B(image) - B(reference)| / sum |B(reference)|. 0 = identical band; 1 = an error as large
as the reference band itself. Inputs are the per-image band distances (scalars), computed batched
in torch by wkd_hf.metrics.bands.BandFidelity (its per_image() rows and names).
"""

_KWARGS_DESCRIPTION = """
Args:
    distances: one list per image: that image's distance for each band, in the order of
        `band_names`.
    band_names (passed to compute): the band of each column, e.g. ["LL", "LH", "HL", "HH"].
Returns:
    {band: mean distance over the images} and "num_images".
Example:
    >>> import evaluate
    >>> from wkd_hf.evaluate_modules import module_path
    >>> metric = evaluate.load(module_path("band_fidelity"))
    >>> metric.compute(distances=[[0.1, 0.5], [0.3, 0.7]], band_names=["LL", "HH"])
    {'LL': 0.2, 'HH': 0.6, 'num_images': 2}
"""

_CITATION = """
@inproceedings{zhang2022wavelet,
  title={Wavelet Knowledge Distillation: Towards Efficient Image-to-Image Translation},
  author={Zhang, Linfeng and Chen, Xin and Tu, Xiaobing and Wan, Pengfei and Xu, Ning and Ma, Kaisheng},
  booktitle={CVPR}, year={2022}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BandFidelity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"distances": datasets.Sequence(datasets.Value("float64"))}),
            reference_urls=["https://arxiv.org/abs/2203.06321"])

    def _compute(self, distances, band_names=None):
        if not distances:
            raise ValueError("band_fidelity got no images.")
        width = len(distances[0])
        names = list(band_names) if band_names is not None else [f"band_{i}" for i in range(width)]
        if len(names) != width or any(len(row) != width for row in distances):
            raise ValueError(f"Every row needs one distance per band ({names}).")
        out = {name: sum(row[i] for row in distances) / len(distances)
               for i, name in enumerate(names)}
        out["num_images"] = len(distances)
        return out
