"""distill.py's model set-up: discriminators initialised from a CycleGAN teacher's own ones, and
the GAN loss default of each mode recorded in args.json / wkd_config.json."""

import json

import pytest
import torch

from conftest import load_script
from wkd_hf.models import PatchDiscriminator, ResnetGenerator

distill = load_script("distill")


def _cycle_teacher(root, with_b=True):
    for i, name in enumerate(("generator_a2b", "generator_b2a")):
        torch.manual_seed(i)
        ResnetGenerator(ngf=8, n_blocks=1).save_pretrained(root / name)
    for i, name in enumerate(("discriminator_a", "discriminator_b")[:2 if with_b else 1]):
        torch.manual_seed(10 + i)
        PatchDiscriminator(in_channels=3, ndf=8, norm_type="instance").save_pretrained(root / name)
    return root


def _args(teacher, **extra):
    argv = ["--teacher_model_name_or_path", str(teacher), "--train_data_dir", str(teacher),
            "--output_dir", str(teacher / "out"), "--student_ngf", "4", "--discriminator_ndf", "8"]
    for key, value in extra.items():
        argv += [f"--{key}", str(value)]
    return distill.parse_args(argv)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_cycle_discriminators_start_from_the_teachers_own(tmp_path):
    teacher = _cycle_teacher(tmp_path / "teacher")
    args = _args(teacher, mode="cycle", teacher_discriminator_path=teacher)
    run = distill.build_models(args, distill.method_config(args))
    d_a = PatchDiscriminator.from_pretrained(teacher / "discriminator_a")
    d_b = PatchDiscriminator.from_pretrained(teacher / "discriminator_b")
    assert not _same(d_a, d_b)
    assert _same(run.discriminators["a2b"], d_b)  # a2b's output (domain B) is judged by D_B
    assert _same(run.discriminators["b2a"], d_a)


def test_cycle_discriminator_init_needs_both_folders(tmp_path):
    teacher = _cycle_teacher(tmp_path / "teacher", with_b=False)
    args = _args(teacher, mode="cycle", teacher_discriminator_path=teacher)
    with pytest.raises(ValueError, match="discriminator_b is missing"):
        distill.build_models(args, distill.method_config(args))


@pytest.mark.parametrize("mode, expected", [("paired", "vanilla"), ("teacher_target", "lsgan"),
                                            ("cycle", "lsgan")])
def test_gan_loss_default_follows_the_mode(tmp_path, mode, expected):
    args = _args(tmp_path, mode=mode)
    assert args.gan_mode == expected and distill.method_config(args).gan_mode == expected
    assert _args(tmp_path, mode=mode, gan_mode="hinge").gan_mode == "hinge"
    train_teacher = load_script("train_teacher")
    teacher_mode = "cycle" if mode == "cycle" else "paired"
    teacher_args = train_teacher.parse_args(["--train_data_dir", str(tmp_path), "--output_dir",
                                             str(tmp_path / "t"), "--mode", teacher_mode])
    assert teacher_args.gan_mode == ("lsgan" if mode == "cycle" else "vanilla")


def _paired_teacher(root, direction, data):
    ResnetGenerator(ngf=8, n_blocks=1).save_pretrained(root)
    (root / "args.json").write_text(json.dumps({"direction": direction, "train_data_dir": str(data),
                                                "dataset_name": None}))
    return root


def test_teacher_trained_for_the_other_direction_on_this_data_is_refused(tmp_path):
    data = tmp_path / "facades"
    (data / "train").mkdir(parents=True)
    teacher = _paired_teacher(tmp_path / "teacher", "BtoA", data)
    for where in (data, data / "train"):  # the same folder, or its train/ split
        args = _args(teacher, direction="AtoB", train_data_dir=where)
        with pytest.raises(ValueError, match="--direction BtoA .*this run uses --direction AtoB"):
            distill.build_models(args, distill.method_config(args))
    args = _args(teacher, direction="BtoA", train_data_dir=data / "train")
    assert distill.build_models(args, distill.method_config(args)).teachers  # the right one: fine


def test_teacher_direction_is_not_compared_across_datasets(tmp_path):
    (tmp_path / "other").mkdir()
    teacher = _paired_teacher(tmp_path / "teacher", "BtoA", tmp_path / "facades")
    args = _args(teacher, direction="AtoB", train_data_dir=tmp_path / "other")
    assert distill.build_models(args, distill.method_config(args)).teachers


def test_a_student_folder_passed_as_the_teacher_is_named_in_a_warning(tmp_path, caplog):
    student = _paired_teacher(tmp_path / "student", "BtoA", tmp_path)
    (student / "wkd_config.json").write_text("{}")
    args = _args(student, direction="BtoA", student_ngf=8)  # as wide as the "teacher" (ngf 8)
    distill.build_models(args, distill.method_config(args))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("not smaller than the teacher" in w and "distilled student" in w for w in warnings)
    caplog.clear()
    args = _args(student, direction="BtoA", student_ngf=4)  # smaller: no warning
    distill.build_models(args, distill.method_config(args))
    assert not [r for r in caplog.records if "not smaller" in r.getMessage()]
