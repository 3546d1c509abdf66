"""What both distillers share: the generators' outputs, the distillation terms (wavelet,
output, feature KD), frozen teachers, and the ``nn.Module`` base whose ``train()`` never unfreezes
a teacher."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..losses import (
    FeatureDistillationLoss,
    OutputDistillationLoss,
    WaveletDistillationLoss,
)
from .config import DISCRIMINATOR_FIRST, WKDConfig
from .pool import ImagePool


@dataclass
class GeneratorOutputs:
    """What one generator pass produced for a batch (all N x C x H x W in [-1, 1])."""

    fakes: dict[str, Tensor]
    teacher_fakes: dict[str, Tensor] = field(default_factory=dict)
    student_features: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    teacher_features: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    extra: dict[str, Tensor] = field(default_factory=dict)


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside ``torch.compile`` and ``DistributedDataParallel`` wrappers (or the
    module itself)."""
    module = getattr(module, "_orig_mod", module)  # accelerate compiles after wrapping in DDP
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


def freeze_teacher(teacher: nn.Module) -> nn.Module:
    """Put a teacher in eval mode with no gradients; returns it."""
    teacher.eval()
    _set_requires_grad(teacher, False)
    return teacher


def build_feature_kd(student: nn.Module, teacher: nn.Module, config: WKDConfig
                     ) -> FeatureDistillationLoss | None:
    """1x1 adapters for feature KD between ``student`` and ``teacher`` (None when disabled).

    Raises ValueError when a requested layer is missing from either network.
    """
    if config.kd_feature_weight <= 0:
        return None
    student, teacher = _unwrap(student), _unwrap(teacher)
    layers = list(config.kd_feature_layers) or list(student.default_feature_layers())
    return FeatureDistillationLoss(student.feature_channels(), teacher.feature_channels(), layers)


class _DistillationTerms(nn.Module):
    """The teacher-facing terms shared by both distillers: WKD, output KD, feature KD."""

    def __init__(self, config: WKDConfig):
        super().__init__()
        self.config = config
        self.wkd = None
        if config.bands != "none" and config.lambda_wkd > 0:
            self.wkd = WaveletDistillationLoss(config.wave, config.levels, config.bands,
                                               config.distance)
        self.output_kd = OutputDistillationLoss("l1") if config.kd_output_weight > 0 else None

    def forward(self, prefix: str, student: Tensor, teacher: Tensor | None,
                feature_kd: FeatureDistillationLoss | None,
                student_features: Mapping[str, Tensor] | None,
                teacher_features: Mapping[str, Tensor] | None) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted sum of the enabled teacher terms for one direction, and its parts."""
        total = student.new_zeros(())
        logs: dict[str, Tensor] = {}
        if teacher is None:
            return total, logs
        if self.wkd is not None:
            logs[f"{prefix}wkd"] = self.wkd(student, teacher)
            total = total + self.config.lambda_wkd * logs[f"{prefix}wkd"]
        if self.output_kd is not None:
            logs[f"{prefix}kd_output"] = self.output_kd(student, teacher)
            total = total + self.config.kd_output_weight * logs[f"{prefix}kd_output"]
        if feature_kd is not None:
            logs[f"{prefix}kd_feature"] = feature_kd(student_features, teacher_features)
            total = total + self.config.kd_feature_weight * logs[f"{prefix}kd_feature"]
        return total, logs


@torch.no_grad()
def _eval_forward(generator: nn.Module, x: Tensor) -> Tensor:
    """Generator output in eval mode (pass unwrapped modules: previews run on one rank only) (batch-norm running statistics), restoring the mode."""
    was_training = generator.training
    generator.eval()
    try:
        return generator(x)
    finally:
        generator.train(was_training)


def _run_generator(generator: nn.Module, x: Tensor, with_features: bool
                   ) -> tuple[Tensor, dict[str, Tensor] | None]:
    if with_features:
        return generator(x, return_features=True)
    return generator(x), None


class _Distiller(nn.Module):
    """What both distillers share: the teacher(s) stay frozen and in eval mode."""

    update_order: tuple[str, str] = DISCRIMINATOR_FIRST
    pools: dict[str, ImagePool]

    def train(self, mode: bool = True) -> _Distiller:
        super().train(mode)
        for teacher in self._teachers():
            teacher.eval()
        return self

    def _teachers(self) -> list[nn.Module]:
        raise NotImplementedError
