"""Shared training pieces: schedules, atomic checkpoints, resume resolution, NaN stops, args."""

import argparse
import json
import re

import pytest
import torch
from accelerate import Accelerator

from wkd_hf.checkpointing import (
    LoopState,
    list_checkpoints,
    resolve_resume_checkpoint,
    save_checkpoint,
)
from wkd_hf.run_record import command_line, public_args, save_args
from wkd_hf.training import NonFiniteLossError, _skip_if_non_finite, build_lr_scheduler


def test_pix2pix_schedule_is_constant_then_linear_decay():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_lr_scheduler(optimizer, "pix2pix_linear", max_steps=10, decay_steps=4)
    lrs = []
    for _ in range(10):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[:7] == [1.0] * 7
    assert lrs[7:] == pytest.approx([0.8, 0.6, 0.4])
    with pytest.raises(ValueError, match="step_lr"):
        build_lr_scheduler(optimizer, "step_lr", 10)
    with pytest.raises(ValueError, match=r"--lr_decay_steps 20 must lie in \[0, "
                                         r"--max_train_steps 10\]"):
        build_lr_scheduler(optimizer, "pix2pix_linear", 10, 20)


def test_diffusers_schedule_names_mean_what_they_mean_in_diffusers():
    """``linear`` is diffusers' (warm-up, then decay from the first step), not pix2pix's."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_lr_scheduler(optimizer, "linear", max_steps=10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125])
    from wkd_hf.script_args import ScriptArgumentParser, add_training_args

    parser = ScriptArgumentParser()
    add_training_args(parser)
    choices = next(a.choices for a in parser._actions if a.dest == "lr_scheduler")
    assert "pix2pix_linear" in choices and "cosine" in choices
    for name in choices:  # every name the parser accepts builds a schedule
        build_lr_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), name, 10)


def test_checkpoints_are_renamed_complete_and_pruned(tmp_path):
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(torch.nn.Linear(2, 2))
    state = LoopState()
    accelerator.register_for_checkpointing(state)
    for step in (1, 2, 3):
        state.global_step = step
        save_checkpoint(accelerator, str(tmp_path), step, total_limit=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-3"]
    assert not list(tmp_path.glob(".checkpoint-*"))
    # A save killed half-way leaves only a temporary folder, which "latest" never picks.
    (tmp_path / ".checkpoint-4.tmp").mkdir()
    latest = resolve_resume_checkpoint(str(tmp_path), "latest")
    assert latest.name == "checkpoint-3"
    state.global_step = 0
    with torch.no_grad():
        model.weight.zero_()
    accelerator.load_state(str(latest))
    assert state.global_step == 3 and model.weight.abs().sum() > 0


def test_resume_resolution_errors(tmp_path):
    assert resolve_resume_checkpoint(str(tmp_path), None) is None
    assert resolve_resume_checkpoint(str(tmp_path), "latest") is None
    with pytest.raises(FileNotFoundError, match="no such folder"):
        resolve_resume_checkpoint(str(tmp_path), str(tmp_path / "checkpoint-9"))
    (tmp_path / "weights").mkdir()
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        resolve_resume_checkpoint(str(tmp_path), str(tmp_path / "weights"))


def test_non_finite_loss_stops_with_the_loss_name_or_skips(tmp_path):
    accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    setup = argparse.Namespace(generator_optimizer=optimizer, discriminator_optimizer=optimizer)
    args = argparse.Namespace(skip_nan_steps=1, output_dir=str(tmp_path))
    state = LoopState(global_step=6)
    loss = torch.tensor(float("nan"))
    logs = {"g_gan": torch.tensor(0.3), "wkd": torch.tensor(float("inf"))}
    assert _skip_if_non_finite(accelerator, setup, args, state, loss, logs, "g_loss")
    assert state.skipped_nan_steps == 1
    with pytest.raises(NonFiniteLossError, match=r"Loss wkd .* at step 7.*none yet"):
        _skip_if_non_finite(accelerator, setup, args, state, loss, logs, "g_loss")
    assert not _skip_if_non_finite(accelerator, setup, args, state, torch.tensor(1.0), {}, "x")


def test_args_json_and_command_never_hold_the_token(tmp_path):
    args = argparse.Namespace(output_dir=str(tmp_path), hub_token="hf_secret123", seed=0)
    save_args(args, str(tmp_path))
    saved = json.loads((tmp_path / "args.json").read_text())
    assert "hub_token" not in saved and saved["seed"] == 0
    assert "hub_token" not in public_args(args)
    line = command_line("distill.py", ["--seed", "0", "--hub_token", "hf_secret123",
                                       "--hub_token=hf_secret123"])
    assert "hf_secret123" not in line and line.count("***") == 2


def test_an_iterable_that_yields_nothing_is_one_clear_error():
    """accelerate's "Batch does not contain any data" (an empty streamed split) becomes the
    project's one-line error; other errors pass through."""
    from wkd_hf.errors import WKDError
    from wkd_hf.training import _batches_or_explain

    def empty():
        raise ValueError("Batch does not contain any data (`None`). At the end of all iterable "
                         "data available before expected stop iteration.")
        yield

    with pytest.raises(WKDError, match="no usable batch.*--validation_split"):
        list(_batches_or_explain(empty()))

    def broken():
        yield 1
        raise ValueError("something else")

    with pytest.raises(ValueError, match="something else"):
        list(_batches_or_explain(broken()))
    assert list(_batches_or_explain(iter([1, 2]))) == [1, 2]


def test_stopped_message_says_what_can_be_resumed(tmp_path):
    from wkd_hf.training import stopped_message

    line = stopped_message(tmp_path, 3)
    assert line.startswith("Stopped at step 3 (Ctrl-C). No checkpoint was saved yet")
    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / ".checkpoint-6.tmp").mkdir()  # half-written: never offered
    assert stopped_message(tmp_path, 5) == ("Stopped at step 5 (Ctrl-C). Resume with "
                                            "--resume_from_checkpoint latest (from checkpoint-4, "
                                            "step 4).")
    assert "(signal SIGTERM)" in stopped_message(tmp_path, 5, KeyboardInterrupt("signal SIGTERM"))


def test_ctrl_c_in_the_loop_ends_with_one_line_and_exit_code_130(
        tmp_path, photo_pairs, pix2pix_teacher, monkeypatch, capsys):
    from conftest import TINY_RUN, load_script
    from wkd_hf import run as run_module
    from wkd_hf import training
    from wkd_hf.processes import LOCK_FILE

    monkeypatch.delenv("WKD_HF_TRACEBACK", raising=False)
    monkeypatch.setattr(run_module, "stop_with_launcher", lambda: None)  # keep pytest's SIGTERM
    real_step, calls = training._train_step, []

    def step_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(training, "_train_step", step_then_ctrl_c)
    distill, out = load_script("distill"), tmp_path / "student"
    argv = ["--teacher_model_name_or_path", str(pix2pix_teacher), "--train_data_dir",
            str(photo_pairs), "--direction", "BtoA", "--output_dir", str(out), *TINY_RUN,
            "--max_train_steps", "10",
            "--checkpointing_steps", "2", "--student_ngf", "4", "--discriminator_ndf", "4",
            "--wkd_levels", "3"]
    assert run_module.run_cli(distill.main, lambda: distill.parse_args(argv)) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert re.search(r"(?i)stopped at step 2\b.*--resume_from_checkpoint latest",
                     err.strip().splitlines()[-1]), err[-2000:]
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-2"]
    assert not list(out.glob(".checkpoint-*")) and not (out / LOCK_FILE).exists()
