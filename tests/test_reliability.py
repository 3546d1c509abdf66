"""A killed run resumes exactly, a save killed half-way leaves a loadable `latest`, NaN losses stop
the run, and mistakes in the inputs end with one clear message (real subprocesses, real SIGKILL;
data: ``photo_pairs``, the demo's photos as side-by-side pairs, built on any machine)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import ROOT
from wkd_hf import ResnetGenerator
from wkd_hf.checkpointing import list_checkpoints, resolve_resume_checkpoint

SCRIPT = str(ROOT / "training_scripts" / "distill.py")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def distill_command(teacher, data, out, *extra):
    return [sys.executable, SCRIPT, "--teacher_model_name_or_path", str(teacher),
            "--train_data_dir", str(data), "--direction", "BtoA", "--output_dir", str(out),
            "--resolution", "32", "--train_batch_size", "2", "--validation_split", "2",
            "--num_validation_images", "2", "--validation_steps", "0", "--report_to", "none",
            "--student_ngf", "4", "--discriminator_ndf", "4", "--wkd_levels", "3",
            "--lr_scheduler", "constant", "--seed", "3", *extra]


def run(command, timeout=300):
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=timeout)


def weights(folder):
    return load_file(Path(folder) / "diffusion_pytorch_model.safetensors")


@pytest.mark.parametrize("streaming", [False, True], ids=["map-style", "streaming"])
def test_sigkill_then_resume_is_bit_identical(tmp_path, photo_pairs, pix2pix_teacher,
                                              streaming):
    extra = ["--streaming"] if streaming else []
    reference = tmp_path / "reference"
    done = run(distill_command(pix2pix_teacher, photo_pairs, reference, "--max_train_steps",
                               "12", "--checkpointing_steps", "0", *extra))
    assert done.returncode == 0, done.stderr[-2000:]
    # The same run, made long so it is still training when killed right after checkpoint-3.
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        distill_command(pix2pix_teacher, photo_pairs, killed, "--max_train_steps", "100000",
                        "--checkpointing_steps", "3", *extra),
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not list_checkpoints(killed) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    latest = resolve_resume_checkpoint(str(killed), "latest")
    assert latest is not None and int(latest.name.split("-")[1]) < 12
    resumed = run(distill_command(pix2pix_teacher, photo_pairs, killed, "--max_train_steps",
                                  "12", "--checkpointing_steps", "3",
                                  "--resume_from_checkpoint", "latest", *extra))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, got = weights(reference), weights(killed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), f"{key} differs after kill + resume"


KILL_DURING_SAVE = """
import os, signal, sys, torch
from accelerate import Accelerator
from wkd_hf.checkpointing import LoopState, save_checkpoint
out = sys.argv[1]
accelerator = Accelerator(cpu=True)
model = accelerator.prepare(torch.nn.Linear(64, 64))
state = LoopState()
accelerator.register_for_checkpointing(state)
state.global_step = 1
save_checkpoint(accelerator, out, 1)
original = accelerator.save_state
def dying_save(path, **kwargs):
    original(path, **kwargs)                   # files written into the temporary folder ...
    os.kill(os.getpid(), signal.SIGKILL)       # ... and the process dies before the rename
