"""Unpaired (CycleGAN) teachers and both unpaired distillation modes on real horse2zebra images."""

import pytest
from huggingface_hub import ModelCard

from conftest import TINY_RUN, run_script
from wkd_hf import ResnetGenerator, WKDConfig
from wkd_hf.models import PatchDiscriminator


@pytest.fixture(scope="module")
def cycle_teacher(tmp_path_factory, horse2zebra_subset):
    out = tmp_path_factory.mktemp("cycle") / "teacher"
    run_script("train_teacher", ["--mode", "cycle", "--train_data_dir", str(horse2zebra_subset),
                                 "--ngf", "8", "--n_blocks", "2", "--ndf", "8", "--pool_size", "3",
                                 "--output_dir", str(out), *TINY_RUN, "--train_batch_size", "1"])
    return out


def test_cycle_teacher_folder_holds_both_directions(cycle_teacher):
    for sub in ("generator_a2b", "generator_b2a"):
        generator = ResnetGenerator.from_pretrained(cycle_teacher, subfolder=sub)
        assert generator.config.ngf == 8 and generator.config.norm_type == "instance"
    for sub in ("discriminator_a", "discriminator_b"):
        assert PatchDiscriminator.from_pretrained(cycle_teacher / sub).config.in_channels == 3
    assert (cycle_teacher / "samples_a2b.png").is_file()


def test_paper_mode_trains_two_students(tmp_path, horse2zebra_subset, cycle_teacher):
    out = tmp_path / "student"
    run_script("distill", ["--mode", "cycle", "--teacher_model_name_or_path", str(cycle_teacher),
                           "--train_data_dir", str(horse2zebra_subset), "--student_ngf", "4",
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
    # The image pools are part of the checkpoint, so a resumed run continues them.
    assert len(list((out / "checkpoint-2").glob("custom_checkpoint_*"))) == 5


def test_gan_compression_mode_uses_one_direction(tmp_path, horse2zebra_subset, cycle_teacher):
    out = tmp_path / "student"
    run_script("distill", ["--mode", "teacher_target", "--direction", "BtoA",
                           "--teacher_model_name_or_path", str(cycle_teacher),
                           "--train_data_dir", str(horse2zebra_subset), "--student_ngf", "4",
                           "--discriminator_ndf", "4", "--wkd_levels", "3",
                           "--output_dir", str(out), *TINY_RUN])
    assert ResnetGenerator.from_pretrained(out).config.ngf == 4
    assert PatchDiscriminator.from_pretrained(out / "discriminator").config.in_channels == 3
    assert WKDConfig.load(out).mode == "teacher_target"
    assert "teacher's output is the target" in ModelCard.load(out / "README.md").text
