"""Every tensor a distiller owns lives where the batch lives.

There is no GPU on the project's machines, so placement is proved on the CPU by moving a distiller
to another dtype (float64) and to the ``meta`` device: a tensor that does not follow (a DWT filter,
an adapter, a restored pool image) either fails these checks or breaks the step. The CUDA test runs
where a GPU exists.
"""

import pytest
import torch

from wkd_hf.distillation import (
    CycleDistiller,
    ImagePool,
    PairedDistiller,
    WKDConfig,
    build_feature_kd,
)
from wkd_hf.models import PatchDiscriminator, ResnetGenerator


def _generator(ngf: int, seed: int) -> ResnetGenerator:
    torch.manual_seed(seed)
    return ResnetGenerator(ngf=ngf, n_blocks=2)


def paired_distiller() -> PairedDistiller:
    teacher, student = _generator(8, 0), _generator(4, 1)
    config = WKDConfig(mode="paired", levels=2, kd_output_weight=1.0, kd_feature_weight=1.0,
                       kd_feature_layers=("block_1",))
    return PairedDistiller(student, PatchDiscriminator(in_channels=6, ndf=4), config, teacher,
                           build_feature_kd(student, teacher, config))


def cycle_distiller() -> CycleDistiller:
    teachers = {k: _generator(8, i) for i, k in enumerate(("a2b", "b2a"))}
    students = {k: _generator(4, 2 + i) for i, k in enumerate(("a2b", "b2a"))}
    config = WKDConfig(mode="cycle", levels=2, kd_feature_weight=1.0,
                       kd_feature_layers=("block_1",), pool_size=2)
    adapters = {k: build_feature_kd(students[k], teachers[k], config) for k in students}
    discriminators = {k: PatchDiscriminator(in_channels=3, ndf=4, norm_type="instance")
                      for k in students}
    return CycleDistiller(students, discriminators, config, teachers, adapters)


def _batch(distiller, dtype=torch.float32, device="cpu"):
    def image():
        return (torch.rand(2, 3, 32, 32) * 2 - 1).to(device, dtype)

    if isinstance(distiller, CycleDistiller):
        return {"A": image(), "B": image()}
    return {"source": image(), "target": image()}


def _step(distiller, batch):
    outputs = distiller.generate(batch)
    d_loss, _ = distiller.discriminator_loss(batch, outputs)
    g_loss, _ = distiller.generator_loss(batch, outputs)
    return d_loss, g_loss


def _owned_tensors(distiller):
    """Floating-point parameters and buffers (not e.g. batch norm's integer step counters)."""
    return [t for t in (*distiller.parameters(), *distiller.buffers()) if t.is_floating_point()]


@pytest.mark.parametrize("make", [paired_distiller, cycle_distiller])
def test_moving_the_distiller_moves_every_owned_tensor(make):
    distiller = make().to(torch.float64)
    tensors = _owned_tensors(distiller)
    dwt_filters = [b for name, b in distiller.named_buffers() if "dwt" in name]
    adapters = [p for name, p in distiller.named_parameters() if "feature_kd" in name]
    assert dwt_filters and adapters, "the DWT filters and adapters must be registered tensors"
    assert all(t.dtype == torch.float64 for t in tensors)
    d_loss, g_loss = _step(distiller, _batch(distiller, torch.float64))
    assert d_loss.dtype == g_loss.dtype == torch.float64 and torch.isfinite(g_loss)
    g_loss.backward()


@pytest.mark.parametrize("make", [paired_distiller, cycle_distiller])
def test_the_distiller_runs_on_the_meta_device(make):
    distiller = make().to("meta")
    assert all(t.device.type == "meta" for t in _owned_tensors(distiller))
    d_loss, g_loss = _step(distiller, _batch(distiller, device="meta"))
    assert d_loss.device.type == g_loss.device.type == "meta"


def test_train_mode_never_unfreezes_the_teacher():
    distiller = paired_distiller()
    distiller.train()
    assert distiller.student.training and not distiller.teacher.training
    assert not any(p.requires_grad for p in distiller.teacher.parameters())
    cycle = cycle_distiller().train()
    assert not any(t.training for t in cycle.teachers.values())


def test_a_restored_pool_follows_the_incoming_batch():
    pool = ImagePool(2)
    for _ in range(2):
        pool.query(torch.rand(1, 3, 4, 4))
    restored = ImagePool(0)
    restored.load_state_dict(pool.state_dict())  # CPU tensors, as read from a checkpoint
    torch.manual_seed(0)
    for _ in range(4):
        out = restored.query(torch.rand(1, 3, 4, 4, device="meta"))
        assert out.device.type == "meta"
    assert all(image.device.type == "meta" for image in restored.images)
    out = restored.query(torch.rand(1, 3, 4, 4, dtype=torch.float64).to("meta"))
    assert out.dtype == torch.float64


def test_the_run_moves_the_distiller_to_the_accelerator_device(monkeypatch, tmp_path):
    """RunSession.train hands the distiller to ``.to(accelerator.device)`` before training."""
    from wkd_hf import run as run_module

    moved = []
    original = PairedDistiller.to

    def spy(self, *args, **kwargs):
        moved.append(args[0] if args else kwargs.get("device"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PairedDistiller, "to", spy)
    monkeypatch.setattr(run_module, "run_gan_training", lambda *a, **k: None)
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    import argparse

    args = argparse.Namespace(
        learning_rate=2e-4, adam_beta1=0.5, adam_beta2=0.999, max_train_steps=1,
        lr_scheduler="constant", lr_decay_steps=None, lr_warmup_steps=0, output_dir=str(tmp_path),
        resume_from_checkpoint=None, report_to="none", num_train_epochs=1,
        gradient_accumulation_steps=1)
    session = run_module.RunSession(args, accelerator, "distill.py", "cmd")
    student, discriminator = _generator(4, 0), PatchDiscriminator(in_channels=6, ndf=4)
    run = run_module.GANRun(WKDConfig(mode="paired", bands="none"), {"a2b": student},
                            {"a2b": discriminator})
    loader = torch.utils.data.DataLoader([{"source": torch.zeros(3, 8, 8)}], batch_size=1)
    data = type("Data", (), {"train_loader": loader, "validation_loader": None})()
    session.train(run, lambda r: PairedDistiller(r.generators["a2b"], r.discriminators["a2b"],
                                                 r.config), data)
    assert moved and torch.device(moved[0]) == accelerator.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
def test_a_whole_step_on_cuda():
    for make in (paired_distiller, cycle_distiller):
        distiller = make().to("cuda")
        assert all(t.is_cuda for t in _owned_tensors(distiller))
        d_loss, g_loss = _step(distiller, _batch(distiller, device="cuda"))
        (d_loss + g_loss).backward()
    pool = ImagePool(1)
    pool.load_state_dict({"pool_size": 1, "images": [torch.rand(1, 3, 32, 32)]})
    assert pool.query(torch.rand(1, 3, 32, 32, device="cuda")).is_cuda