accelerator.save_state = dying_save
state.global_step = 2
save_checkpoint(accelerator, out, 2)
"""


def test_sigkill_during_a_save_keeps_latest_loadable(tmp_path):
    result = run([sys.executable, "-c", KILL_DURING_SAVE, str(tmp_path)])
    assert result.returncode == -signal.SIGKILL
    assert (tmp_path / ".checkpoint-2.tmp").is_dir()
    latest = resolve_resume_checkpoint(str(tmp_path), "latest")
    assert latest.name == "checkpoint-1"
    from accelerate import Accelerator

    from wkd_hf.checkpointing import LoopState

    accelerator = Accelerator(cpu=True)
    accelerator.prepare(torch.nn.Linear(64, 64))
    state = LoopState()
    accelerator.register_for_checkpointing(state)
    accelerator.load_state(str(latest))
    assert state.global_step == 1


def test_nan_loss_stops_naming_the_loss_and_keeps_the_checkpoint(tmp_path, photo_pairs,
                                                                 pix2pix_teacher):
    teacher = ResnetGenerator.from_pretrained(pix2pix_teacher)
    with torch.no_grad():
        teacher.model[1].weight.fill_(float("nan"))  # the teacher's first conv
    teacher.save_pretrained(tmp_path / "nan_teacher")
    result = run(distill_command(tmp_path / "nan_teacher", photo_pairs, tmp_path / "out",
                                 "--max_train_steps", "4", "--checkpointing_steps", "1"))
    assert result.returncode == 1
    assert "error: Loss wkd became non-finite (NaN/Inf) at step 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "out").glob("*.safetensors"))
    skipped = run(distill_command(tmp_path / "nan_teacher", photo_pairs, tmp_path / "skip",
                                  "--max_train_steps", "2", "--skip_nan_steps", "1"))
    assert skipped.returncode == 1 and "1/1 allowed" in skipped.stderr


def write_bad_images(folder: Path, good: Path) -> None:
    folder.mkdir()
    for path in sorted(good.glob("*.jpg"))[:6]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "truncated.jpg").write_bytes((good / sorted(os.listdir(good))[0]).read_bytes()[:500])
    (folder / "garbage.jpg").write_bytes(b"not an image at all")
    (folder / ".DS_Store").write_bytes(b"\0\1\2")
    (folder / "notes.txt").write_text("hello")
    Image.new("L", (512, 256), 128).save(folder / "gray.png")
    Image.new("RGBA", (512, 256), (10, 20, 30, 128)).save(folder / "rgba.png")


def test_bad_images_are_skipped_and_named(tmp_path, photo_pairs, pix2pix_teacher):
    data = tmp_path / "data"
    write_bad_images(data, photo_pairs)
    no_validation = ["--validation_split", "0"]  # every bad file stays in the training rows
    result = run(distill_command(pix2pix_teacher, data, tmp_path / "out", "--max_train_steps",
                                 "6", "--max_bad_fraction", "0.5", *no_validation))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "garbage.jpg" in result.stderr and "truncated.jpg" in result.stderr
    strict = run(distill_command(pix2pix_teacher, data, tmp_path / "strict", "--max_train_steps",
                                 "40", "--max_bad_fraction", "0.01", "--train_batch_size", "1",
                                 *no_validation))
    assert strict.returncode == 1, strict.stderr[-2000:]
    assert "error:" in strict.stderr and "Traceback" not in strict.stderr


@pytest.mark.parametrize("case", ["column", "teacher_path", "channels", "levels", "batch",
                                  "hub_offline"])
def test_input_mistakes_end_with_one_clear_message(tmp_path, photo_pairs, pix2pix_teacher,
                                                   case):
    teacher, extra = pix2pix_teacher, []
    if case == "column":
        extra = ["--source_column", "photo"]
        expect = "image"  # the message lists the columns that exist
    elif case == "teacher_path":
        teacher, expect = tmp_path, "config.json"
    elif case == "channels":
        teacher = tmp_path / "gray_teacher"
        ResnetGenerator(in_channels=1, out_channels=1, ngf=4, n_blocks=1).save_pretrained(teacher)
        expect = "1 -> 1 channels"
    elif case == "levels":
        extra, expect = ["--wkd_levels", "6"], "levels"
    elif case == "batch":
        extra, expect = ["--train_batch_size", "0"], "--train_batch_size must be > 0"
    else:
        teacher, expect = "someone/not-downloaded-teacher", "HF_HUB_OFFLINE"
    command = distill_command(teacher, photo_pairs, tmp_path / "out", "--max_train_steps", "1")
    result = run(command + extra)
    assert result.returncode != 0
    assert expect in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    # stopped at once (``run``'s timeout catches a hang; no wall-clock bound): no step finished
    assert not list((tmp_path / "out").glob("*.safetensors")) and "Wrote " not in result.stderr


def test_token_never_reaches_files_or_logs(tmp_path, photo_pairs, pix2pix_teacher):
    token = "hf_NEVER_WRITE_ME_987"
    out = tmp_path / "out"
    result = run(distill_command(pix2pix_teacher, photo_pairs, out, "--max_train_steps", "2",
                                 "--checkpointing_steps", "1", "--hub_token", token,
                                 "--report_to", "tensorboard"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert token not in result.stdout and token not in result.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any("events" in p.name for p in files) and any("checkpoint-" in str(p) for p in files)
    for path in files:
        assert token.encode() not in path.read_bytes(), path
