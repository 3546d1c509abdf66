"""The run record: the arguments a run was started with, without secrets (``args.json``, the
card's command), and which of them a resumed run must share with its checkpoint. It reads an
``argparse.Namespace`` but knows nothing of the argument schema (:mod:`wkd_hf.script_args`)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from typing import Any

from .names import ARGS_FILE

SECRET_ARGS = ("hub_token",)
TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{6,}")  # the shape of a Hugging Face access token
# Arguments that say where and how long a run goes, not what it trains: a resumed run may change
# them. Every other argument shapes the models or the method and must match the checkpoint's.
RUN_ONLY_ARGS = frozenset({
    "output_dir", "max_train_steps", "num_train_epochs", "resume_from_checkpoint",
    "checkpointing_steps", "checkpoints_total_limit", "report_to", "validation_steps",
    "num_validation_images", "push_to_hub", "hub_model_id", "hub_token", "hub_private_repo",
    "hub_space_id",
    "train_if_hub_unreachable", "keep_best", "overwrite_output_dir",
    "dataset_name", "dataset_config_name", "train_data_dir", "cache_dir",
    "dataloader_num_workers", "max_bad_fraction", "max_image_pixels", "skip_nan_steps", "cpu",
    "teacher_model_name_or_path", "teacher_subfolder", "teacher_discriminator_path",
    "teacher_hub_id", "logging_steps", "save_on_each_node", "sync_batchnorm",
    "num_processes"})


def public_args(args: argparse.Namespace) -> dict[str, Any]:
    """The run arguments without secrets (what ``args.json`` and model cards may show)."""
    secrets = [value for name in SECRET_ARGS if (value := getattr(args, name, None))]
    return {k: _mask(v, secrets) if isinstance(v, str) else v for k, v in vars(args).items()
            if k not in SECRET_ARGS}


def run_settings(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments that shape the models and the method (``public_args`` minus run-only ones):
    a checkpoint resumes only under the same ones."""
    return {k: v for k, v in arguments.items() if k not in RUN_ONLY_ARGS}


def _mask(word: str, secrets: list[str]) -> str:
    for secret in secrets:
        word = word.replace(secret, "***")
    return word


def save_args(args: argparse.Namespace, output_dir: str) -> str:
    """Write ``args.json`` (no token) into ``output_dir``; returns its path."""
    path = os.path.join(output_dir, ARGS_FILE)
    with open(path, "w") as handle:
        json.dump(public_args(args), handle, indent=2, sort_keys=True, default=str)
    return path


def command_line(script: str, argv: list[str] | None = None, secrets=()) -> str:
    """The command that launched this run (it goes into the model card), with every word that
    holds a ``secrets`` value (the parsed token, however it was spelled) or follows
    ``--hub_token`` masked."""
    words = [f"training_scripts/{script}", *(sys.argv[1:] if argv is None else argv)]
    secrets = [secret for secret in secrets if secret]
    masked = []
    for word in words:
        if masked and masked[-1] == "--hub_token":
            word = "***"
        elif word.startswith("--hub_token="):
            word = "--hub_token=***"
        masked.append(_mask(word, secrets))
    return "accelerate launch " + " ".join(shlex.quote(w) for w in masked)
