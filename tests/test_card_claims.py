"""What the model card claims about the discriminator is true of the run."""

import argparse

import pytest
from accelerate import Accelerator

from wkd_hf.distillation import WKDConfig
from wkd_hf.models import PatchDiscriminator, ResnetGenerator
from wkd_hf.run import GANRun, _discriminator_description


def _line(tmp_path, student_ndf, teacher_ndf=None, teacher=True, **kwargs):
    teacher_dir = tmp_path / "teacher"
    ResnetGenerator(ngf=8, n_blocks=1).save_pretrained(teacher_dir)
    if teacher_ndf is not None:
        PatchDiscriminator(in_channels=6, ndf=teacher_ndf).save_pretrained(
            teacher_dir / "discriminator")
    run = GANRun(WKDConfig(bands="none"), {"a2b": ResnetGenerator(ngf=4, n_blocks=1)},
                 {"a2b": PatchDiscriminator(in_channels=6, ndf=student_ndf)},
                 teachers={"a2b": ResnetGenerator(ngf=8, n_blocks=1)} if teacher else None)
    args = argparse.Namespace(teacher_model_name_or_path=str(teacher_dir),
                              teacher_discriminator_path=None, **kwargs)
    return _discriminator_description(run, Accelerator(cpu=True), args)


@pytest.mark.parametrize("student_ndf, teacher_ndf, shrunk", [
    (32, 64, True), (64, 64, False), (16, 8, False), (8, 16, True), (32, None, True),
    (64, None, False), (128, None, False)])
def test_shrunk_only_when_narrower_than_the_teachers(tmp_path, student_ndf, teacher_ndf, shrunk):
    line = _line(tmp_path, student_ndf, teacher_ndf)
    assert ("shrunk with the student, as the paper recommends" in line) == shrunk
    assert f"ndf {student_ndf}" in line
    reference = f"the teacher's ndf {teacher_ndf}" if teacher_ndf else "reference PatchGAN's ndf 64"
    assert reference in line
    if not shrunk:
        assert "not shrunk" in line


def test_a_teacher_run_makes_no_claim(tmp_path):
    line = _line(tmp_path, 64, teacher=False)
    assert "shrunk" not in line and line.endswith("training only).")
