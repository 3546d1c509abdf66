"""Distillation and adversarial losses.

All distillation losses treat the teacher as a fixed target (its tensors are detached) and return
the *unweighted* loss; the caller multiplies by its weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .wavelets import WaveletBandSplit

DISTANCES = ("l1", "l2")
WKD_BANDS = ("high", "low", "all")
GAN_MODES = ("lsgan", "vanilla", "hinge")


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {list(allowed)}.")


def _check_same_shape(student: torch.Tensor, teacher: torch.Tensor, what: str) -> None:
    if student.shape != teacher.shape:
        raise ValueError(
            f"{what}: student and teacher shapes differ: {tuple(student.shape)} vs "
            f"{tuple(teacher.shape)}."
        )


def _distance(x: torch.Tensor, target: torch.Tensor, distance: str) -> torch.Tensor:
    """Mean over all elements of ``|x - target|`` (l1) or ``(x - target)**2`` (l2)."""
    return F.l1_loss(x, target) if distance == "l1" else F.mse_loss(x, target)


class WaveletDistillationLoss(nn.Module):
    """Wavelet knowledge distillation (Zhang et al., CVPR 2022): match DWT bands of two images.

    ``bands="high"`` (the method): ``sum_j mean d(highs_s[j], highs_t[j])`` over levels j, where
    ``highs[j]`` is level j's N x C x 3 x h x w (LH, HL, HH) tensor and the mean runs over all of
    its elements; levels have equal weight and LL never enters. ``"low"``: ``mean d(LL_s, LL_t)``
    only (an ablation). ``"all"``: high + low. ``d`` is ``|a - b|`` (``"l1"``, the paper's text) or
    ``(a - b)**2`` (``"l2"``, the authors' released CycleGAN code).

    Args:
        wave: discrete PyWavelets name (the authors' runs use "haar").
        levels: DWT levels (the authors' runs use 4).
        bands: "high" | "low" | "all".
        distance: "l1" | "l2".
    """

    def __init__(
        self, wave: str = "haar", levels: int = 4, bands: str = "high", distance: str = "l1"
    ) -> None:
        super().__init__()
        _check_choice("bands", bands, WKD_BANDS)
        _check_choice("distance", distance, DISTANCES)
        self.bands = bands
        self.distance = distance
        self.split = WaveletBandSplit(wave=wave, levels=levels)

    def forward(self, student_images: torch.Tensor, teacher_images: torch.Tensor) -> torch.Tensor:
        """Loss (float32 scalar, >= 0) between N x C x H x W images in [-1, 1].

        The teacher images are detached; gradients reach only ``student_images``.
        """
        _check_same_shape(student_images, teacher_images, "WaveletDistillationLoss")
        n = student_images.shape[0]
        # One DWT call for both batches; the teacher half is detached.
        ll, highs = self.split(torch.cat([student_images, teacher_images.detach()]))
        loss = ll.new_zeros(())
        if self.bands in ("high", "all"):
            for h in highs:
                loss = loss + _distance(h[:n], h[n:], self.distance)
        if self.bands in ("low", "all"):
            loss = loss + _distance(ll[:n], ll[n:], self.distance)
        return loss

    def extra_repr(self) -> str:
        return f"bands={self.bands!r}, distance={self.distance!r}"


class OutputDistillationLoss(nn.Module):
    """Output (prediction) KD: mean L1 or L2 between student and detached teacher images."""

    def __init__(self, distance: str = "l1") -> None:
        super().__init__()
        _check_choice("distance", distance, DISTANCES)
        self.distance = distance

    def forward(self, student_images: torch.Tensor, teacher_images: torch.Tensor) -> torch.Tensor:
        """Scalar loss between N x C x H x W images (same shape)."""
        _check_same_shape(student_images, teacher_images, "OutputDistillationLoss")
        return _distance(student_images, teacher_images.detach(), self.distance)


def _module_key(name: str) -> str:
    """``nn.ModuleDict`` keys cannot contain '.', so map 'down.1' -> 'down__1'."""
    return name.replace(".", "__")


class FeatureDistillationLoss(nn.Module):
    """Feature KD: MSE between 1x1-conv-adapted student features and detached teacher features.

    For each layer name ``k``: ``mse(adapter_k(s_k), t_k)`` with ``s_k`` N x Cs x h x w,
    ``t_k`` N x Ct x h x w and ``adapter_k`` a learned ``Conv2d(Cs, Ct, 1)``; the result is the
    mean over layers. The adapters are trainable: give this module's parameters to the student's
    optimizer.

    Args:
        student_channels: layer name -> student channel count (e.g. ``G.feature_channels()``).
        teacher_channels: layer name -> teacher channel count.
        layers: names to distill; each must be in both mappings.
    """

    def __init__(
        self,
        student_channels: Mapping[str, int],
        teacher_channels: Mapping[str, int],
        layers: Sequence[str],
    ) -> None:
        super().__init__()
        if isinstance(layers, str) or len(layers) == 0:
            raise ValueError(f"layers must be a non-empty sequence of names, got {layers!r}.")
        for side, channels in (("student", student_channels), ("teacher", teacher_channels)):
            missing = [k for k in layers if k not in channels]
            if missing:
                raise ValueError(
                    f"Layer(s) {missing} not among the {side}'s features; available: "
                    f"{sorted(channels)}."
                )
        self.layers = list(layers)
        self.adapters = nn.ModuleDict(
            {
                _module_key(k): nn.Conv2d(student_channels[k], teacher_channels[k], kernel_size=1)
                for k in self.layers
            }
        )
        if len(self.adapters) != len(self.layers):
            raise ValueError(f"Layer names collide once '.' is replaced by '__': {self.layers}.")

    def forward(
        self,
        student_features: Mapping[str, torch.Tensor],
        teacher_features: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        """Scalar loss; features are N x C x h x w tensors keyed by layer name."""
        losses = []
        for k in self.layers:
            for side, feats in (("student", student_features), ("teacher", teacher_features)):
                if k not in feats:
                    raise ValueError(
                        f"Layer {k!r} missing from the {side} features; got {sorted(feats)}."
                    )
            adapted = self.adapters[_module_key(k)](student_features[k])
            target = teacher_features[k].detach()
            if adapted.shape[-2:] != target.shape[-2:]:
                raise ValueError(
                    f"Layer {k!r}: student feature is {tuple(adapted.shape[-2:])} spatially but "
                    f"the teacher's is {tuple(target.shape[-2:])}; pick layers at the same "
                    "resolution."
                )
            losses.append(F.mse_loss(adapted, target.to(adapted.dtype)))
        return torch.stack(losses).mean()


class GANLoss(nn.Module):
    """Adversarial loss on raw discriminator outputs (logits / scores), any shape.

    - ``"lsgan"``: ``mean((p - y)**2)`` with y = 1 (real) or 0 (fake).
    - ``"vanilla"``: binary cross-entropy with logits against y = 1 or 0.
    - ``"hinge"``: discriminator ``mean(relu(1 - p))`` (real), ``mean(relu(1 + p))`` (fake);
      generator (``for_discriminator=False``, ``target_is_real=True``) ``-mean(p)``.
    """

    def __init__(self, gan_mode: str = "lsgan") -> None:
        super().__init__()
        _check_choice("gan_mode", gan_mode, GAN_MODES)
        self.gan_mode = gan_mode

    def forward(
        self, prediction: torch.Tensor, target_is_real: bool, for_discriminator: bool = True
    ) -> torch.Tensor:
        """Scalar loss for discriminator outputs ``prediction`` (e.g. N x 1 x h x w)."""
        if self.gan_mode == "hinge":
            return self._hinge(prediction, target_is_real, for_discriminator)
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.gan_mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)

    @staticmethod
    def _hinge(
        prediction: torch.Tensor, target_is_real: bool, for_discriminator: bool
    ) -> torch.Tensor:
        if not for_discriminator:
            if not target_is_real:
                raise ValueError(
                    "Hinge generator loss needs target_is_real=True (the generator wants its "
                    "fakes judged real); got target_is_real=False."
                )
            return -prediction.mean()
        sign = -1.0 if target_is_real else 1.0
        return F.relu(1.0 + sign * prediction).mean()

    def extra_repr(self) -> str:
        return f"gan_mode={self.gan_mode!r}"
