"""Smoke tests of the training scripts on real photos the repository builds (``photo_pairs``: the
demo's photos as side-by-side sharp | blurred pairs, BtoA = deblurring; tiny nets, 32 px, a few
steps), so they run on any machine. The same scripts on real facades: test_real_data.py."""

import json
import os
import subprocess
import sys

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from conftest import ROOT, TINY_RUN, free_port, run_script
from wkd_hf import ResnetGenerator, WKDConfig
from wkd_hf.hub_access import HubUnreachableError
from wkd_hf.models import PatchDiscriminator, load_pretrained_model

STUDENT = ["--student_ngf", "4", "--discriminator_ndf", "4", "--wkd_levels", "3"]


def distill(data, teacher, out, *extra):
    return run_script("distill", ["--teacher_model_name_or_path", str(teacher),
                                  "--train_data_dir", str(data), "--direction", "BtoA",
                                  "--output_dir", str(out), *TINY_RUN, *STUDENT, *extra])


def test_teacher_output_is_a_loadable_model(pix2pix_teacher):
    teacher = load_pretrained_model(str(pix2pix_teacher))
    assert isinstance(teacher, ResnetGenerator) and teacher.config.ngf == 8
    assert isinstance(load_pretrained_model(str(pix2pix_teacher / "discriminator")),
                      PatchDiscriminator)
    assert (pix2pix_teacher / "samples.png").is_file()
    assert not (pix2pix_teacher / "wkd_config.json").exists()


def test_distill_writes_a_complete_hub_ready_folder(tmp_path, photo_pairs, pix2pix_teacher):
    out = tmp_path / "student"
    distill(photo_pairs, pix2pix_teacher, out, "--hub_token", "hf_FAKE_TOKEN_123")
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "diffusion_pytorch_model.safetensors", "discriminator",
            "wkd_config.json", "args.json", "samples.png", "README.md"} <= names
    student = ResnetGenerator.from_pretrained(out)
    assert student.config.ngf == 4 and student.config.n_blocks == 2
    discriminator = PatchDiscriminator.from_pretrained(out / "discriminator")
    assert discriminator.config.ndf == 4 and discriminator.config.in_channels == 6
    assert WKDConfig.load(out).bands == "high"
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "wkd_hf" and card.data.pipeline_tag == "image-to-image"
    assert "wavelet-knowledge-distillation" in card.data.tags
    assert "Validation metrics" in card.text and "x params" in card.text
    assert "discriminator with ndf 4" in card.text and "shrunk with the student" in card.text
    intro = card.text.split("## Efficiency")[0]
    assert "a local teacher (`teacher`)" in intro and str(pix2pix_teacher) not in intro
    assert "lambda_cycle" not in card.text  # CycleGAN-only settings do not apply
    for path in out.rglob("*"):
        if path.is_file():
            assert b"hf_FAKE_TOKEN_123" not in path.read_bytes(), path


@pytest.mark.parametrize("resume_from", ["latest", "checkpoint-2"])  # a name in --output_dir
def test_resume_continues_from_the_saved_step(tmp_path, photo_pairs, pix2pix_teacher,
                                              resume_from):
    out = tmp_path / "student"
    steps = ["--max_train_steps", "4", "--checkpointing_steps", "2", "--lr_scheduler", "constant"]
    distill(photo_pairs, pix2pix_teacher, out, *steps)
    reference = load_file(out / "diffusion_pytorch_model.safetensors")
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    resumed = tmp_path / "resumed"
    distill(photo_pairs, pix2pix_teacher, resumed, "--max_train_steps", "2",
            "--checkpointing_steps", "2", "--lr_scheduler", "constant")
    distill(photo_pairs, pix2pix_teacher, resumed, *steps, "--resume_from_checkpoint", resume_from)
    weights = load_file(resumed / "diffusion_pytorch_model.safetensors")
    for key, value in reference.items():
        assert torch.equal(value, weights[key]), f"{key} differs after resume"


def test_streaming_and_baselines(tmp_path, photo_pairs, pix2pix_teacher):
    out = tmp_path / "student"
    distill(photo_pairs, pix2pix_teacher, out, "--streaming", "--wkd_bands", "none",
            "--kd_output_weight", "1", "--kd_feature_weight", "1")
    config = WKDConfig.load(out)
    assert config.bands == "none" and config.kd_feature_weight == 1
    assert ResnetGenerator.from_pretrained(out).config.ngf == 4


