"""Checkpoints and output folders that never lose work: one run per folder, no resume that prunes
newer checkpoints, args.json always next to its weights, settings checked before a resume, clear
one-line errors for a full disk or an inconsistent checkpoint, a validated
--checkpoints_total_limit.
"""

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from accelerate import Accelerator

from conftest import ROOT, load_script, run_script
from wkd_hf import load_pretrained_model
from wkd_hf.checkpointing import (
    LoopState,
    list_checkpoints,
    load_run_state,
    resolve_resume_checkpoint,
    save_checkpoint,
    save_run_state,
)
from wkd_hf.distillation import ImagePool
from wkd_hf.errors import WKDError
from wkd_hf.processes import LOCK_FILE, release_output_dirs
from wkd_hf.run import run_cli
from wkd_hf.script_args import check_args

SCRIPT = str(ROOT / "training_scripts" / "distill.py")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def distill_argv(teacher, data, out, *extra):
    return ["--teacher_model_name_or_path", str(teacher), "--train_data_dir", str(data),
            "--direction", "BtoA", "--output_dir", str(out), "--resolution", "32",
            "--train_batch_size", "2", "--validation_split", "2", "--num_validation_images", "2",
            "--validation_steps", "0", "--report_to", "none", "--student_ngf", "4",
            "--discriminator_ndf", "4", "--wkd_levels", "3", "--lr_scheduler", "constant",
            "--seed", "3", *extra]


def distill(*argv):
    """A tiny distill.py run in this process (its output-folder lock released at the end)."""
    try:
        return run_script("distill", distill_argv(*argv))
    finally:
        release_output_dirs()


# ----------------------------------------------------------------------------- item 9
def test_checkpoints_total_limit_is_validated_and_documented(tmp_path, capsys):
    module = load_script("distill")
    argv = ["--teacher_model_name_or_path", "t", "--train_data_dir", str(tmp_path),
            "--output_dir", str(tmp_path.parent / "out")]
    with pytest.raises(SystemExit, match=r"--checkpoints_total_limit must be >= 0 \(0 keeps"):
        check_args(module.parse_args(argv + ["--checkpoints_total_limit", "-1"]))
    check_args(module.parse_args(argv + ["--checkpoints_total_limit", "0"]))
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    assert "0 keeps them all" in " ".join(capsys.readouterr().out.split())


# ----------------------------------------------------------------------------- item 4
def test_resuming_an_older_checkpoint_while_newer_ones_exist_is_refused(tmp_path):
    for step in (3, 6, 9):
        (tmp_path / f"checkpoint-{step}").mkdir()
    with pytest.raises(WKDError, match=r"checkpoint-6, checkpoint-9.*Move them out"):
        resolve_resume_checkpoint(str(tmp_path), str(tmp_path / "checkpoint-3"))
    assert resolve_resume_checkpoint(str(tmp_path), "latest").name == "checkpoint-9"
    assert resolve_resume_checkpoint(str(tmp_path), str(tmp_path / "checkpoint-9")).name == \
        "checkpoint-9"


def test_a_new_run_into_a_folder_with_checkpoints_is_refused_or_overwrites(tmp_path):
    """Without --resume_from_checkpoint, an earlier run's checkpoints would be partly overwritten
    and ``latest`` would point at the rest: refused, unless --overwrite_output_dir deletes them."""
    out = tmp_path / "out"
    for step in (3, 6):
        (out / f"checkpoint-{step}").mkdir(parents=True)
    args = load_script("distill").parse_args(distill_argv("t", tmp_path, out))
    from wkd_hf.run import _check_fresh_output_dir

    Accelerator(cpu=True)  # accelerate's logger needs its state, as in a run

    with pytest.raises(WKDError, match=r"checkpoint-3, checkpoint-6.*--overwrite_output_dir"):
        _check_fresh_output_dir(args)
    args.resume_from_checkpoint = "latest"
    _check_fresh_output_dir(args)  # resuming is what the folder is for
    assert len(list_checkpoints(out)) == 2
    args.resume_from_checkpoint, args.overwrite_output_dir = None, True
    _check_fresh_output_dir(args)
    assert list_checkpoints(out) == []


