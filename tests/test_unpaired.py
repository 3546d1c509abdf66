"""Unpaired (CycleGAN) teachers and both unpaired distillation modes on ``photo_domains`` (blurred
vs sharp crops of the demo's photos in trainA/trainB, built on any machine; the session-scoped
``cycle_teacher`` is in conftest.py). Real horse2zebra: test_real_data.py."""

import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from conftest import TINY_RUN, run_script
from wkd_hf import ResnetGenerator, WKDConfig
from wkd_hf.models import PatchDiscriminator


def test_cycle_teacher_folder_holds_both_directions(cycle_teacher):
    for sub in ("generator_a2b", "generator_b2a"):
        generator = ResnetGenerator.from_pretrained(cycle_teacher, subfolder=sub)
        assert generator.config.ngf == 8 and generator.config.norm_type == "instance"
    for sub in ("discriminator_a", "discriminator_b"):
        assert PatchDiscriminator.from_pretrained(cycle_teacher / sub).config.in_channels == 3
    assert (cycle_teacher / "samples_a2b.png").is_file()


def test_paper_mode_trains_two_students(tmp_path, photo_domains, cycle_teacher):
    out = tmp_path / "student"
    run_script("distill", ["--mode", "cycle", "--teacher_model_name_or_path", str(cycle_teacher),
                           "--train_data_dir", str(photo_domains), "--student_ngf", "4",
                           "--discriminator_ndf", "4", "--wkd_levels", "3", "--pool_size", "3",
                           "--output_dir", str(out), *TINY_RUN, "--train_batch_size", "1",
                           "--checkpointing_steps", "2"])
    for sub in ("generator_a2b", "generator_b2a"):
        assert ResnetGenerator.from_pretrained(out, subfolder=sub).config.ngf == 4
    for sub in ("discriminator_a", "discriminator_b"):
        assert PatchDiscriminator.from_pretrained(out / sub).config.ndf == 4
    assert WKDConfig.load(out).mode == "cycle"
    card = ModelCard.load(out / "README.md")
    assert "cycle" in card.data.tags and "full CycleGAN objective" in card.text
    assert 'subfolder="generator_a2b"' in card.text
    # The image pools are part of the checkpoint (a file per process, wkd_hf/checkpointing.py),
    # so a resumed run continues them: two fakes per direction after two steps of batch 1.
    pools = load_file(out / "checkpoint-2" / "image_pools_0.safetensors")
    assert {k: tuple(v.shape) for k, v in pools.items() if "rng" not in k} == {
        "a2b": (2, 3, 32, 32), "b2a": (2, 3, 32, 32)}
    assert {"a2b.rng_state", "b2a.rng_state"} <= pools.keys()  # each pool's own generator


def test_gan_compression_mode_uses_one_direction(tmp_path, photo_domains, cycle_teacher):
    out = tmp_path / "student"
    run_script("distill", ["--mode", "teacher_target", "--direction", "BtoA",
                           "--teacher_model_name_or_path", str(cycle_teacher),
                           "--train_data_dir", str(photo_domains), "--student_ngf", "4",
                           "--discriminator_ndf", "4", "--wkd_levels", "3",
                           "--output_dir", str(out), *TINY_RUN])
    assert ResnetGenerator.from_pretrained(out).config.ngf == 4
    assert PatchDiscriminator.from_pretrained(out / "discriminator").config.in_channels == 3
    assert WKDConfig.load(out).mode == "teacher_target"
    assert "teacher's output is the target" in ModelCard.load(out / "README.md").text


# Guards: ImagePool draws from its own generator, saved in the checkpoint (the resumed run's
# DataLoader iterator draws from the global RNG at another time than the uninterrupted run's).
def test_cycle_resume_with_full_image_pools_is_bit_identical(tmp_path, photo_domains,
                                                             cycle_teacher):
    def cycle(out, *extra):
        run_script("distill", ["--mode", "cycle", "--teacher_model_name_or_path",
                               str(cycle_teacher), "--train_data_dir", str(photo_domains),
                               "--student_ngf", "4", "--discriminator_ndf", "4", "--wkd_levels",
                               "3", "--output_dir", str(out), *TINY_RUN, "--train_batch_size", "1",
                               # full after one step: every later query draws from the RNG
                               "--pool_size", "1", "--lr_scheduler", "constant", *extra])

    cycle(tmp_path / "reference", "--max_train_steps", "4")
    resumed = tmp_path / "resumed"
    cycle(resumed, "--max_train_steps", "2", "--checkpointing_steps", "2")
    cycle(resumed, "--max_train_steps", "4", "--resume_from_checkpoint", "latest")
    for sub in ("generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b"):
        expected = load_file(tmp_path / "reference" / sub / "diffusion_pytorch_model.safetensors")
        got = load_file(resumed / sub / "diffusion_pytorch_model.safetensors")
        for key in expected:
            assert torch.equal(expected[key], got[key]), f"{sub}.{key} differs after resume"
