"""Settings given to the launcher reach the record: ``accelerate launch --mixed_precision bf16``
(which tells the script through ACCELERATE_MIXED_PRECISION) trains in bf16, and args.json and the
card's command must say so, so that re-running the card trains the same way."""

import argparse
import json

import pytest
from accelerate.state import AcceleratorState

from huggingface_hub import ModelCard

from conftest import TINY_RUN, run_script
from wkd_hf.launcher_record import command_with_launcher_settings


@pytest.fixture
def fresh_accelerator_state():
    """A launched process reads ACCELERATE_MIXED_PRECISION once; accelerate's state is a
    singleton, so forget earlier tests' state before, and leave no bf16 behind after."""
    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def test_launcher_precision_reaches_args_json_and_the_card_command(
        tmp_path, photo_pairs, monkeypatch, fresh_accelerator_state):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what `accelerate launch` sets
    out = tmp_path / "teacher"
    run_script("train_teacher", ["--train_data_dir", str(photo_pairs), "--direction", "BtoA",
                                 "--output_dir", str(out), "--ngf", "4", "--n_blocks", "1",
                                 "--ndf", "4", *TINY_RUN])
    saved = json.loads((out / "args.json").read_text())
    assert saved["mixed_precision"] == "bf16" and saved["num_processes"] == 1
    card = ModelCard.load(out / "README.md").text
    command = next(line for line in card.splitlines() if "training_scripts/train_teacher.py" in line)
    assert "--mixed_precision bf16" in command


def test_command_spells_out_precision_and_processes_once():
    base = "accelerate launch training_scripts/distill.py --output_dir out"
    args = argparse.Namespace(mixed_precision="fp16", num_processes=4)
    assert command_with_launcher_settings(base, args) == (
        "accelerate launch --multi_gpu --num_processes 4 training_scripts/distill.py "
        "--output_dir out --mixed_precision fp16")
    given = base + " --mixed_precision fp16"
    assert command_with_launcher_settings(given, args).count("--mixed_precision") == 1
    quiet = argparse.Namespace(mixed_precision="no", num_processes=1)
    assert command_with_launcher_settings(base, quiet) == base
