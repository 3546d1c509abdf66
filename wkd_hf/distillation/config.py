"""The method's settings (:class:`WKDConfig`, saved as ``wkd_config.json``), its modes, bands and
update orders."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from ..names import WKD_CONFIG_NAME

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
