"""The Hub token never reaches a file, a log or the model card, however it is spelled; resuming
never runs code from a checkpoint (every pickle is checked weights-only before accelerate opens it,
and our own state is JSON + safetensors)."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, load_script, run_script
from wkd_hf.errors import WKDError
from wkd_hf.processes import release_output_dirs
from wkd_hf.run_record import command_line

SCRIPT = str(ROOT / "training_scripts" / "distill.py")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TOKEN = "hf_NEVERWRITEME987abc"


def distill_argv(teacher, data, out, *extra):
    return ["--teacher_model_name_or_path", str(teacher), "--train_data_dir", str(data),
            "--direction", "BtoA", "--output_dir", str(out), "--resolution", "32",
            "--train_batch_size", "2", "--validation_split", "2", "--num_validation_images", "2",
            "--validation_steps", "0", "--report_to", "none", "--student_ngf", "4",
            "--discriminator_ndf", "4", "--wkd_levels", "3", "--seed", "3", *extra]


# ----------------------------------------------------------------------------- the token
@pytest.mark.parametrize("spelling", [["--hub_tok", TOKEN], [f"--hub_to={TOKEN}"]])
def test_abbreviated_token_flags_are_errors_that_do_not_echo_the_token(capsys, spelling):
    for script in ("distill", "train_teacher"):
        with pytest.raises(SystemExit) as stopped:
            load_script(script).parse_args(
                ["--teacher_model_name_or_path", "t", "--train_data_dir", "d", "--output_dir",
                 "o", *spelling])
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert "unrecognized arguments" in err and TOKEN not in err and "hf_***" in err


def test_command_line_masks_the_token_value_in_every_spelling():
    spellings = ["--hub_token", TOKEN, f"--hub_token={TOKEN}", "--hub_tok", TOKEN,
                 f"--hub_to={TOKEN}", f"--hub_t={TOKEN}"]
    line = command_line("distill.py", ["--seed", "0", *spellings], secrets=[TOKEN])
    assert TOKEN not in line and line.count("***") == 5 and "--seed 0" in line


@pytest.mark.parametrize("spelling", [[f"--hub_token={TOKEN}"], [f"--hub_to={TOKEN}"]],
                         ids=["exact", "abbreviated"])
def test_token_reaches_no_file_and_no_log(tmp_path, photo_pairs, pix2pix_teacher, spelling):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, SCRIPT, *distill_argv(pix2pix_teacher, photo_pairs, out,
                                               "--max_train_steps", "2", "--checkpointing_steps",
                                               "1", "--report_to", "tensorboard", *spelling)],
        capture_output=True, text=True, env=ENV, timeout=300)
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    if spelling[0].startswith("--hub_token="):
        assert result.returncode == 0, result.stderr[-2000:]
        assert "--hub_token" not in (out / "README.md").read_text()  # the card's recipe drops it
        assert "log in once with `hf auth login` or set HF_TOKEN instead" in result.stderr
    else:
        assert result.returncode == 2 and "unrecognized arguments: --hub_to=hf_***" in result.stderr
    for path in out.rglob("*") if out.exists() else []:
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


# ----------------------------------------------------------------------------- resuming
class Payload:
    """A pickle that runs code when loaded: it creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, photo_pairs, pix2pix_teacher):
    out = tmp_path_factory.mktemp("security") / "run"
    try:
        run_script("distill", distill_argv(pix2pix_teacher, photo_pairs, out,
                                           "--max_train_steps", "2", "--checkpointing_steps", "2"))
    finally:
        release_output_dirs()
    return out


def test_our_checkpoint_state_is_json_and_safetensors(finished_run):
    names = {p.name for p in (finished_run / "checkpoint-2").iterdir()}
    ours = {"training_state.json", "args.json"}
    accelerates_pickles = {"optimizer.bin", "optimizer_1.bin", "random_states_0.pkl"}
    assert ours | accelerates_pickles <= names
    assert not [n for n in names - ours - accelerates_pickles if not n.endswith(".safetensors")]


@pytest.mark.parametrize("name", ["optimizer.bin", "optimizer_1.bin", "random_states_0.pkl",
                                  "custom_checkpoint_0.pkl", "scheduler.bin"])
def test_a_payload_in_any_pickle_of_a_checkpoint_never_runs(tmp_path, finished_run,
                                                            photo_pairs, pix2pix_teacher, name):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    marker = tmp_path / "PAYLOAD_RAN"
    torch.save({"state": Payload(marker)}, out / "checkpoint-2" / name)
    torch.load(out / "checkpoint-2" / name, weights_only=False)  # the payload is live ...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(WKDError, match=rf"refusing to resume from .*checkpoint-2: {name} .*"
                                       r"GLOBAL posix.system"):
        try:
            run_script("distill", distill_argv(pix2pix_teacher, photo_pairs, out,
                                               "--max_train_steps", "3",
                                               "--resume_from_checkpoint", "latest"))
        finally:
            release_output_dirs()
    assert not marker.exists()  # ... and resuming never ran it