# ----------------------------------------------------------------------------- item 8
def _failing_torch_save(error, monkeypatch):
    """torch.save that writes one file, then fails mid-save the way a full disk does."""
    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) > 1:
            with open(f, "wb") as handle:
                handle.write(b"PK\x03\x04 partial")
            raise error
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing "
                 "file data/0: file write failed")], ids=["ENOSPC", "torch"])
def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, error):
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(torch.nn.Linear(2, 2))
    optimizer = accelerator.prepare(torch.optim.Adam(model.parameters()))
    assert optimizer is not None
    save_checkpoint(accelerator, str(tmp_path), 1)
    _failing_torch_save(error, monkeypatch)
    with pytest.raises(WKDError, match=r"no space left on device while writing .*checkpoint-2; "
                                       r".*\(checkpoint-1\) are kept"):
        save_checkpoint(accelerator, str(tmp_path), 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1"]


def test_disk_full_during_the_final_save_is_one_line_and_args_json_stays(
        tmp_path, photo_pairs, pix2pix_teacher, monkeypatch):
    """Items 5 and 8: a second run over a finished folder (--overwrite_output_dir) dies on a full
    disk at export: the folder is marked incomplete (no args.json describing other weights, and
    loading it is refused); each checkpoint has its own args.json."""
    import safetensors.torch
    from safetensors import SafetensorError

    out = tmp_path / "out"
    distill(pix2pix_teacher, photo_pairs, out, "--max_train_steps", "1",
            "--checkpointing_steps", "0")
    assert json.loads((out / "args.json").read_text())["student_ngf"] == 4

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(WKDError, match=r"no space left on device while writing the final model "
                                       r"into .*checkpoint-1\) are intact"):
        distill(pix2pix_teacher, photo_pairs, out, "--max_train_steps", "1",
                "--checkpointing_steps", "1", "--student_ngf", "8", "--overwrite_output_dir")
    assert not (out / "args.json").exists()
    with pytest.raises(WKDError, match="unfinished export"):
        load_pretrained_model(out)
    assert json.loads((out / "checkpoint-1" / "args.json").read_text())["student_ngf"] == 8


# ----------------------------------------------------------------------------- item 7
def test_resume_with_other_settings_is_one_line_naming_them(tmp_path, photo_pairs,
                                                            pix2pix_teacher):
    out = tmp_path / "out"
    distill(pix2pix_teacher, photo_pairs, out, "--max_train_steps", "2",
            "--checkpointing_steps", "2")
    resume = ["--max_train_steps", "3", "--resume_from_checkpoint", "latest"]
    with pytest.raises(WKDError, match=r"other settings: --lambda_wkd 0.4 \(now 0.5\), "
                                       r"--student_ngf 4 \(now 8\)\. Resume with the same"):
        distill(pix2pix_teacher, photo_pairs, out, *resume, "--student_ngf", "8",
                "--lambda_wkd", "0.5")
    # A checkpoint whose loop state disagrees with its name is the project's error, not a bug.
    state_file = out / "checkpoint-2" / "training_state.json"
    state = json.loads(state_file.read_text())
    state["loop"]["global_step"] = 7
    state_file.write_text(json.dumps(state))
    with pytest.raises(WKDError, match="holds step 7, not 2"):
        distill(pix2pix_teacher, photo_pairs, out, *resume)


def test_run_cli_prints_project_errors_in_one_line_and_leaves_library_errors(capsys):
    def project_error(args):
        raise WKDError("checkpoint-6 holds step 7, not 6: the checkpoint is inconsistent.")

    def library_error(args):
        raise RuntimeError("a library bug")

    assert run_cli(project_error, lambda: None) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint-6 holds step 7") and "Traceback" not in err
    with pytest.raises(RuntimeError, match="a library bug"):
        run_cli(library_error, lambda: None)


# ----------------------------------------------------------------------------- item 2 (pools)
def test_image_pools_round_trip_through_safetensors_and_json(tmp_path):
    accelerator = Accelerator(cpu=True)
    pools = {"a": ImagePool(5), "b": ImagePool(5)}
    pools["a"].query(torch.randn(3, 3, 4, 4))
    state, schedulers = LoopState(global_step=4, epoch=1), []
    args = argparse.Namespace(hub_token=None, seed=0)
    save_run_state(tmp_path, accelerator, state, schedulers, pools, args)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "args.json", "image_pools_0.safetensors", "training_state.json"]
    restored_state, restored = LoopState(), {"a": ImagePool(1), "b": ImagePool(1)}
    load_run_state(tmp_path, accelerator, restored_state, schedulers, restored)
    assert restored_state == state
    assert restored["a"].pool_size == 5 and len(restored["b"].images) == 0
    for saved, loaded in zip(pools["a"].images, restored["a"].images, strict=True):
        assert torch.equal(saved, loaded)


