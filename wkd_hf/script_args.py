"""Command-line arguments that ``train_teacher.py`` and ``distill.py`` share, and their checks.

Run settings live here (argparse, echoed to ``args.json`` without the token); architecture lives
in each model's ``config.json`` and method settings in ``wkd_config.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

SECRET_ARGS = ("hub_token",)


def add_data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--dataset_name", default=None,
                       help="A Hub dataset id or a local dataset folder (loaded with datasets).")
    group.add_argument("--dataset_config_name", default=None)
    group.add_argument("--train_data_dir", default=None,
                       help="A local folder: side-by-side AB images (pix2pix), an imagefolder with "
                            "metadata.jsonl, parquet files, or trainA/ + trainB/ (unpaired).")
    group.add_argument("--source_column", default=None,
                       help="Paired: column of the input images (auto-detected when omitted).")
    group.add_argument("--target_column", default=None,
                       help="Paired: column of the target images (auto-detected when omitted).")
    group.add_argument("--domain_a_column", default=None, help="Unpaired: column of domain A.")
    group.add_argument("--domain_b_column", default=None, help="Unpaired: column of domain B.")
    group.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                       help="AtoB translates A (left half / imageA) into B; facades labels->photo "
                            "is BtoA.")
    group.add_argument("--resolution", type=int, default=256, help="Training crop size.")
    group.add_argument("--load_size", type=int, default=None,
                       help="Resize before the random crop (pix2pix: 286 for 256). Default: "
                            "--resolution (no jitter).")
    group.add_argument("--no_flip", action="store_true", help="No random horizontal flips.")
    group.add_argument("--streaming", action="store_true", help="Stream the data (datasets).")
    group.add_argument("--shuffle_buffer_size", type=int, default=1000)
    group.add_argument("--max_train_samples", type=int, default=None)
    group.add_argument("--validation_split", type=float, default=0.05,
                       help="Rows carved from train for validation: a fraction in (0, 1) or a "
                            "count >= 1 (streaming: a count). Never select models on test.")
    group.add_argument("--dataloader_num_workers", type=int, default=0)
    group.add_argument("--max_bad_fraction", type=float, default=0.1,
                       help="Stop when more than this share of images is unreadable.")
    group.add_argument("--cache_dir", default=None)


def add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--train_batch_size", type=int, default=1)
    group.add_argument("--max_train_steps", type=int, default=None,
                       help="Total optimizer steps (overrides --num_train_epochs).")
    group.add_argument("--num_train_epochs", type=int, default=200)
    group.add_argument("--learning_rate", type=float, default=2e-4)
    group.add_argument("--lr_scheduler", choices=("constant", "linear"), default="linear",
                       help="linear = pix2pix's constant-then-linear-decay.")
    group.add_argument("--lr_decay_steps", type=int, default=None,
                       help="Steps of linear decay at the end (default: half the run).")
    group.add_argument("--adam_beta1", type=float, default=0.5)
    group.add_argument("--adam_beta2", type=float, default=0.999)
    group.add_argument("--gradient_accumulation_steps", type=int, default=1)
    group.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--cpu", action="store_true", help="Train on the CPU even if a GPU is there.")
    group.add_argument("--skip_nan_steps", type=int, default=0,
                       help="Batches with a NaN/Inf loss to skip before stopping (default: stop).")
    group.add_argument("--gan_mode", choices=("lsgan", "vanilla", "hinge"), default="lsgan")
    group.add_argument("--lambda_gan", type=float, default=1.0)


def add_state_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("state, logging and Hub")
    group.add_argument("--output_dir", required=True)
    group.add_argument("--checkpointing_steps", type=int, default=500)
    group.add_argument("--checkpoints_total_limit", type=int, default=3)
    group.add_argument("--resume_from_checkpoint", default=None,
                       help="'latest' or a checkpoint-N folder.")
    group.add_argument("--report_to", default="tensorboard",
                       help="An accelerate tracker (tensorboard, wandb, ...) or 'none'.")
    group.add_argument("--validation_steps", type=int, default=500,
                       help="Save a validation grid every N steps (0: only at the end).")
    group.add_argument("--num_validation_images", type=int, default=4)
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", default=None)
    group.add_argument("--hub_token", default=None,
                       help="Prefer `hf auth login` or HF_TOKEN; never written to disk.")
    group.add_argument("--hub_private_repo", action="store_true")


def check_args(args: argparse.Namespace) -> None:
    """Configuration mistakes stop here, before any model or data is loaded."""
    if (args.dataset_name is None) == (args.train_data_dir is None):
        raise SystemExit("error: pass exactly one of --dataset_name or --train_data_dir.")
    if args.train_data_dir is not None and not os.path.isdir(args.train_data_dir):
        raise SystemExit(f"error: --train_data_dir {args.train_data_dir} is not a folder.")
    positive = ["train_batch_size", "resolution", "gradient_accumulation_steps",
                "num_train_epochs", "shuffle_buffer_size", "num_validation_images"]
    optional_positive = ["max_train_steps", "load_size", "max_train_samples"]
    for name in positive + [n for n in optional_positive if getattr(args, n) is not None]:
        if getattr(args, name) <= 0:
            raise SystemExit(f"error: --{name} must be > 0, got {getattr(args, name)}.")
    for name in ["checkpointing_steps", "validation_steps", "dataloader_num_workers",
                 "skip_nan_steps"]:
        if getattr(args, name) < 0:
            raise SystemExit(f"error: --{name} must be >= 0, got {getattr(args, name)}.")
    if args.learning_rate <= 0:
        raise SystemExit(f"error: --learning_rate must be > 0, got {args.learning_rate}.")
    if args.load_size is not None and args.load_size < args.resolution:
        raise SystemExit(f"error: --load_size {args.load_size} is smaller than --resolution "
                         f"{args.resolution}; the random crop needs load_size >= resolution.")
    if not 0 < args.max_bad_fraction <= 1:
        raise SystemExit(f"error: --max_bad_fraction must be in (0, 1], got {args.max_bad_fraction}.")
    if args.validation_split < 0:
        raise SystemExit(f"error: --validation_split must be >= 0, got {args.validation_split}.")
    if args.streaming and 0 < args.validation_split < 1:
        raise SystemExit("error: with --streaming, --validation_split must be a row count "
                         f"(e.g. 20), not a fraction ({args.validation_split}).")
    if args.streaming and args.max_train_steps is None:
        raise SystemExit("error: --streaming data has no length; pass --max_train_steps.")
    if args.push_to_hub and not args.hub_model_id:
        raise SystemExit("error: --push_to_hub needs --hub_model_id (e.g. user/my-student).")


def validation_rows(args: argparse.Namespace) -> float | int:
    """--validation_split as datasets expects it: a fraction, or an int row count."""
    split = args.validation_split
    return int(split) if split >= 1 else split


def public_args(args: argparse.Namespace) -> dict[str, Any]:
    """The run arguments without secrets (what ``args.json`` and model cards may show)."""
    return {k: v for k, v in vars(args).items() if k not in SECRET_ARGS}


def save_args(args: argparse.Namespace, output_dir: str) -> str:
    """Write ``args.json`` (no token) into ``output_dir``; returns its path."""
    path = os.path.join(output_dir, "args.json")
    with open(path, "w") as handle:
        json.dump(public_args(args), handle, indent=2, sort_keys=True, default=str)
    return path


def command_line(script: str, argv: list[str] | None = None) -> str:
    """The command that launched this run, with any --hub_token value masked."""
    import shlex
    import sys

    words = [f"training_scripts/{script}", *(sys.argv[1:] if argv is None else argv)]
    masked = []
    hide_next = False
    for word in words:
        if hide_next:
            masked.append("***")
            hide_next = False
        elif word == "--hub_token":
            masked.append(word)
            hide_next = True
        elif word.startswith("--hub_token="):
            masked.append("--hub_token=***")
        else:
            masked.append(word)
    return "accelerate launch " + " ".join(shlex.quote(w) for w in masked)
