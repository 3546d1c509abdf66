"""CycleGAN's objective, with teachers: :class:`CycleDistiller` (mode ``cycle``)."""

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
from .config import GENERATOR_FIRST, WKDConfig
from .pool import ImagePool


class CycleDistiller(_Distiller):
    """The paper's unpaired distillation: CycleGAN's full objective for two students, plus the
    teacher terms (WKD, optional output/feature KD) on each direction against its teacher.

    Update order: CycleGAN's and the WKD authors'. Both students are updated first with the
    discriminators frozen, then both discriminators on pooled (detached) fakes
    (``update_order == ("generator", "discriminator")``).

    Batches are dicts with ``A`` and ``B`` (N x C x H x W in [-1, 1], unpaired). For each
    direction (``a2b``: G_A maps A -> B and is judged by D_B)::

        lambda_gan * GAN(D_B(G_A(a))) + lambda_cycle * L1(G_B(G_A(a)), a)
        + lambda_cycle * lambda_identity * L1(G_A(b), b) + lambda_wkd * WKD(G_A(a), T_A(a))

    Args:
        students: ``{"a2b": G_A, "b2a": G_B}``.
        discriminators: ``{"a2b": D_B, "b2a": D_A}`` (the one judging that direction's output).
        config: method settings (``mode="cycle"``).
        teachers: ``{"a2b": T_A, "b2a": T_B}``, or None to train CycleGAN from the data alone.
        feature_kd: per direction, adapters from :func:`build_feature_kd`.
    """

    DIRECTIONS = {"a2b": ("A", "B"), "b2a": ("B", "A")}
    update_order = GENERATOR_FIRST

    def __init__(self, students: Mapping[str, nn.Module], discriminators: Mapping[str, nn.Module],
                 config: WKDConfig, teachers: Mapping[str, nn.Module] | None = None,
                 feature_kd: Mapping[str, FeatureDistillationLoss] | None = None):
        if config.mode != "cycle":
            raise ValueError(f"CycleDistiller needs mode='cycle', got {config.mode!r}.")
        if config.uses_teacher and teachers is None:
            raise ValueError(f"The settings {config} use teachers, but teachers=None.")
        super().__init__()
        self.config = config
        self.students, self.discriminators = nn.ModuleDict(students), nn.ModuleDict(discriminators)
        self.teachers = (nn.ModuleDict({k: freeze_teacher(v) for k, v in teachers.items()})
                         if teachers is not None else None)
        self.feature_kd = nn.ModuleDict(feature_kd or {})
        self.gan_loss = GANLoss(config.gan_mode)
        self.terms = _DistillationTerms(config)
        base_seed = torch.initial_seed() % 2**62
        self.pools = {name: ImagePool(config.pool_size, seed=base_seed + i)
                      for i, name in enumerate(self.DIRECTIONS)}

    def _teachers(self) -> list[nn.Module]:
        return list(self.teachers.values()) if self.teachers is not None else []

    def generate(self, batch: Mapping[str, Tensor]) -> GeneratorOutputs:
        """Both students on their domain (with grad), both teachers once (no grad)."""
        outputs = GeneratorOutputs(fakes={})
        for name, (src, _) in self.DIRECTIONS.items():
            with_features = name in self.feature_kd
            fake, features = _run_generator(self.students[name], batch[src], with_features)
            outputs.fakes[name] = fake
            if self.teachers is not None and self.config.uses_teacher:
                with torch.no_grad():
                    teacher_fake, teacher_features = _run_generator(
                        self.teachers[name], batch[src], with_features)
                outputs.teacher_fakes[name] = teacher_fake
                outputs.student_features[name] = features
                outputs.teacher_features[name] = teacher_features
        return outputs

    def preview(self, batch: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
        """One grid per direction, ``{"a2b": {label: N x C x H x W}, "b2a": ...}``, in eval mode."""
        grids = {}
        for name, (src, dst) in self.DIRECTIONS.items():
            columns = {f"input {src}": batch[src]}
            if self.teachers is not None:
                columns["teacher"] = _eval_forward(self.teachers[name], batch[src])
            label = "student" if self.teachers is not None else "output"
            columns[f"{label} {src}->{dst}"] = _eval_forward(_unwrap(self.students[name]),
                                                             batch[src])
            grids[name] = columns
        return grids

    def discriminator_loss(self, batch: Mapping[str, Tensor], outputs: GeneratorOutputs
                           ) -> tuple[Tensor, dict[str, Tensor]]:
        """Sum over both discriminators of 0.5 * (GAN(real) + GAN(pooled fake))."""
        total = batch["A"].new_zeros(())
        logs: dict[str, Tensor] = {}
        for name, (_, dst) in self.DIRECTIONS.items():
            discriminator = self.discriminators[name]
            _set_requires_grad(discriminator, True)
            fake = self.pools[name].query(outputs.fakes[name].detach())
            loss_real = self.gan_loss(discriminator(batch[dst]), True)
            loss_fake = self.gan_loss(discriminator(fake), False)
            total = total + 0.5 * (loss_real + loss_fake)
            logs[f"{name}_d_real"], logs[f"{name}_d_fake"] = loss_real.detach(), loss_fake.detach()
        return total, logs

    def generator_loss(self, batch: Mapping[str, Tensor], outputs: GeneratorOutputs
                       ) -> tuple[Tensor, dict[str, Tensor]]:
        """Both students' objectives summed (see the class docstring) and their parts."""
        config = self.config
        total = batch["A"].new_zeros(())
        logs: dict[str, Tensor] = {}
        other = {"a2b": "b2a", "b2a": "a2b"}
        for name, (src, dst) in self.DIRECTIONS.items():
            fake = outputs.fakes[name]
            discriminator = _unwrap(self.discriminators[name])
            _set_requires_grad(discriminator, False)
            gan = self.gan_loss(discriminator(fake), True, for_discriminator=False)
            cycle = torch.nn.functional.l1_loss(self.students[other[name]](fake), batch[src])
            loss = config.lambda_gan * gan + config.lambda_cycle * cycle
            logs[f"{name}_g_gan"], logs[f"{name}_cycle"] = gan.detach(), cycle.detach()
            if config.lambda_identity > 0:
                identity = torch.nn.functional.l1_loss(self.students[name](batch[dst]), batch[dst])
                loss = loss + config.lambda_cycle * config.lambda_identity * identity
                logs[f"{name}_identity"] = identity.detach()
            teacher_total, teacher_logs = self.terms(
                f"{name}_", fake, outputs.teacher_fakes.get(name), self.feature_kd[name] if name in self.feature_kd else None,
                outputs.student_features.get(name), outputs.teacher_features.get(name))
            total = total + loss + teacher_total
            logs.update({k: v.detach() for k, v in teacher_logs.items()})
        return total, logs