# ----------------------------------------------------------------------------- item 3
def test_two_runs_on_one_output_dir(tmp_path, photo_pairs, pix2pix_teacher, caplog):
    """A second run on a busy folder stops naming the owner's pid; a dead owner's lock is taken
    over with a warning."""
    out = tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, SCRIPT, *distill_argv(pix2pix_teacher, photo_pairs, out,
                                               "--max_train_steps", "100000",
                                               "--checkpointing_steps", "2")],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not list_checkpoints(out) and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert list_checkpoints(out), "the first run wrote no checkpoint"
        with pytest.raises(WKDError, match=rf"in use by another run \(pid {first.pid}\)"):
            distill(pix2pix_teacher, photo_pairs, out, "--max_train_steps", "1")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / LOCK_FILE).read_text().strip() == str(first.pid)  # left behind by SIGKILL
    latest = resolve_resume_checkpoint(str(out), "latest")
    step = int(latest.name.split("-")[1])
    with caplog.at_level("WARNING"):
        distill(pix2pix_teacher, photo_pairs, out, "--max_train_steps", str(step + 1),
                "--checkpointing_steps", "2", "--resume_from_checkpoint", "latest")
    assert f"(pid {first.pid}) is gone" in caplog.text
    assert not (out / LOCK_FILE).exists()


def test_cycle_checkpoint_keeps_its_image_pools_in_safetensors(tmp_path, photo_domains,
                                                               cycle_teacher):
    """Item 2 end to end: a CycleGAN checkpoint holds the pools as safetensors (full: pool_size 2,
    batch 1, 2 steps) and their sizes in JSON, no pickle of ours, and resumes from them.
    """
    from safetensors.torch import load_file

    out = tmp_path / "run"

    def cycle(*extra):
        try:
            run_script("distill", [
                "--mode", "cycle", "--teacher_model_name_or_path", str(cycle_teacher),
                "--train_data_dir", str(photo_domains), "--output_dir", str(out),
                "--resolution", "32", "--train_batch_size", "1", "--validation_split", "2",
                "--num_validation_images", "1", "--validation_steps", "0", "--report_to",
                "none", "--student_ngf", "4", "--discriminator_ndf", "4", "--wkd_levels", "3",
                "--pool_size", "2", "--checkpointing_steps", "2", "--seed", "5", *extra])
        finally:
            release_output_dirs()

    cycle("--max_train_steps", "2")
    checkpoint = out / "checkpoint-2"
    pools = load_file(checkpoint / "image_pools_0.safetensors")
    images = {k: v for k, v in pools.items() if not k.endswith(".rng_state")}
    assert len(images) == 2 and all(p.shape == (2, 3, 32, 32) for p in images.values())
    assert {f"{k}.rng_state" for k in images} == pools.keys() - images.keys()
    saved = json.loads((checkpoint / "training_state.json").read_text())
    assert saved["pool_sizes"] == dict.fromkeys(images, 2) and saved["loop"]["global_step"] == 2
    assert len(saved["schedulers"]) == 2
    assert not [p for p in checkpoint.iterdir() if p.name.startswith("custom_checkpoint")]
    cycle("--max_train_steps", "3", "--resume_from_checkpoint", "latest")
    assert (out / "checkpoint-2").is_dir() and (out / "generator_a2b").is_dir()

