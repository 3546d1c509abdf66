"""A randomly initialised InceptionV3 FID extractor saved as a weights file: the real weights
(pt_inception-2015-12-05-6726825d.pth) cannot be downloaded here, but every step of the FID/KID
path (loading a weights file, uint8 quantisation, TF resize, pool3 features) runs the same."""

from pathlib import Path

import torch


def save_random_inception_weights(path: Path, seed: int = 0) -> Path:
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    cls = tf_inception.FeatureExtractorInceptionV3
    original = cls.load_state_dict
    cls.load_state_dict = lambda self, state_dict, *a, **k: None  # no download, no weights
    saved_loader = tf_inception.load_state_dict_from_url
    tf_inception.load_state_dict_from_url = lambda *a, **k: {}
    try:
        torch.manual_seed(seed)
        model = cls("inception-v3-compat", ["2048"])
        for module in model.modules():  # keep the activations' scale through ~100 layers
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    finally:
        cls.load_state_dict = original
        tf_inception.load_state_dict_from_url = saved_loader
    torch.save(model.state_dict(), path)
    return path
