"""A run stops cleanly: Ctrl-C ends with one line, and a trainer whose ``accelerate launch`` dies
stops instead of training on as an orphan (real subprocesses, real signals)."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from wkd_hf.checkpointing import list_checkpoints
from wkd_hf.processes import LOCK_FILE

SCRIPT = str(ROOT / "training_scripts" / "distill.py")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]

# run_cli's last line: "Stopped at step N (Ctrl-C). Resume with --resume_from_checkpoint latest"
STOPPED = re.compile(r"(?i)stopped at step \d+\b.*--resume_from_checkpoint latest")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals")


def long_run(teacher, data, out):
    return [SCRIPT, "--teacher_model_name_or_path", str(teacher), "--train_data_dir", str(data),
            "--direction", "BtoA", "--output_dir", str(out), "--resolution", "32",
            "--train_batch_size", "2", "--validation_split", "2", "--num_validation_images", "2",
            "--validation_steps", "0", "--report_to", "none", "--student_ngf", "4",
            "--discriminator_ndf", "4", "--wkd_levels", "3", "--seed", "3",
            "--max_train_steps", "100000", "--checkpointing_steps", "2"]


def wait_for_checkpoint(out: Path, process: subprocess.Popen) -> None:
    deadline = time.time() + 240
    while not list_checkpoints(out) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert list_checkpoints(out), "the run wrote no checkpoint"


def _sigint_as_at_a_terminal() -> None:
    """A shell without job control starts background jobs with SIGINT ignored (POSIX), and Python
    keeps an inherited ignore; a test run from such a job would see Ctrl-C do nothing. The user
    at a terminal has the default disposition: give the trainer that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_ctrl_c_stops_with_one_line(tmp_path, photo_pairs, pix2pix_teacher):
    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, *long_run(pix2pix_teacher, photo_pairs, out)],
                                   env=ENV, stdout=subprocess.DEVNULL, stderr=stderr,
                                   preexec_fn=_sigint_as_at_a_terminal)
        wait_for_checkpoint(out, process)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    err = log.read_text()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert STOPPED.search(err.strip().splitlines()[-1]), err[-3000:]
    assert not list(out.glob(".checkpoint-*")) and not (out / LOCK_FILE).exists()


def test_trainer_stops_when_its_launcher_is_killed(tmp_path, photo_pairs, pix2pix_teacher):
    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        launcher = subprocess.Popen([*LAUNCH, *long_run(pix2pix_teacher, photo_pairs, out)],
                                    env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
    trainer = None
    try:
        wait_for_checkpoint(out, launcher)
        trainer = int(children.read_text().split()[0])
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=30)
        deadline = time.time() + 60
        while alive(trainer) and time.time() < deadline:
            time.sleep(0.1)
        assert not alive(trainer), "the trainer kept running after its launcher died"
        written = sorted(p.name for p in out.iterdir())
        time.sleep(2)
        assert sorted(p.name for p in out.iterdir()) == written  # nothing writes any more
        assert not list(out.glob(".checkpoint-*")) and not (out / LOCK_FILE).exists()
        assert STOPPED.search(log.read_text())
    finally:
        for pid in (launcher.pid, trainer):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
