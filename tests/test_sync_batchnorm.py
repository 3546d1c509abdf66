"""--sync_batchnorm: batch-norm layers become SyncBatchNorm on several GPU processes, keeping the
parameters (the optimizers hold them) and the saved weights' names; refused on the CPU."""

import pytest
import torch

from wkd_hf.distributed import sync_batchnorm
from wkd_hf.errors import WKDError
from wkd_hf.models import PatchDiscriminator


def _discriminator():
    torch.manual_seed(0)
    return PatchDiscriminator(in_channels=6, ndf=4, n_layers=3, norm_type="batch")


def test_several_gpu_processes_share_batchnorm_statistics():
    discriminator = _discriminator()
    parameters = list(discriminator.parameters())
    names = list(discriminator.state_dict())
    converted = sync_batchnorm({"a2b": discriminator}, 2, torch.device("cuda", 0))["a2b"]
    norms = [m for m in converted.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)]
    assert norms and all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    assert all(a is b for a, b in zip(converted.parameters(), parameters))
    assert list(converted.state_dict()) == names
    PatchDiscriminator(in_channels=6, ndf=4, n_layers=3, norm_type="batch").load_state_dict(
        converted.state_dict())  # the exported weights load into the plain class


def test_one_process_is_unchanged_and_the_cpu_is_refused():
    discriminator = _discriminator()
    assert sync_batchnorm({"a2b": discriminator}, 1, torch.device("cpu"))["a2b"] is discriminator
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in discriminator.modules())
    with pytest.raises(WKDError, match="--sync_batchnorm needs GPUs.*not on cpu"):
        sync_batchnorm({"a2b": discriminator}, 2, torch.device("cpu"))


def test_the_run_converts_generators_and_discriminators_before_preparing(monkeypatch, tmp_path):
    import argparse

    from accelerate import Accelerator

    from wkd_hf import run as run_module
    from wkd_hf.distillation import PairedDistiller, WKDConfig
    from wkd_hf.models import ResnetGenerator

    converted = []
    monkeypatch.setattr(run_module, "sync_batchnorm", lambda modules, n, device: (
        converted.append(sorted(modules)), dict(modules))[1])
    monkeypatch.setattr(run_module, "run_gan_training", lambda *a, **k: None)
    args = argparse.Namespace(
        learning_rate=2e-4, adam_beta1=0.5, adam_beta2=0.999, max_train_steps=1,
        lr_scheduler="constant", lr_decay_steps=None, lr_warmup_steps=0, output_dir=str(tmp_path),
        resume_from_checkpoint=None, report_to="none", num_train_epochs=1,
        gradient_accumulation_steps=1, sync_batchnorm=True)
    session = run_module.RunSession(args, Accelerator(cpu=True), "distill.py", "cmd")
    run = run_module.GANRun(WKDConfig(mode="paired", bands="none"),
                            {"a2b": ResnetGenerator(ngf=4, n_blocks=1)}, {"a2b": _discriminator()})
    loader = torch.utils.data.DataLoader([{"source": torch.zeros(3, 8, 8)}], batch_size=1)
    data = type("Data", (), {"train_loader": loader, "validation_loader": None})()
    session.train(run, lambda r: PairedDistiller(r.generators["a2b"], r.discriminators["a2b"],
                                                 r.config), data)
    assert converted == [["a2b"], ["a2b"]]
