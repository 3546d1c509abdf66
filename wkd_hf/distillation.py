"""The distillers: teacher + student + discriminator + losses -> (loss, logs).

A distiller owns no optimizer, dataloader or file. The training scripts call, per batch::

    outputs = distiller.generate(batch)                 # students (+ teacher, once, no grad)
    d_loss, d_logs = distiller.discriminator_loss(batch, outputs)
    g_loss, g_logs = distiller.generator_loss(batch, outputs)

and updates the networks in ``distiller.update_order``: pix2pix's (discriminator, then generator
against the updated discriminator) for :class:`PairedDistiller`; CycleGAN's and the WKD authors'
(generators with the discriminators frozen, then the discriminators on pooled fakes) for
:class:`CycleDistiller`.

A distiller is an ``nn.Module`` holding the networks and every tensor of its losses (DWT filters,
feature-KD adapters), so ``distiller.to(device)`` moves all of them: nothing stays on the CPU
while the batch is on a GPU. Its ``train()`` never unfreezes a teacher.

With ``teacher=None`` a distiller is the plain pix2pix / CycleGAN objective: that is how
``train_teacher.py`` trains teachers, so teachers and students share one implementation.

Discriminators may be wrapped by ``DistributedDataParallel``. The generator loss runs them through
``_unwrap`` with their parameters frozen, so DDP only sees discriminator forwards whose parameters
take gradients (the discriminator step) and never waits for gradients that will not come.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .losses import (
    FeatureDistillationLoss,
    GANLoss,
    OutputDistillationLoss,
    WaveletDistillationLoss,
)
from .names import WKD_CONFIG_NAME

MODES = ("paired", "teacher_target", "cycle")
BANDS = ("high", "low", "all", "none")
DISCRIMINATOR_FIRST = ("discriminator", "generator")  # pix2pix
GENERATOR_FIRST = ("generator", "discriminator")  # CycleGAN and the WKD authors' code


def default_gan_mode(mode: str) -> str:
    """The reference recipe's GAN loss: pix2pix's ``vanilla`` (BCE with logits) for ``paired``,
    CycleGAN's ``lsgan`` for the unpaired modes."""
    return "vanilla" if mode == "paired" else "lsgan"


