"""FID and KID on the protocol of pix2pix/CycleGAN, GAN Compression, CAT and the WKD paper.

Features: InceptionV3 pool3 (2048-d) with the TensorFlow-ported weights of the original FID code
(``pt_inception-2015-12-05-6726825d.pth``), computed by torch-fidelity's
``FeatureExtractorInceptionV3`` (the extractor torchmetrics' FID/KID use too): images are
quantised to uint8 (as when saved to PNG), resized to 299x299 with TensorFlow 1.x's bilinear
resize, and fed to the network. FID is the Frechet distance between Gaussians fitted to the two
feature sets (computed here in float64 torch, checked against ``scipy.linalg.sqrtm``); KID is
torch-fidelity's unbiased polynomial-kernel MMD averaged over random subsets.

The FID/KID parts need the ``eval`` extra (torch-fidelity, which needs torchvision)::

    pip install "wkd_hf[eval]"

Weights come from (in this order) an explicit path, the torch hub cache
(``$TORCH_HOME/hub/checkpoints/``, under either name below), or torch-fidelity's download when
online. Offline without them, :class:`InceptionWeightsError` says which file is needed and where.

Real statistics can be written once (``.npz`` with ``mu`` and ``sigma``, GAN Compression's and
pytorch-fid's format, plus the raw ``features`` for KID) and reused.
"""

from __future__ import annotations

import io
import os
import pickle
import stat
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import WKDError
from ..safe_files import write_beside

INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid / GAN Compression
TORCH_FIDELITY_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # same network
WEIGHT_FILE_NAMES = (INCEPTION_WEIGHTS_FILE, TORCH_FIDELITY_WEIGHTS_FILE)
FEATURE_DIM = 2048
EVAL_EXTRA_HINT = "pip install 'wkd_hf[eval]' (torch-fidelity, torchvision, scipy, matplotlib)"


class InceptionWeightsError(WKDError, FileNotFoundError):
    """The InceptionV3 weights cannot be found or fetched (one line says what to do)."""


class EvalExtraMissingError(WKDError, ImportError):
    """A FID/KID dependency (torch-fidelity / torchvision) is not installed."""


