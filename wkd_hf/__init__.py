"""Wavelet Knowledge Distillation for image-to-image GANs, on Accelerate and Diffusers.

Public API (imported lazily, so ``import wkd_hf`` stays cheap):

- networks: ``ResnetGenerator``, ``UnetGenerator``, ``SubMobileResnetGenerator`` (GAN Compression's
  compressed students), ``PatchDiscriminator``, ``load_pretrained_model``
- method: ``WaveletDistillationLoss``, ``OutputDistillationLoss``, ``FeatureDistillationLoss``,
  ``GANLoss``, ``WKDConfig``, ``PairedDistiller``, ``CycleDistiller``
- import/measure: ``convert_pix2pix_checkpoint``, ``profile_model``, ``pick_student``
- inference/deployment: ``ImageTranslationPipeline``, ``export_onnx``, ``OnnxGenerator``,
  ``OpenVinoGenerator``, ``quantize_int8``
- evaluate: ``evaluate_paired``, ``BandFidelity``, ``InceptionFeatures``, ``frechet_distance``
  (FID/KID need the ``eval`` extra; ``training_scripts/evaluate.py`` runs them all)

To add a new generator family: write ``wkd_hf/models/<family>.py`` with one ``ModelMixin,
ConfigMixin`` class whose ``forward(x, return_features=False)`` and ``feature_channels()`` follow
``ResnetGenerator``, register it in ``wkd_hf/models/__init__.py`` and add it to ``_LAZY`` below.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ResnetGenerator": "wkd_hf.models",
    "UnetGenerator": "wkd_hf.models",
    "SubMobileResnetGenerator": "wkd_hf.models",
    "PatchDiscriminator": "wkd_hf.models",
    "load_pretrained_model": "wkd_hf.models",
    "WaveletBandSplit": "wkd_hf.wavelets",
    "WaveletDistillationLoss": "wkd_hf.losses",
    "OutputDistillationLoss": "wkd_hf.losses",
    "FeatureDistillationLoss": "wkd_hf.losses",
    "GANLoss": "wkd_hf.losses",
    "WKDConfig": "wkd_hf.distillation",
    "PairedDistiller": "wkd_hf.distillation",
    "CycleDistiller": "wkd_hf.distillation",
    "convert_pix2pix_checkpoint": "wkd_hf.conversion",
    "profile_model": "wkd_hf.metrics.efficiency",
    "EfficiencyProfile": "wkd_hf.metrics.efficiency",
    "evaluate_paired": "wkd_hf.metrics.paired",
    "BandFidelity": "wkd_hf.metrics.bands",
    "InceptionFeatures": "wkd_hf.metrics.fid",
    "frechet_distance": "wkd_hf.metrics.fid",
    "ImageTranslationPipeline": "wkd_hf.pipeline",
    "ImageTranslationPipelineOutput": "wkd_hf.pipeline",
    "export_onnx": "wkd_hf.onnx_export",
    "OnnxGenerator": "wkd_hf.onnx_export",
    "OpenVinoGenerator": "wkd_hf.openvino_backend",
    "quantize_int8": "wkd_hf.quantize",
    "pick_student": "wkd_hf.budget",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'wkd_hf' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return __all__
