"""Mixed precision in the GAN step: fp16's loss scaler with gradient accumulation (a GradScaler
injected as accelerate builds it on CUDA: on CPU accelerate trains "fp16" as fp32 with no
scaler), and the teacher under the same autocast as the prepared students."""

import argparse
import os

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from wkd_hf import run as run_module
from wkd_hf.checkpointing import LoopState
from wkd_hf.distillation import PairedDistiller, WKDConfig
from wkd_hf.models import PatchDiscriminator, ResnetGenerator
from wkd_hf.training import GANTrainingSetup, _train_step

ARGS = argparse.Namespace(skip_nan_steps=0, output_dir=".")


def _networks():
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=4, n_blocks=1)
    discriminator = PatchDiscriminator(in_channels=6, ndf=4, n_layers=2, norm_type="instance")
    return generator, discriminator


def _batches():
    noise = torch.Generator().manual_seed(1)
    return [{"source": torch.rand(1, 3, 16, 16, generator=noise) * 2 - 1,
             "target": torch.rand(1, 3, 16, 16, generator=noise) * 2 - 1} for _ in range(2)]


def _accumulated_step(scaler: torch.amp.GradScaler | None) -> list[torch.Tensor]:
    """Two micro-batches, one optimizer step of each network (pix2pix order: D, then G);
    the weights of G and D after it."""
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    accelerator.scaler = scaler  # what Accelerator(mixed_precision="fp16") holds on CUDA
    generator, discriminator = _networks()
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (generator, discriminator)]
    generator, discriminator, opt_g, opt_d = accelerator.prepare(
        generator, discriminator, *optimizers)
    assert opt_g.scaler is scaler
    distiller = PairedDistiller(generator, discriminator,
                                WKDConfig(mode="paired", bands="none", gan_mode="lsgan"))
    setup = GANTrainingSetup(distiller, opt_g, opt_d, [], None, [generator, discriminator],
                             discriminators=[discriminator])
    for batch in _batches():
        _train_step(accelerator, setup, batch, ARGS, LoopState())
    return [p.detach().clone() for m in (generator, discriminator) for p in m.parameters()]


def test_fp16_scaler_with_accumulation_unscales_both_networks_right():
    reference = _accumulated_step(None)
    # growth_interval 1: the scale doubles at every update(), as it does every 2000 clean steps
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)
    scaled = _accumulated_step(scaler)
    for actual, wanted in zip(scaled, reference):
        torch.testing.assert_close(actual, wanted, rtol=1e-5, atol=1e-6)
    assert scaler.get_scale() == 2.0**11  # one update per optimizer step of the pair


def _fresh_accelerator(**settings):
    """A CPU ``Accelerator(**settings)`` (accelerate's state is one per process: reset around
    the test, as accelerate's own tests do)."""
    AcceleratorState._reset_state(True)
    try:
        yield Accelerator(cpu=True, **settings)
    finally:
        AcceleratorState._reset_state(True)


def _session(accelerator, monkeypatch, tmp_path):
    """A one-step distill.py session on ``accelerator`` whose training loop does nothing."""
    monkeypatch.setattr(run_module, "run_gan_training", lambda *a, **k: None)
    args = argparse.Namespace(
        learning_rate=2e-4, adam_beta1=0.5, adam_beta2=0.999, max_train_steps=1,
        lr_scheduler="constant", lr_decay_steps=None, lr_warmup_steps=0, output_dir=str(tmp_path),
        resume_from_checkpoint=None, report_to="none", num_train_epochs=1,
        gradient_accumulation_steps=1)
    return run_module.RunSession(args, accelerator, "distill.py", "cmd")


@pytest.fixture
def bf16_accelerator():
    """``Accelerator(mixed_precision="bf16")`` on the CPU."""
    yield from _fresh_accelerator(mixed_precision="bf16")