def test_distill_from_an_upstream_pth_checkpoint(tmp_path, photo_pairs, pix2pix_teacher):
    teacher = load_pretrained_model(str(pix2pix_teacher))
    pth = tmp_path / "latest_net_G.pth"
    torch.save({f"module.{k}": v for k, v in teacher.state_dict().items()}, pth)
    distill(photo_pairs, pth, tmp_path / "student")
    assert (tmp_path / "student" / "config.json").is_file()


def test_bad_configuration_stops_before_training(tmp_path, photo_pairs, pix2pix_teacher):
    with pytest.raises(SystemExit, match="--train_batch_size must be > 0"):
        distill(photo_pairs, pix2pix_teacher, tmp_path / "a", "--train_batch_size", "0")
    with pytest.raises(ValueError, match="levels"):
        distill(photo_pairs, pix2pix_teacher, tmp_path / "b", "--wkd_levels", "7")
    with pytest.raises(Exception, match="not a model|config.json"):
        distill(photo_pairs, tmp_path, tmp_path / "c")


def test_two_processes_write_every_file_once(tmp_path, photo_pairs, pix2pix_teacher):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--main_process_port", free_port(),
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", str(ROOT / "training_scripts" / "distill.py"),
               "--teacher_model_name_or_path", str(pix2pix_teacher), "--train_data_dir",
               str(photo_pairs), "--direction", "BtoA", "--output_dir", str(out), *TINY_RUN,
               *STUDENT, "--checkpointing_steps", "2", "--train_batch_size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "checkpoint-2").is_dir() and not list(out.glob(".checkpoint-*"))
    assert ResnetGenerator.from_pretrained(out).config.ngf == 4
    assert json.loads((out / "args.json").read_text())["train_batch_size"] == 1


def test_push_offline_fails_before_training_or_trains_anyway_and_keeps_the_output(
        tmp_path, photo_pairs, pix2pix_teacher, hub_offline, monkeypatch):
    from wkd_hf import run as run_module

    out = tmp_path / "student"
    monkeypatch.setattr(run_module, "run_gan_training",
                        lambda *a, **k: pytest.fail("trained although the Hub was unreachable"))
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE=1.*--train_if_hub_unreachable"):
        distill(photo_pairs, pix2pix_teacher, out, "--push_to_hub", "--hub_model_id", "me/x")
    monkeypatch.undo()
    with pytest.raises(SystemExit, match="(?s)HF_HUB_OFFLINE=1.*local output in .* is complete"):
        distill(photo_pairs, pix2pix_teacher, out, "--push_to_hub", "--hub_model_id", "me/x",
                "--train_if_hub_unreachable")
    assert ResnetGenerator.from_pretrained(out).config.ngf == 4
    assert (out / "README.md").is_file()


class _FakeResponse:
    status_code, headers, text, url, request = 401, {}, "", "https://hub/api/repos/create", None

    def json(self):
        return {}


def test_push_creates_the_repo_before_training_and_a_bad_token_stops_it(
        tmp_path, photo_pairs, pix2pix_teacher, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    from wkd_hf import hub_access
    from wkd_hf import run as run_module

    monkeypatch.setattr(hub_access, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    order = []

    def refuse(repo_id, **kwargs):
        order.append("create_repo")
        raise HfHubHTTPError("401 Client Error: Unauthorized (invalid token)",
                             response=_FakeResponse())

    monkeypatch.setattr(huggingface_hub, "create_repo", refuse)
    monkeypatch.setattr(run_module, "run_gan_training", lambda *a, **k: order.append("train"))
    with pytest.raises(HubUnreachableError, match="Cannot create or open the Hub repo 'me/x'.*401"):
        distill(photo_pairs, pix2pix_teacher, tmp_path / "s", "--push_to_hub", "--hub_model_id",
                "me/x", "--hub_token", "hf_badbadbad")
    assert order == ["create_repo"]


def test_feature_taps_the_student_lacks_are_a_clear_error(tmp_path, photo_pairs,
                                                         pix2pix_teacher):
    with pytest.raises(ValueError, match="block_7"):
        distill(photo_pairs, pix2pix_teacher, tmp_path / "s", "--kd_feature_weight", "1",
                "--kd_feature_layers", "block_7")
