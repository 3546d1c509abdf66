"""What the loop costs besides the math: losses reach the host (a GPU sync each) and the trackers
only every --logging_steps, in one copy; per step only the two non-finite checks read a value."""

import argparse

import pytest
import torch
from accelerate import Accelerator

from wkd_hf.checkpointing import LoopState
from wkd_hf.distillation import PairedDistiller, WKDConfig
from wkd_hf.models import PatchDiscriminator, ResnetGenerator
from wkd_hf.training import GANTrainingSetup, run_gan_training

READS = ("item", "tolist", "__float__", "__bool__")  # tensor -> Python: a host sync on a GPU


@pytest.fixture
def host_reads(monkeypatch):
    """Counts tensor -> Python conversions of scalar tensors."""
    counts = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name):
            counts.append(_name)
            return _original(self, *args)
        monkeypatch.setattr(torch.Tensor, name, spy)
    return counts


def _run(steps: int, logging_steps: int, host_reads=None):
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=4, n_blocks=1)
    discriminator = PatchDiscriminator(in_channels=6, ndf=4, n_layers=2, norm_type="instance")
    distiller = PairedDistiller(generator, discriminator,
                                WKDConfig(mode="paired", bands="none", gan_mode="lsgan"))
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.01) for m in (generator, discriminator)]
    batches = [{"source": torch.rand(1, 3, 16, 16) * 2 - 1,
                "target": torch.rand(1, 3, 16, 16) * 2 - 1} for _ in range(steps)]
    setup = GANTrainingSetup(distiller, *optimizers, [], batches, [generator, discriminator],
                             discriminators=[discriminator])
    accelerator = Accelerator(cpu=True)
    logged = []
    accelerator.log = lambda values, step=None: logged.append((step, sorted(values)))
    args = argparse.Namespace(max_train_steps=steps, logging_steps=logging_steps,
                              validation_steps=0, checkpointing_steps=0, skip_nan_steps=0,
                              output_dir=".")
    setup.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0) for o in optimizers]
    if host_reads is not None:
        host_reads.clear()
    run_gan_training(accelerator, setup, args, LoopState())
    return logged


def test_losses_are_logged_every_logging_steps_at_the_first_and_the_last():
    logged = _run(steps=7, logging_steps=3)
    assert [step for step, _ in logged] == [1, 3, 6, 7]
    assert logged[0][1] == sorted(["d_loss", "g_loss", "d_real", "d_fake", "g_gan", "g_recon",
                                   "lr"])


def test_a_step_reads_two_values_and_a_logging_step_one_copy_more(host_reads):
    _run(steps=5, logging_steps=5, host_reads=host_reads)
    # 5 steps x the two non-finite checks (before each update) + one copy at steps 1 and 5
    assert sorted(host_reads) == sorted(["__bool__"] * 10 + ["tolist"] * 2), host_reads


def test_training_batches_are_pinned_and_copied_non_blocking_on_cuda_only(monkeypatch):
    from wkd_hf.data import build_train_dataloader
    from wkd_hf.training import pins_memory

    assert not pins_memory(argparse.Namespace(cpu=False)) or torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # what a CUDA machine says
    assert pins_memory(argparse.Namespace(cpu=False))
    assert not pins_memory(argparse.Namespace(cpu=True))  # --cpu on a GPU machine
    import datasets

    rows = datasets.Dataset.from_dict({"x": [1, 2]})
    loader = build_train_dataloader(rows, lambda row: {"x": torch.tensor(row["x"])}, 1, seed=0,
                                    pin_memory=True)
    assert loader.pin_memory
