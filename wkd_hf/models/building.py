"""Networks from names and from each other: any saved network (a folder, a Hub id, an upstream
``.pth``), a generator checked to be one, a student of a teacher's family, a discriminator
(fresh or from a teacher's)."""

from __future__ import annotations

import os

from torch import nn

from ..conversion import convert_pix2pix_checkpoint
from ..names import CHECKPOINT_SUFFIXES
from . import (
    GENERATOR_CLASSES,
    PatchDiscriminator,
    ResnetGenerator,
    SubMobileResnetGenerator,
    UnetGenerator,
    load_pretrained_model,
)


def load_generator(name_or_path: str, subfolder: str | None = None) -> nn.Module:
    """A generator from a Hub id, a ``save_pretrained`` folder, or an upstream ``.pth`` state dict
    (converted by :func:`wkd_hf.conversion.convert_pix2pix_checkpoint`); any other network (e.g. a
    discriminator folder) is a ValueError saying what it is."""
    model = load_network(name_or_path, subfolder)
    if not isinstance(model, GENERATOR_CLASSES):
        where = name_or_path + (f" (subfolder {subfolder})" if subfolder else "")
        raise ValueError(
            f"{where} is a {type(model).__name__}, not a generator: pass the generator's folder "
            "(e.g. the run's output folder, generator_a2b/, or a *_net_G*.pth checkpoint).")
    return model


def load_network(name_or_path: str, subfolder: str | None = None) -> nn.Module:
    """Any wkd_hf network from a Hub id, a folder, or an upstream checkpoint file."""
    if os.path.isfile(name_or_path):
        if not name_or_path.endswith(CHECKPOINT_SUFFIXES):
            raise ValueError(f"{name_or_path} is a file but not a checkpoint "
                             f"({', '.join(CHECKPOINT_SUFFIXES)}); pass a model folder or a "
                             "pytorch-CycleGAN-and-pix2pix state dict.")
        return convert_pix2pix_checkpoint(name_or_path)
    return load_pretrained_model(name_or_path, subfolder=subfolder)


def build_student(teacher: nn.Module, ngf: int, block_type: str | None = None,
                  n_blocks: int | None = None) -> nn.Module:
    """A student of the teacher's family and channel counts, with width ``ngf``.

    ResNet teachers give ResNet students (``block_type`` "resnet" or "mobile", ``n_blocks``
    defaulting to the teacher's); U-Net teachers give U-Nets of the same depth.
    """
    config = teacher.config
    if isinstance(teacher, (ResnetGenerator, SubMobileResnetGenerator)):  # GAN Compression's too
        return ResnetGenerator(
            in_channels=config.in_channels, out_channels=config.out_channels, ngf=ngf,
            n_blocks=n_blocks or config.n_blocks, block_type=block_type or "resnet",
            norm_type=config.norm_type, use_dropout=config.use_dropout)
    if isinstance(teacher, UnetGenerator):
        if block_type not in (None, "resnet"):
            raise ValueError(f"--student_block_type {block_type} applies to ResNet teachers only; "
                             "this teacher is a U-Net.")
        return UnetGenerator(in_channels=config.in_channels, out_channels=config.out_channels,
                             ngf=ngf, num_downs=config.num_downs, norm_type=config.norm_type,
                             use_dropout=config.use_dropout)
    raise ValueError(f"Teacher class {type(teacher).__name__} is not a generator that wkd_hf "
                     "can build students for (ResnetGenerator, SubMobileResnetGenerator, "
                     "UnetGenerator).")


def build_discriminator(in_channels: int, ndf: int, n_layers: int = 3, norm_type: str = "batch",
                        init_from: str | None = None) -> PatchDiscriminator:
    """A PatchGAN discriminator, fresh or initialised from a (teacher's) discriminator folder or
    upstream ``*_net_D.pth`` when the shapes match exactly."""
    discriminator = PatchDiscriminator(in_channels=in_channels, ndf=ndf, n_layers=n_layers,
                                       norm_type=norm_type)
    if init_from is None:
        return discriminator
    source = load_network(init_from)  # a discriminator folder, Hub id or upstream *_net_D.pth
    mismatched = [k for k, v in source.state_dict().items()
                  if k not in discriminator.state_dict()
                  or discriminator.state_dict()[k].shape != v.shape]
    if not isinstance(source, PatchDiscriminator) or mismatched:
        raise ValueError(
            f"--teacher_discriminator_path {init_from} cannot initialise a PatchDiscriminator("
            f"in_channels={in_channels}, ndf={ndf}, n_layers={n_layers}, norm={norm_type}): "
            f"shapes differ at {mismatched[:3] or type(source).__name__}. Use the teacher's ndf, "
            "or train the shrunk discriminator from scratch (omit the flag).")
    discriminator.load_state_dict(source.state_dict())
    return discriminator
