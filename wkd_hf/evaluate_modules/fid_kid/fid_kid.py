"""FID and KID from InceptionV3 pool3 features, as an ``evaluate`` metric."""

import datasets
import evaluate
import torch

from wkd_hf.metrics.fid import feature_statistics, frechet_distance, kid_from_features

_DESCRIPTION = """
Frechet Inception Distance and Kernel Inception Distance between generated and real images, on
the protocol of pix2pix/CycleGAN, GAN Compression and WKD: InceptionV3 pool3 2048-d features with
the TF-ported weights (pt_inception-2015-12-05-6726825d.pth). Inputs are the features (compute
them batched in torch with wkd_hf.metrics.fid.InceptionFeatures), not images.
"""

_KWARGS_DESCRIPTION = """
Args:
    features: one feature vector per image.
    is_real: True for a real image, False for a generated one.
    real_mu, real_sigma (passed to compute, optional): cached real statistics (e.g. from
        wkd_hf.metrics.fid.load_statistics); then real features are only needed for KID.
    kid_subsets (default 100), kid_subset_size (default 1000, capped at the set sizes).
Returns:
    {"fid", "kid_mean", "kid_std", "num_generated", "num_real"} (KID only with real features).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FidKid(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"features": datasets.Sequence(datasets.Value("float32")),
                                        "is_real": datasets.Value("bool")}),
            reference_urls=["https://github.com/mseitzer/pytorch-fid",
                            "https://github.com/toshas/torch-fidelity"])

    def _compute(self, features, is_real, real_mu=None, real_sigma=None, kid_subsets=100,
                 kid_subset_size=1000):
        rows = torch.tensor(features, dtype=torch.float64)
        real = torch.tensor(is_real, dtype=torch.bool)
        fake, reals = rows[~real], rows[real]
        if len(fake) < 2:
            raise ValueError("fid_kid needs at least 2 generated images.")
        if real_mu is None:
            if len(reals) < 2:
                raise ValueError("fid_kid needs real features (is_real=True) or real_mu/real_sigma.")
            real_mu, real_sigma = feature_statistics(reals)
        out = {"fid": frechet_distance(*feature_statistics(fake), real_mu, real_sigma),
               "num_generated": len(fake), "num_real": len(reals)}
        if len(reals) >= 2:
            out["kid_mean"], out["kid_std"] = kid_from_features(
                fake, reals, subsets=kid_subsets, subset_size=kid_subset_size)
        return out
