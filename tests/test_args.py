"""Argument checks of the training scripts (wkd_hf.script_args.check_args, distill.py's student
flags) and the resolution check before training (wkd_hf.recipes.check_resolution_fits): each
mistake stops with one clear message before any model, data or training step."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets / huggingface_hub are imported

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

from wkd_hf import run as run_module
from wkd_hf.checkpointing import resolve_resume_checkpoint
from wkd_hf.data import images as images_module
from wkd_hf.errors import WKDError
from wkd_hf.models import ResnetGenerator, UnetGenerator
from wkd_hf.recipes import check_resolution_fits
from wkd_hf.script_args import check_args, resolve_resume_path, validation_rows

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--train_batch_size", "2", "--max_train_steps", "1", "--validation_split", "0",
         "--validation_steps", "0", "--checkpointing_steps", "0", "--report_to", "none"]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test",
                                                  ROOT / "training_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ab_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (96, 48), (i * 40, 0, 0)).save(folder / f"{i}.png")
    return folder


@pytest.fixture(autouse=True)
def _restore_pixel_cap():
    yield
    images_module.set_max_image_pixels(images_module.DEFAULT_MAX_IMAGE_PIXELS)


@pytest.fixture
def no_training(monkeypatch):
    """Any training step is a test failure: the checks must come first."""
    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(run_module, "run_gan_training", fail)


def _teacher_args(ab_dir, out, *extra):
    return _script("train_teacher").parse_args(
        ["--train_data_dir", str(ab_dir), "--output_dir", str(out), "--ngf", "4", "--n_blocks",
         "1", "--ndf", "4", *QUICK, *extra])


# ----------------------------------------------------------------------------- check_args
@pytest.mark.parametrize("output", [".", "samples", "a/b"], ids=["same", "inside", "deeper"])
@pytest.mark.parametrize("flag", ["--train_data_dir", "--dataset_name"])
def test_output_dir_in_the_training_folder_is_refused(ab_dir, output, flag):
    args = _teacher_args(ab_dir, ab_dir / output)
    if flag == "--dataset_name":
        args.dataset_name, args.train_data_dir = str(ab_dir), None
    with pytest.raises(SystemExit, match="inside the training folder"):
        check_args(args)


def test_output_dir_beside_or_above_the_training_folder_is_fine(ab_dir, tmp_path):
    check_args(_teacher_args(ab_dir, tmp_path / "data_out"))  # a sibling sharing the prefix
    check_args(_teacher_args(ab_dir, tmp_path))  # the data inside the outputs: harmless


def test_output_dir_through_a_symlink_into_the_data_is_refused(ab_dir, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(ab_dir)
    with pytest.raises(SystemExit, match="inside the training folder"):
        check_args(_teacher_args(ab_dir, link / "out"))


@pytest.mark.parametrize("value", ["1.5", "2.0000001", "inf", "nan", "-0.5", "a"])
def test_validation_split_must_be_a_fraction_or_a_whole_count(ab_dir, tmp_path, value, capsys):
    with pytest.raises(SystemExit):  # argparse's error, before anything else runs
        _teacher_args(ab_dir, tmp_path / "out", "--validation_split", value)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    expected = ("must be a number, got 'a'" if value == "a" else
                "must be a fraction in (0, 1) or a whole number of rows >= 1 (0: no validation), "
                f"got {float(value)}")
    assert error.endswith(f"error: argument --validation_split: {expected}"), error


def test_validation_split_set_in_code_is_checked_too(ab_dir, tmp_path):
    args = _teacher_args(ab_dir, tmp_path / "out")
    args.validation_split = 1.5
    with pytest.raises(SystemExit, match=r"--validation_split must be a fraction in \(0, 1\) or "
                                         "a whole number of rows >= 1 .*got 1.5"):
        check_args(args)


@pytest.mark.parametrize("value, rows", [("0", 0.0), ("0.25", 0.25), ("1", 1), ("3.0", 3)])
def test_valid_validation_splits_pass(ab_dir, tmp_path, value, rows):
    args = _teacher_args(ab_dir, tmp_path / "out", "--validation_split", value)
    check_args(args)
    assert validation_rows(args) == rows and type(validation_rows(args)) is type(rows)


# ----------------------------------------------------------------------------- flag names
@pytest.mark.parametrize("flags, flip", [
    ([], True), (["--random_flip"], True), (["--no-random_flip"], False), (["--no_flip"], False),
    (["--no_flip", "--random_flip"], True),
])
@pytest.mark.parametrize("script", ["train_teacher", "distill"])
def test_random_flip_spellings(script, flags, flip):
    """diffusers' --random_flip (on here, as pix2pix) with --no-random_flip; --no_flip still
    works. The code reads ``no_flip``."""
    extra = ["--teacher_model_name_or_path", "t"] if script == "distill" else []
    args = _script(script).parse_args(["--train_data_dir", "d", "--output_dir", "o", *extra,
                                       *flags])
    assert args.no_flip is (not flip)


@pytest.mark.parametrize("flags, layers", [([], 3), (["--discriminator_n_layers", "4"], 4),
                                           (["--n_layers_D", "2"], 2)])
def test_teacher_discriminator_depth_flag(flags, layers):
    args = _script("train_teacher").parse_args(["--train_data_dir", "d", "--output_dir", "o",
                                                *flags])
    assert args.discriminator_n_layers == layers and not hasattr(args, "n_layers_D")
    discriminator = _script("train_teacher").build_models(args).discriminators["a2b"]
    assert discriminator.config.n_layers == layers


def test_teacher_hub_id_reaches_the_card_and_does_not_block_a_resume():
    from wkd_hf.cards import base_model_for
    from wkd_hf.run_record import RUN_ONLY_ARGS

    args = _script("distill").parse_args(["--train_data_dir", "d", "--output_dir", "o",
                                          "--teacher_model_name_or_path", "./teacher",
                                          "--teacher_hub_id", "me/facades-teacher"])
    assert base_model_for(args) == "me/facades-teacher"
    assert "teacher_hub_id" in RUN_ONLY_ARGS  # naming the teacher later does not change the run


# ----------------------------------------------------------------------------- resume path
def _checkpoints(folder, *steps):
    for step in steps:
        (folder / f"checkpoint-{step}").mkdir(parents=True)
    return folder


def test_resume_name_means_the_checkpoint_in_output_dir(ab_dir, tmp_path, monkeypatch):
    out = _checkpoints(tmp_path / "out", 2, 4)
    monkeypatch.chdir(_checkpoints(tmp_path / "elsewhere", 2))  # never the working folder's
    args = _teacher_args(ab_dir, out, "--resume_from_checkpoint", "checkpoint-2")
    check_args(args)
    assert args.resume_from_checkpoint == str(out / "checkpoint-2")
    with pytest.raises(WKDError, match="also holds newer checkpoints"):  # the folder, as given
        resolve_resume_checkpoint(args.output_dir, args.resume_from_checkpoint)
    args.resume_from_checkpoint = "checkpoint-4"
    check_args(args)
    assert resolve_resume_checkpoint(args.output_dir, args.resume_from_checkpoint) == \
        out / "checkpoint-4"


def test_resume_from_an_explicit_folder_or_latest_is_unchanged(ab_dir, tmp_path):
    other = _checkpoints(tmp_path / "other", 6) / "checkpoint-6"
    args = _teacher_args(ab_dir, tmp_path / "out", "--resume_from_checkpoint", str(other))
    check_args(args)
    assert args.resume_from_checkpoint == str(other)
    for value in ("latest", None):
        args.resume_from_checkpoint = value
        resolve_resume_path(args)
        assert args.resume_from_checkpoint == value


def test_resume_from_a_missing_checkpoint_names_the_existing_ones(ab_dir, tmp_path):
    out = _checkpoints(tmp_path / "out", 2, 10)
    args = _teacher_args(ab_dir, out, "--resume_from_checkpoint", "checkpoint-3")
    with pytest.raises(SystemExit, match=r"--resume_from_checkpoint checkpoint-3: no such "
                                         r"checkpoint in --output_dir .*out \(its checkpoints: "
                                         r"checkpoint-2, checkpoint-10\)"):
        check_args(args)
    args = _teacher_args(ab_dir, tmp_path / "empty", "--resume_from_checkpoint", "checkpoint-3")
    with pytest.raises(SystemExit, match=r"its checkpoints: none"):
        check_args(args)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_learning_rate_must_be_finite(ab_dir, tmp_path, value):
    with pytest.raises(SystemExit, match="learning_rate must be > 0"):
        check_args(_teacher_args(ab_dir, tmp_path / "out", "--learning_rate", value))


def test_max_image_pixels_is_checked_and_applied(ab_dir, tmp_path):
    with pytest.raises(SystemExit, match="max_image_pixels must be >= 0"):
        check_args(_teacher_args(ab_dir, tmp_path / "out", "--max_image_pixels", "-1"))
    check_args(_teacher_args(ab_dir, tmp_path / "out", "--max_image_pixels", "1000"))
    assert images_module.get_max_image_pixels() == 1000
    check_args(_teacher_args(ab_dir, tmp_path / "out", "--max_image_pixels", "0"))
    assert images_module.get_max_image_pixels() is None
    check_args(_teacher_args(ab_dir, tmp_path / "out"))
    assert images_module.get_max_image_pixels() == images_module.DEFAULT_MAX_IMAGE_PIXELS


@pytest.mark.parametrize("blocks", ["0", "-2"])
def test_student_n_blocks_must_be_positive(blocks, capsys):
    with pytest.raises(SystemExit):
        _script("distill").parse_args(["--teacher_model_name_or_path", "t", "--train_data_dir",
                                       "d", "--output_dir", "o", "--student_n_blocks", blocks])
    assert "--student_n_blocks must be >= 1" in capsys.readouterr().err


# ----------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("model, good, bad", [
    (ResnetGenerator(ngf=4, n_blocks=1), [32, 36, 8], [34, 33, 2, 4]),
    (UnetGenerator(ngf=4, num_downs=5), [32, 64], [48, 33, 16]),
], ids=["resnet", "unet"])
@pytest.mark.parametrize("own_rule", [False, True], ids=["model-check", "fallback-rule"])
def test_check_resolution_fits(model, good, bad, own_rule, monkeypatch):
    if own_rule:  # a model class without check_input_size: the rule from its config
        monkeypatch.delattr(type(model), "check_input_size", raising=False)
    for size in good:
        check_resolution_fits(model, size)
    for size in bad:
        with pytest.raises(ValueError, match=f"--resolution {size} does not fit.*multiples of"):
            check_resolution_fits(model, size)


def test_teacher_script_stops_on_a_resnet_resolution_before_training(ab_dir, tmp_path,
                                                                     no_training):
    script = _script("train_teacher")
    args = _teacher_args(ab_dir, tmp_path / "out", "--resolution", "34")
    with pytest.raises(ValueError, match=r"--resolution 34 does not fit .*ResnetGenerator.*"
                                         r"multiples of 4"):
        script.main(args, [])


def test_teacher_script_stops_on_a_unet_resolution_before_training(ab_dir, tmp_path,
                                                                   no_training):
    script = _script("train_teacher")
    args = _teacher_args(ab_dir, tmp_path / "out", "--generator", "unet", "--num_downs", "5",
                         "--resolution", "48")
    with pytest.raises(ValueError, match=r"--resolution 48 does not fit .*UnetGenerator.*"
                                         r"multiples of 32"):
        script.main(args, [])


@pytest.mark.parametrize("teacher, size, match", [
    (lambda: ResnetGenerator(ngf=4, n_blocks=1), "34", "multiples of 4"),
    (lambda: UnetGenerator(ngf=4, num_downs=5), "48", "multiples of 32"),
], ids=["resnet", "unet"])
def test_distill_stops_on_a_bad_resolution_before_training(ab_dir, tmp_path, no_training,
                                                           teacher, size, match):
    teacher_dir = tmp_path / "teacher"
    teacher().save_pretrained(str(teacher_dir))
    script = _script("distill")
    args = script.parse_args(["--teacher_model_name_or_path", str(teacher_dir),
                              "--train_data_dir", str(ab_dir), "--output_dir",
                              str(tmp_path / "out"), "--student_ngf", "4",
                              "--discriminator_ndf", "4", "--resolution", size, *QUICK])
    with pytest.raises(ValueError, match=f"--resolution {size} does not fit the teacher.*{match}"):
        script.main(args, [])


def test_a_fitting_resolution_reaches_training(ab_dir, tmp_path, no_training):
    script = _script("train_teacher")
    with pytest.raises(AssertionError, match="training started"):  # the checks let it through
        script.main(_teacher_args(ab_dir, tmp_path / "out", "--resolution", "32"), [])