def test_the_teacher_runs_under_the_prepared_students_autocast(bf16_accelerator, monkeypatch,
                                                              tmp_path):
    session = _session(bf16_accelerator, monkeypatch, tmp_path)
    student, discriminator = _networks()
    torch.manual_seed(3)
    teacher = ResnetGenerator(ngf=8, n_blocks=1)
    run = run_module.GANRun(WKDConfig(mode="paired"), {"a2b": student}, {"a2b": discriminator},
                            teachers={"a2b": teacher})
    loader = torch.utils.data.DataLoader([{"source": torch.zeros(3, 8, 8)}], batch_size=1)
    data = type("Data", (), {"train_loader": loader, "validation_loader": None})()
    session.train(run, lambda r: PairedDistiller(r.generators["a2b"], r.discriminators["a2b"],
                                                 r.config, r.teachers["a2b"]), data)
    dtypes = {}
    for name, network in (("student", session.distiller.student), ("teacher", teacher)):
        conv = next(m for m in network.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(lambda m, i, o, name=name: dtypes.update({name: o.dtype}))
    outputs = session.distiller.generate(_batches()[0])
    assert dtypes == {"student": torch.bfloat16, "teacher": torch.bfloat16}
    # outputs back in float32, as accelerate returns a prepared model's: the losses stay float32
    assert outputs.fakes["fake"].dtype == outputs.teacher_fakes["fake"].dtype == torch.float32
    with torch.no_grad():
        reference = teacher._wkd_original_forward(_batches()[0]["source"])
    torch.testing.assert_close(outputs.teacher_fakes["fake"], reference, atol=0.05, rtol=0)


@pytest.mark.parametrize("mixed, native, expect", [
    ("bf16", False, "emulated and slower"), ("bf16", True, None),
    ("no", True, "--mixed_precision bf16 trains faster"), ("no", False, None),
    ("fp16", True, "use --mixed_precision bf16")])
def test_cpu_precision_advice_follows_what_the_cpu_has(monkeypatch, mixed, native, expect):
    from types import SimpleNamespace

    from wkd_hf import precision

    monkeypatch.setattr(precision, "cpu_bf16_support",
                        lambda: {"avx512_bf16": native, "amx": False})
    accelerator = SimpleNamespace(device=torch.device("cpu"), mixed_precision=mixed,
                                  native_amp=mixed == "bf16")
    advice = precision.cpu_precision_advice(accelerator)
    assert (advice is None) if expect is None else (expect in advice)
    assert precision.cpu_precision_advice(
        SimpleNamespace(device=torch.device("cuda"), mixed_precision=mixed, native_amp=True)) is None


def test_distill_in_bf16_on_the_cpu_trains_checkpoints_resumes_and_exports(tmp_path, photo_pairs,
                                                                          pix2pix_teacher):
    """The teacher's autocast survives the whole run: validation, checkpoints, resume, export."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "training_scripts" / "distill.py"
    command = [sys.executable, str(script), "--teacher_model_name_or_path", str(pix2pix_teacher),
               "--train_data_dir", str(photo_pairs), "--direction", "BtoA", "--output_dir",
               str(tmp_path / "out"), "--resolution", "32", "--validation_split", "2",
               "--num_validation_images", "2", "--validation_steps", "1", "--report_to", "none",
               "--student_ngf", "4", "--discriminator_ndf", "4", "--wkd_levels", "3",
               "--checkpointing_steps", "1", "--mixed_precision", "bf16", "--cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    first = subprocess.run(command + ["--max_train_steps", "1"], capture_output=True, text=True,
                           env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    second = subprocess.run(command + ["--max_train_steps", "2", "--resume_from_checkpoint",
                                       "latest"], capture_output=True, text=True, env=env,
                            timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resumed from" in second.stderr and (tmp_path / "out" / "checkpoint-2").is_dir()
    assert (tmp_path / "out" / "diffusion_pytorch_model.safetensors").is_file()


@pytest.fixture
def inductor_accelerator():
    """``Accelerator(dynamo_backend="inductor")``: what ``accelerate launch --dynamo_backend
    inductor`` gives (state reset around the test)."""
    yield from _fresh_accelerator(dynamo_backend="inductor")


def test_the_teacher_is_compiled_when_the_students_are(inductor_accelerator, monkeypatch,
                                                       tmp_path):
    from wkd_hf.distillation.base import _unwrap

    session = _session(inductor_accelerator, monkeypatch, tmp_path)
    student, discriminator = _networks()
    teacher = ResnetGenerator(ngf=8, n_blocks=1)
    names = list(teacher.state_dict())
    run = run_module.GANRun(WKDConfig(mode="paired"), {"a2b": student}, {"a2b": discriminator},
                            teachers={"a2b": teacher})
    loader = torch.utils.data.DataLoader([{"source": torch.zeros(3, 8, 8)}], batch_size=1)
    data = type("Data", (), {"train_loader": loader, "validation_loader": None})()
    session.train(run, lambda r: PairedDistiller(r.generators["a2b"], r.discriminators["a2b"],
                                                 r.config, r.teachers["a2b"]), data)
    prepared = session.distiller.discriminator
    assert hasattr(prepared, "_orig_mod") and _unwrap(prepared) is discriminator  # accelerate's
    assert teacher._compiled_call_impl is not None  # compiled in place, like the students
    assert session.distiller.teacher is teacher and list(teacher.state_dict()) == names
