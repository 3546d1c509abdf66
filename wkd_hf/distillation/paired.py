"""pix2pix's objective, with a teacher: :class:`PairedDistiller` (modes ``paired`` and
``teacher_target``)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..losses import FeatureDistillationLoss, GANLoss
from .base import (
    GeneratorOutputs,
    _DistillationTerms,
    _Distiller,
    _eval_forward,
    _run_generator,
    _set_requires_grad,
    _unwrap,
    freeze_teacher,
)
from .config import WKDConfig


class PairedDistiller(_Distiller):
    """pix2pix-style distillation (``paired`` and ``teacher_target`` modes).

    Update order: pix2pix's. The discriminator is updated first, then the student against the
    updated discriminator (``update_order == ("discriminator", "generator")``).

    Objective of the student G (D the student's, shrunk, discriminator)::

        lambda_gan * GAN(D(G(x))) + lambda_recon * L1(G(x), y) + lambda_wkd * WKD(G(x), T(x))
        (+ kd_output_weight * L1(G(x), T(x)) + kd_feature_weight * FeatureKD)

    where y is the dataset target (``paired``) or T(x) (``teacher_target``). Batches are dicts with
    ``source`` (and ``target`` in paired mode), N x C x H x W in [-1, 1].

    Args:
        student: the generator being trained (possibly DDP-wrapped).
        discriminator: the student's discriminator (possibly DDP-wrapped).
        config: method settings.
        teacher: frozen teacher generator, or None to train from the data alone.
        feature_kd: adapters from :func:`build_feature_kd` when feature KD is on.
    """

    def __init__(self, student: nn.Module, discriminator: nn.Module, config: WKDConfig,
                 teacher: nn.Module | None = None,
                 feature_kd: FeatureDistillationLoss | None = None):
        if config.mode == "cycle":
            raise ValueError("mode='cycle' needs CycleDistiller, not PairedDistiller.")
        if config.uses_teacher and teacher is None:
            raise ValueError(f"The settings {config} use a teacher, but teacher=None.")
        super().__init__()
        self.student, self.discriminator, self.config = student, discriminator, config
        self.teacher = freeze_teacher(teacher) if teacher is not None else None
        self.feature_kd = feature_kd
        self.gan_loss = GANLoss(config.gan_mode)
        self.terms = _DistillationTerms(config)
        self.pools = {}

    def _teachers(self) -> list[nn.Module]:
        return [self.teacher] if self.teacher is not None else []

    def _discriminate(self, discriminator: nn.Module, source: Tensor, image: Tensor) -> Tensor:
        if self.config.conditional_discriminator:
            image = torch.cat([source, image], dim=1)
        return discriminator(image)

    def _target(self, batch: Mapping[str, Tensor], outputs: GeneratorOutputs) -> Tensor:
        if self.config.mode == "teacher_target":
            return outputs.teacher_fakes["fake"]
        return batch["target"]

    def generate(self, batch: Mapping[str, Tensor]) -> GeneratorOutputs:
        """Student forward (with grad) and teacher forward (once, no grad)."""
        with_features = self.feature_kd is not None
        fake, student_features = _run_generator(self.student, batch["source"], with_features)
        outputs = GeneratorOutputs(fakes={"fake": fake})
        if self.teacher is not None and self.config.uses_teacher:
            with torch.no_grad():
                teacher_fake, teacher_features = _run_generator(
                    self.teacher, batch["source"], with_features)
            outputs.teacher_fakes["fake"] = teacher_fake
            outputs.student_features["fake"] = student_features
            outputs.teacher_features["fake"] = teacher_features
        return outputs

    def preview(self, batch: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
        """Columns of a validation grid, ``{"samples": {label: N x C x H x W}}``, in eval mode."""
        columns = {"input": batch["source"]}
        if self.teacher is not None:
            columns["teacher"] = _eval_forward(self.teacher, batch["source"])
        columns["student" if self.teacher is not None else "output"] = _eval_forward(
            _unwrap(self.student), batch["source"])
        if "target" in batch:
            columns["target"] = batch["target"]
        return {"samples": columns}

    def discriminator_loss(self, batch: Mapping[str, Tensor], outputs: GeneratorOutputs
                           ) -> tuple[Tensor, dict[str, Tensor]]:
        """0.5 * (GAN(D(real), real) + GAN(D(fake.detach()), fake))."""
        _set_requires_grad(self.discriminator, True)
        source = batch["source"]
        real = self._target(batch, outputs)
        loss_real = self.gan_loss(self._discriminate(self.discriminator, source, real), True)
        loss_fake = self.gan_loss(
            self._discriminate(self.discriminator, source, outputs.fakes["fake"].detach()), False)
        loss = 0.5 * (loss_real + loss_fake)
        return loss, {"d_real": loss_real.detach(), "d_fake": loss_fake.detach()}

    def generator_loss(self, batch: Mapping[str, Tensor], outputs: GeneratorOutputs
                       ) -> tuple[Tensor, dict[str, Tensor]]:
        """The student's objective (see the class docstring) and its unweighted parts."""
        discriminator = _unwrap(self.discriminator)
        _set_requires_grad(discriminator, False)
        fake = outputs.fakes["fake"]
        gan = self.gan_loss(self._discriminate(discriminator, batch["source"], fake), True,
                            for_discriminator=False)
        recon = torch.nn.functional.l1_loss(fake, self._target(batch, outputs))
        teacher_total, logs = self.terms(
            "", fake, outputs.teacher_fakes.get("fake"), self.feature_kd,
            outputs.student_features.get("fake"), outputs.teacher_features.get("fake"))
        loss = self.config.lambda_gan * gan + self.config.lambda_recon * recon + teacher_total
        logs = {"g_gan": gan.detach(), "g_recon": recon.detach(),
                **{k: v.detach() for k, v in logs.items()}}
        return loss, logs