def weights_cache_dir() -> Path:
    """Where torch-fidelity's download lands and where a copied file is found: the torch hub
    cache's ``checkpoints/`` (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "WKD_HF_OFFLINE"))


def _missing_weights(reason: str) -> InceptionWeightsError:
    return InceptionWeightsError(
        f"FID/KID need the InceptionV3 weights {INCEPTION_WEIGHTS_FILE} ({reason}): pass "
        f"--inception_weights PATH or copy the file into {weights_cache_dir()}/")


def find_inception_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The weights file to use: ``path`` (must exist), else a copy in the torch hub cache under
    either known name, else None (torch-fidelity will download it when online)."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise InceptionWeightsError(
                f"--inception_weights {path} is not a file; it must be {INCEPTION_WEIGHTS_FILE} "
                f"(pytorch-fid's) or {TORCH_FIDELITY_WEIGHTS_FILE} (torch-fidelity's)")
        return path
    for name in WEIGHT_FILE_NAMES:
        candidate = weights_cache_dir() / name
        if candidate.is_file():
            return candidate
    return None


def _import_extractor():
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception as error:  # ImportError, or torchvision failing to load its operators
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise EvalExtraMissingError(f"FID/KID need torch-fidelity and a torchvision that matches "
                                    f"torch ({first}): {EVAL_EXTRA_HINT}") from None
    return FeatureExtractorInceptionV3


def check_fid_available(weights: str | os.PathLike | None = None) -> Path | None:
    """Raise (one line) unless FID/KID can run: the eval extra installed, and the weights file
    given, cached, or downloadable (not offline). Returns the weights path (None: download)."""
    _import_extractor()
    path = find_inception_weights(weights)
    if path is None and _offline():
        raise _missing_weights("offline, and not in the torch hub cache")
    return path


def load_inception_state(path: str | os.PathLike) -> dict[str, Tensor]:
    """The weights file's state dict, read with ``torch.load(weights_only=True)``: tensors only,
    so a pickle carrying code is refused and never run (torch-fidelity itself loads with
    ``weights_only=False``). One-line :class:`InceptionWeightsError` for anything else."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise InceptionWeightsError(f"{path} is not a regular file")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except InceptionWeightsError:
        raise
    except Exception as error:  # EOFError (empty), RuntimeError (not a torch file), OSError ...
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        code = next((line for line in lines if "GLOBAL" in line), None)
        if isinstance(error, pickle.UnpicklingError) and code:
            raise InceptionWeightsError(
                f"refusing to load {path}: it needs code to load and was not run ({code[:200]}); "
                f"use {INCEPTION_WEIGHTS_FILE} (pytorch-fid's) or {TORCH_FIDELITY_WEIGHTS_FILE}"
            ) from None
        first = next((line for line in lines if line.startswith("Unsupported")),
                     (lines or [type(error).__name__])[0])
        raise InceptionWeightsError(
            f"{path} is not InceptionV3 FID weights ({type(error).__name__}: {first[:200]}); "
            f"use {INCEPTION_WEIGHTS_FILE}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InceptionWeightsError(f"{path} is not InceptionV3 FID weights (not a state dict "
                                    f"of tensors); use {INCEPTION_WEIGHTS_FILE}")
    return state


def _download_inception_state() -> dict[str, Tensor]:
    """torch-fidelity's download (into the torch hub cache), read weights-only."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    try:
        return torch.hub.load_state_dict_from_url(URL_INCEPTION_V3, map_location="cpu",
                                                  progress=False, weights_only=True)
    except pickle.UnpicklingError as error:
        raise InceptionWeightsError(f"the downloaded InceptionV3 weights are not a plain tensor "
                                    f"file ({str(error)[:200]})") from None


def _as_buffer(state: dict[str, Tensor]) -> io.BytesIO:
    """A state dict we read weights-only, re-serialised in memory for torch-fidelity's
    ``torch.load`` (it then reads only what we wrote, never the file on disk)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


class InceptionFeatures(nn.Module):
    """Images in [-1, 1] (N x 3 x H x W float) -> N x 2048 pool3 features (float64).

    The images are quantised to uint8 first, as when they are written to PNG and read back (the
    FID protocol of pix2pix / GAN Compression evaluates saved images).
    """

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        extractor_class = _import_extractor()
        path = check_fid_available(weights)
        try:
            state = _download_inception_state() if path is None else load_inception_state(path)
        except (OSError, ConnectionError) as error:  # the download failed
            if isinstance(error, InceptionWeightsError):
                raise
            raise _missing_weights(f"the download failed: {error}") from None
        try:
            self.extractor = extractor_class("inception-v3-compat", [str(FEATURE_DIM)],
                                             feature_extractor_weights_path=_as_buffer(state))
        except (RuntimeError, KeyError, ValueError) as error:
            first = (str(error).splitlines() or [""])[0]
            raise InceptionWeightsError(
                f"{path} is not InceptionV3 FID weights ({first}); use {INCEPTION_WEIGHTS_FILE}"
            ) from None
        self.weights_path = None if path is None else str(path)
        self.eval()

    @staticmethod
    def to_uint8(images: Tensor) -> Tensor:
        """[-1, 1] floats -> uint8 in [0, 255] (``tensor2im``: ``(x + 1) / 2 * 255``, rounded)."""
        return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"Expected N x 3 x H x W images, got {tuple(images.shape)}.")
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        if images.dtype != torch.uint8:
            images = self.to_uint8(images)
        device = next(self.extractor.parameters()).device
        (features,) = self.extractor(images.to(device))
        return features.double().cpu()


