"""The distillers: teacher + student + discriminator + losses -> (loss, logs).

A distiller owns no optimizer, dataloader or file. The loop (``wkd_hf/training.py``,
``run_gan_training`` -> ``_train_step``) calls, per batch::

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

Modules: :mod:`.config` (``WKDConfig``, modes, bands), :mod:`.pool` (``ImagePool``), :mod:`.base`
(the shared terms and base class), :mod:`.paired` (``PairedDistiller``), :mod:`.cycle`
(``CycleDistiller``).
"""

from .base import GeneratorOutputs, build_feature_kd, freeze_teacher
from .config import (
    BANDS,
    DISCRIMINATOR_FIRST,
    GENERATOR_FIRST,
    MODES,
    WKDConfig,
    default_gan_mode,
)
from .cycle import CycleDistiller
from .paired import PairedDistiller
from .pool import ImagePool

__all__ = [
    "BANDS",
    "DISCRIMINATOR_FIRST",
    "GENERATOR_FIRST",
    "MODES",
    "CycleDistiller",
    "GeneratorOutputs",
    "ImagePool",
    "PairedDistiller",
    "WKDConfig",
    "build_feature_kd",
    "default_gan_mode",
    "freeze_teacher",
]
