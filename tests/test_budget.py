"""Students sized to a MACs budget (wkd_hf.budget, distill.py --student_macs_budget)."""

import pytest
import torch

from wkd_hf.budget import parse_macs, pick_student
from wkd_hf.metrics.efficiency import count_macs
from wkd_hf.models import ResnetGenerator, UnetGenerator
from wkd_hf.models.building import build_student

RES = 32


def _macs(teacher, ngf, block_type=None):
    return count_macs(build_student(teacher, ngf, block_type), RES)


@pytest.fixture(scope="module")
def teacher():
    return ResnetGenerator(ngf=16, n_blocks=2)


def test_parse_macs():
    assert parse_macs("3.5G") == 3_500_000_000
    assert parse_macs("800M") == 800_000_000 and parse_macs("1.5e9") == 1_500_000_000
    assert parse_macs("2gmacs") == 2_000_000_000 and parse_macs(7e6) == 7_000_000
    for bad in ("", "fast", "-1G", "0", True):
        with pytest.raises(ValueError):
            parse_macs(bad)


def test_macs_budget_gives_the_widest_fitting_student(teacher):
    budget = (_macs(teacher, 9) + _macs(teacher, 10)) // 2  # between ngf 9 and ngf 10
    choice = pick_student(teacher, macs_budget=budget, resolution=RES)
    assert (choice.ngf, choice.block_type) == (9, "resnet")
    assert choice.macs == _macs(teacher, 9) <= budget < _macs(teacher, 10)
    assert choice.teacher_macs == count_macs(teacher, RES) and choice.macs_budget == budget
    student = choice.build()
    assert isinstance(student, ResnetGenerator) and student.config.ngf == 9
    assert choice.to_dict()["macs_ratio"] == round(choice.teacher_macs / choice.macs, 3)
    exact = pick_student(teacher, macs_budget=_macs(teacher, 10), resolution=RES)
    assert exact.ngf == 10  # the budget is inclusive


def test_speedup_and_block_types(teacher):
    teacher_macs = count_macs(teacher, RES)
    choice = pick_student(teacher, speedup=4, resolution=RES)
    assert choice.macs <= teacher_macs / 4 < _macs(teacher, choice.ngf + 1)
    mobile = pick_student(teacher, speedup=4, resolution=RES, block_type="mobile")
    assert mobile.block_type == "mobile" and mobile.ngf > choice.ngf
    assert mobile.macs <= teacher_macs / 4 < _macs(teacher, mobile.ngf + 1, "mobile")
    auto = pick_student(teacher, speedup=4, resolution=RES, block_type="auto")
    closest = max((choice, mobile), key=lambda c: c.macs)
    assert (auto.ngf, auto.block_type) == (closest.ngf, closest.block_type)
    stepped = pick_student(teacher, speedup=4, resolution=RES, ngf_step=4)
    assert stepped.ngf % 4 == 0 and stepped.ngf <= choice.ngf < stepped.ngf + 4


def test_unet_teacher_and_impossible_budgets(teacher):
    unet = UnetGenerator(ngf=16, num_downs=5)
    choice = pick_student(unet, speedup=3, resolution=RES)
    assert choice.block_type is None and isinstance(choice.build(), UnetGenerator)
    assert choice.macs <= count_macs(unet, RES) / 3 < count_macs(
        build_student(unet, choice.ngf + 1), RES)
    with pytest.raises(ValueError, match="no student fits") as error:
        pick_student(teacher, macs_budget=10, resolution=RES)
    assert "budget of 10 MACs" in str(error.value) and "did you mean 10G?" in str(error.value)
    with pytest.raises(ValueError, match=r"budget of 1M MACs .* needs [0-9.]+M;") as error:
        pick_student(teacher, macs_budget="1M", resolution=256)  # a real size: no unit hint
    assert "did you mean" not in str(error.value)
    with pytest.raises(ValueError, match="exactly one"):
        pick_student(teacher, macs_budget="1G", speedup=2, resolution=RES)
    with pytest.raises(ValueError, match="speedup"):
        pick_student(teacher, speedup=0.5, resolution=RES)
    with pytest.raises(ValueError, match="ResNet teachers"):
        pick_student(unet, speedup=2, resolution=RES, block_type="mobile")


def test_distill_flags_pick_the_student(tmp_path, teacher):
    from accelerate import PartialState

    from conftest import load_script

    PartialState(cpu=True)  # distill.py logs through accelerate, as under prepare_run
    distill = load_script("distill")
    teacher.save_pretrained(tmp_path / "teacher")
    base = ["--teacher_model_name_or_path", str(tmp_path / "teacher"), "--train_data_dir",
            str(tmp_path), "--output_dir", str(tmp_path / "out"), "--resolution", str(RES)]
    budget = _macs(teacher, 7)
    args = distill.parse_args([*base, "--student_macs_budget", str(budget)])
    run = distill.build_models(args, distill.method_config(args))
    student = run.generators["a2b"]
    assert student.config.ngf == 7 == args.student_ngf
    assert args.student_budget_result["macs"] == count_macs(student, RES) <= budget
    assert args.student_budget_result["macs_budget"] == budget
    assert distill.parse_args(base).student_ngf == 24  # unchanged default without a budget
    for bad in (["--student_macs_budget", "1G", "--student_ngf", "8"],
                ["--student_macs_budget", "1G", "--student_speedup", "4"],
                ["--student_macs_budget", "lots"], ["--student_speedup", "1"],
                ["--student_block_type", "auto"]):
        with pytest.raises(SystemExit):
            distill.parse_args([*base, *bad])


def test_profile_suggest_lists_candidates(tmp_path, capsys):
    from wkd_hf.cli.profile import main

    torch.manual_seed(0)
    ResnetGenerator(ngf=32, n_blocks=1).save_pretrained(tmp_path / "t")
    assert main(["--model", str(tmp_path / "t"), "--suggest", "--resolution", "16",
                 "--repeats", "1", "--warmup", "0", "--num_threads", "1"]) == 0
    out = capsys.readouterr().out
    for label in ("teacher", "resnet ngf 8", "resnet ngf 24", "mobile ngf 16", "mobile ngf 24"):
        assert label in out
    assert "resnet ngf 32" not in out and "resnet ngf 48" not in out  # not narrower than 32