# ----------------------------------------------------------------------------- statistics
def feature_statistics(features: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """(mu, sigma) of N x D features in float64; sigma is ``np.cov(rowvar=False)`` (ddof 1)."""
    x = torch.as_tensor(features, dtype=torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"Need at least 2 feature vectors (N x D), got {tuple(x.shape)}.")
    mu = x.mean(0)
    centred = x - mu
    sigma = centred.T @ centred / (x.shape[0] - 1)
    return mu, sigma


def frechet_distance(mu1: Tensor | np.ndarray, sigma1: Tensor | np.ndarray,
                     mu2: Tensor | np.ndarray, sigma2: Tensor | np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, in float64.

    ``tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2))`` with ``A = S1^(1/2)``: two symmetric
    eigendecompositions (``torch.linalg.eigh``), no complex arithmetic; eigenvalues below zero
    (round-off) count as zero.
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64).flatten() for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"Statistics do not match: mu {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
                         f"sigma {tuple(s1.shape)} / {tuple(s2.shape)}.")
    if not all(torch.isfinite(t).all() for t in (mu1, mu2, s1, s2)):
        raise ValueError("FID statistics hold NaN or infinite values.")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    values, vectors = torch.linalg.eigh(s1)
    root1 = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    middle = root1 @ s2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    distance = (mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * trace_sqrt
    return max(float(distance), 0.0)  # >= 0 in exact arithmetic; round-off can dip below


def fid_from_features(features_1: Tensor, features_2: Tensor) -> float:
    return frechet_distance(*feature_statistics(features_1), *feature_statistics(features_2))


def kid_from_features(features_1: Tensor, features_2: Tensor, subsets: int = 100,
                      subset_size: int = 1000, seed: int = 2020) -> tuple[float, float]:
    """(mean, std) of torch-fidelity's unbiased KID (polynomial kernel ``(x.y / d + 1)^3``) over
    ``subsets`` random subsets of ``min(subset_size, n1, n2)`` rows of each set."""
    try:
        from torch_fidelity.metric_kid import (
            KEY_METRIC_KID_MEAN,
            KEY_METRIC_KID_STD,
            kid_features_to_metric,
        )
    except Exception as error:
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise EvalExtraMissingError(f"KID needs torch-fidelity ({first}): "
                                    f"{EVAL_EXTRA_HINT}") from None
    x = torch.as_tensor(features_1, dtype=torch.float64)
    y = torch.as_tensor(features_2, dtype=torch.float64)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError(f"KID needs at least 2 images per set, got {len(x)} and {len(y)}.")
    out = kid_features_to_metric(x, y, kid_subsets=subsets, kid_subset_size=size,
                                 kid_degree=3, kid_gamma=None, kid_coef0=1, rng_seed=seed,
                                 verbose=False)
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


def save_statistics(path: str | os.PathLike, features: Tensor,
                    extra: dict | None = None) -> tuple[Tensor, Tensor]:
    """Write ``mu`` and ``sigma`` (GAN Compression's / pytorch-fid's ``.npz`` keys) and the raw
    ``features`` (float32, for KID) of a real image set; returns (mu, sigma)."""
    mu, sigma = feature_statistics(features)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    arrays = {"mu": mu.numpy(), "sigma": sigma.numpy(),
              "features": torch.as_tensor(features).float().numpy()}
    arrays.update({k: np.asarray(v) for k, v in (extra or {}).items()})
    with write_beside(path, "real statistics") as partial:  # never through a link or FIFO
        with open(partial, "wb") as handle:  # np.savez would append .npz to another suffix
            np.savez(handle, **arrays)
    return mu, sigma


def load_statistics(path: str | os.PathLike) -> dict[str, Tensor]:
    """``{"mu", "sigma"[, "features"]}`` from a ``.npz`` (ours, GAN Compression's or
    pytorch-fid's: any file with ``mu`` and ``sigma``)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "mu" not in data or "sigma" not in data:
                raise ValueError(f"{path} has no 'mu' and 'sigma' arrays (keys: {list(data)}).")
            out = {"mu": torch.from_numpy(data["mu"]).double(),
                   "sigma": torch.from_numpy(data["sigma"]).double()}
            if "features" in data:
                out["features"] = torch.from_numpy(data["features"]).double()
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read real statistics {path}: {error}") from None
    if out["mu"].dim() != 1 or out["sigma"].shape != (len(out["mu"]),) * 2:
        raise ValueError(f"{path}: mu {tuple(out['mu'].shape)} and sigma "
                         f"{tuple(out['sigma'].shape)} do not fit together.")
    bad = [key for key, value in out.items() if not torch.isfinite(value).all()]
    if bad:
        raise ValueError(f"{path}: {', '.join(bad)} hold NaN or infinite values; compute the "
                         "real statistics again.")
    return out


@torch.no_grad()
def extract_features(extractor: InceptionFeatures, batches: Iterable[Tensor]) -> Tensor:
    """Concatenated features of image batches (each N x 3 x H x W in [-1, 1])."""
    rows = [extractor(batch) for batch in batches]
    if not rows:
        raise ValueError("No images to compute features of.")
    return torch.cat(rows)
