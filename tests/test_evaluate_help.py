"""evaluate.py --help lists only the data flags evaluation uses; the training scripts keep all."""

import contextlib
import io
import re

import pytest

from conftest import load_script

TRAINING_ONLY = ("--load_size", "--random_flip", "--no-random_flip", "--shuffle_buffer_size",
                 "--max_train_samples", "--validation_split", "--max_train_steps")


def _help(script: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        load_script(script).parse_args(["--help"])
    return out.getvalue()


def _flags(text: str) -> set[str]:
    """The flags --help defines (each option line starts with them)."""
    return {flag for line in text.splitlines() if (m := re.match(r"\s+(--\S+(?:, --\S+)*)", line))
            for flag in re.findall(r"--[\w-]+", m.group(1))}


def test_evaluate_help_has_no_training_only_flags():
    text = _help("evaluate")
    flags = _flags(text)
    assert not flags & set(TRAINING_ONLY), flags & set(TRAINING_ONLY)
    assert {"--streaming", "--resolution", "--max_image_pixels"} <= flags
    assert "max_train_steps" not in text  # --streaming's help no longer asks for it


def test_training_scripts_keep_the_training_data_flags():
    for script in ("train_teacher", "distill"):
        text = _help(script)
        assert set(TRAINING_ONLY) <= _flags(text), script
        assert "needs --max_train_steps" in " ".join(text.split())