@dataclass(frozen=True)
class WKDConfig:
    """Method settings of a distillation run; saved beside the student as ``wkd_config.json``.

    Args:
        mode: ``"paired"`` (pix2pix: recon to the dataset target), ``"teacher_target"`` (GAN
            Compression's unpaired recipe: the teacher's output is the target and the "real" image
            for the discriminator) or ``"cycle"`` (the paper's unpaired recipe: two students, two
            discriminators, the full CycleGAN objective plus WKD on each direction).
        wave, levels: DWT basis and depth (the authors' runs: ``haar``, 4).
        bands: which DWT bands enter the WKD term: ``high`` (the method), ``low``, ``all``, or
            ``none`` (no WKD term: the no-KD baseline).
        distance: ``l1`` (the paper) or ``l2`` (the authors' released CycleGAN code).
        lambda_wkd: weight of the WKD term (the authors' runs: 0.4).
        lambda_recon: weight of L1(student, target) (pix2pix: 100). Unused in ``cycle`` mode.
        lambda_gan: weight of the generator's GAN term.
        gan_mode: ``lsgan``, ``vanilla`` or ``hinge``; None picks the reference recipe's
            (:func:`default_gan_mode`: vanilla for ``paired``, lsgan otherwise).
        kd_output_weight: weight of output KD, L1(student, teacher) (a baseline).
        kd_feature_weight: weight of feature KD through 1x1 adapters (a baseline).
        kd_feature_layers: generator feature names for feature KD (empty: the generator's defaults).
        lambda_cycle, lambda_identity, pool_size: CycleGAN's (10, 0.5, 50).
        conditional_discriminator: the discriminator sees ``cat(source, image)`` (pix2pix) rather
            than the image alone (CycleGAN). Ignored in ``cycle`` mode (always unconditional).
    """

    mode: str = "paired"
    wave: str = "haar"
    levels: int = 4
    bands: str = "high"
    distance: str = "l1"
    lambda_wkd: float = 0.4
    lambda_recon: float = 100.0
    lambda_gan: float = 1.0
    gan_mode: str | None = None
    kd_output_weight: float = 0.0
    kd_feature_weight: float = 0.0
    kd_feature_layers: tuple[str, ...] = field(default_factory=tuple)
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    conditional_discriminator: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not one of {MODES}.")
        if self.gan_mode is None:
            object.__setattr__(self, "gan_mode", default_gan_mode(self.mode))
        if self.gan_mode not in ("lsgan", "vanilla", "hinge"):
            raise ValueError(f"gan_mode={self.gan_mode!r} is not one of lsgan, vanilla, hinge.")
        if self.bands not in BANDS:
            raise ValueError(f"bands={self.bands!r} is not one of {BANDS}.")
        if self.distance not in ("l1", "l2"):
            raise ValueError(f"distance={self.distance!r} must be 'l1' or 'l2'.")
        if self.levels < 1:
            raise ValueError(f"levels={self.levels} must be >= 1.")
        for name in ("lambda_wkd", "lambda_recon", "lambda_gan", "kd_output_weight",
                     "kd_feature_weight", "lambda_cycle", "lambda_identity"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0.")
        if self.pool_size < 0:
            raise ValueError(f"pool_size={self.pool_size} must be >= 0.")
        object.__setattr__(self, "kd_feature_layers", tuple(self.kd_feature_layers))

    @property
    def uses_teacher(self) -> bool:
        """Whether any term needs the teacher's output."""
        return (self.mode == "teacher_target" or (self.bands != "none" and self.lambda_wkd > 0)
                or self.kd_output_weight > 0 or self.kd_feature_weight > 0)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["kd_feature_layers"] = list(self.kd_feature_layers)
        return data

    def save(self, directory: str | os.PathLike) -> str:
        """Write ``wkd_config.json`` into ``directory``; returns its path."""
        path = os.path.join(directory, WKD_CONFIG_NAME)
        with open(path, "w") as handle:
            json.dump(self.to_dict(), handle, indent=2, sort_keys=True)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> WKDConfig:
        with open(os.path.join(directory, WKD_CONFIG_NAME)) as handle:
            return cls(**json.load(handle))


@dataclass
class GeneratorOutputs:
    """What one generator pass produced for a batch (all N x C x H x W in [-1, 1])."""

    fakes: dict[str, Tensor]
    teacher_fakes: dict[str, Tensor] = field(default_factory=dict)
    student_features: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    teacher_features: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    extra: dict[str, Tensor] = field(default_factory=dict)


class ImagePool:
    """CycleGAN's history of generated images (Shrivastava et al.): the discriminator sees a mix
    of current and past fakes.

    Its randomness comes from its own generator (seeded with ``seed``, default: from torch's
    global seed), not from the global RNG, whose draws depend on when data loaders start; with
    ``state_dict`` (images and generator state) a resumed run replays the pool exactly.
    """

    def __init__(self, pool_size: int = 50, seed: int | None = None):
        self.pool_size = pool_size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(
            torch.initial_seed() % 2**63 if seed is None else seed)

    def query(self, images: Tensor) -> Tensor:
        """images: N x C x H x W (detached) -> N x C x H x W, each either itself or a past fake.

        Stored images follow the incoming batch's device and dtype (a pool restored from a
        checkpoint holds CPU tensors until its first query)."""
        if self.pool_size == 0:
            return images
        self.images = [image.to(images.device, images.dtype) for image in self.images]
        returned = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                returned.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                index = int(torch.randint(0, self.pool_size, (), generator=self.generator))
                returned.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.cat(returned, 0)

    def state_dict(self) -> dict:
        """``{"pool_size": int, "images": [1 x C x H x W], "rng_state": uint8 tensor}``."""
        return {"pool_size": self.pool_size, "images": [image.cpu() for image in self.images],
                "rng_state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.pool_size = state["pool_size"]
        self.images = list(state["images"])
        if state.get("rng_state") is not None:
            self.generator.set_state(state["rng_state"].cpu().to(torch.uint8))

    def snapshot(self) -> list[Tensor]:
        """The stored images (a shallow copy: queries replace entries, never mutate them)."""
        return list(self.images)

    def restore(self, snapshot: list[Tensor]) -> None:
        """Undo the queries made since :meth:`snapshot` (a skipped batch)."""
        self.images = list(snapshot)


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
