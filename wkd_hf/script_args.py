"""Command-line arguments that ``train_teacher.py`` and ``distill.py`` share, and their checks.

Run settings live here (argparse, echoed to ``args.json`` without the token); architecture lives
in each model's ``config.json`` and method settings in ``wkd_config.json``.
"""

from __future__ import annotations

import argparse
import math
import os

from .checkpointing import list_checkpoints
from .data import set_max_image_pixels
from .names import LR_SCHEDULERS, PIX2PIX_SCHEDULER
from .run_record import TOKEN_PATTERN


class ScriptArgumentParser(argparse.ArgumentParser):
    """The scripts' parser: no abbreviations (``--hub_tok X`` is an error, never a
    ``--hub_token`` that escapes masking), Hub tokens masked in its error messages, each default
    shown once and an epilog pointing at README.md's recipes."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultOnceFormatter)
        kwargs.setdefault("epilog", readme_epilog())
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        super().error(TOKEN_PATTERN.sub("hf_***", message))


class DefaultOnceFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already states its default
    or the option is required."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.required:
            return text
        return super()._get_help_string(action)


def readme_epilog(section: str = "Recipes") -> str:
    return f"Recipes: see README.md, section '{section}'."


def validation_split_problem(value: float) -> str | None:
    """Why ``value`` is no --validation_split; None when it is one."""
    value = float(value)
    if value == 0 or 0 < value < 1 or (math.isfinite(value) and value >= 1 and value.is_integer()):
        return None
    return (f"must be a fraction in (0, 1) or a whole number of rows >= 1 (0: no validation), "
            f"got {value}")


def parse_validation_split(text: str) -> float:
    """argparse ``type`` of --validation_split: the error comes at parse time."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if problem := validation_split_problem(value):
        raise argparse.ArgumentTypeError(problem)
    return value


def add_cycle_objective_args(group) -> None:
    """CycleGAN's objective weights (cycle, identity, image pool), the same in both scripts."""
    group.add_argument("--lambda_cycle", type=float, default=10.0,
                       help="Cycle mode: weight of the cycle-consistency L1 (CycleGAN's).")
    group.add_argument("--lambda_identity", type=float, default=0.5,
                       help="Cycle mode: weight of the identity L1, times --lambda_cycle "
                            "(CycleGAN's).")
    group.add_argument("--pool_size", type=int, default=50,
                       help="Cycle mode: past fakes the discriminators see, CycleGAN's image "
                            "pool (0: none).")


def add_data_args(parser: argparse.ArgumentParser, training: bool = True) -> None:
    """The data flags; ``training=False`` (evaluate.py) leaves out those only training uses
    (crops, flips, shuffling, the validation carve-out)."""
    group = parser.add_argument_group("data")
    group.add_argument("--dataset_name", default=None,
                       help="A Hub dataset id or a local dataset folder, loaded with datasets "
                            "(default: none; pass this or --train_data_dir).")
    group.add_argument("--dataset_config_name", default=None,
                       help="The --dataset_name configuration to load (default: none, the "
                            "dataset's own).")
    group.add_argument("--train_data_dir", default=None,
                       help="A local folder: side-by-side AB images (pix2pix), an imagefolder with "
                            "metadata.jsonl, parquet files, or trainA/ + trainB/ (unpaired) "
                            "(default: none; pass this or --dataset_name).")
    group.add_argument("--source_column", default=None,
                       help="Paired data: column of the input images (default: auto-detected).")
    group.add_argument("--target_column", default=None,
                       help="Paired data: column of the target images (default: auto-detected).")
    group.add_argument("--domain_a_column", default=None,
                       help="Unpaired data: column of domain A (default: auto-detected).")
    group.add_argument("--domain_b_column", default=None,
                       help="Unpaired data: column of domain B (default: auto-detected).")
    group.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                       help="AtoB translates A (left half / imageA) into B; facades labels->photo "
                            "is BtoA.")
    group.add_argument("--resolution", type=int, default=256,
                       help="Image size in pixels (training: the random crop)." if training else
                            "Image size in pixels (images are resized to it).")
    if training:
        _add_training_data_args(group)
    else:
        group.add_argument("--streaming", action="store_true",
                           help="Stream the data with datasets instead of loading it.")
    group.add_argument("--dataloader_num_workers", type=int, default=0,
                       help="Data-loading worker processes (0: load in the main process).")
    group.add_argument("--max_bad_fraction", type=float, default=0.1,
                       help="Stop when more than this share of images is unreadable.")
    group.add_argument("--max_image_pixels", type=int, default=64 * 2**20,
                       help="Skip (as unreadable) images of more than this many pixels, checked "
                            "before decoding (default 64 megapixels, 8192x8192); 0: no cap.")
    group.add_argument("--cache_dir", default=None,
                       help="Where datasets caches downloads (default: the datasets cache).")


def _add_training_data_args(group) -> None:
    group.add_argument("--load_size", type=int, default=None,
                       help="Resize to this before the random crop (pix2pix: 286 for 256). "
                            "Default: --resolution (no jitter).")
    group.add_argument("--random_flip", dest="no_flip", action="store_false", default=False,
                       help="Flip training images horizontally at random, as pix2pix and "
                            "CycleGAN (default: on).")
    group.add_argument("--no-random_flip", "--no_flip", dest="no_flip", action="store_true",
                       help="Turn the random horizontal flips off (--no_flip: the older spelling; "
                            "default: flips on).")
    group.add_argument("--streaming", action="store_true",
                       help="Stream the data with datasets instead of loading it (needs "
                            "--max_train_steps).")
    group.add_argument("--shuffle_buffer_size", type=int, default=1000,
                       help="With --streaming: rows in the shuffle buffer.")
    group.add_argument("--max_train_samples", type=int, default=None,
                       help="Train on the first N rows only, for quick runs or debugging "
                            "(default: all).")
    group.add_argument("--validation_split", type=parse_validation_split, default=0.05,
                       help="Rows carved from train for validation: a fraction in (0, 1), a "
                            "count >= 1 or 0 (none). With --streaming a fraction needs the "
                            "stream's size (Hub metadata or a local folder's files), else the "
                            "first 16 rows are used. Never select models on test.")


def add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--train_batch_size", type=int, default=1,
                       help="Images per batch and process (pix2pix and CycleGAN: 1).")
    group.add_argument("--max_train_steps", type=int, default=None,
                       help="Total optimizer steps; overrides --num_train_epochs (default: "
                            "--num_train_epochs' steps).")
    group.add_argument("--num_train_epochs", type=int, default=200,
                       help="Passes over the training data (pix2pix and CycleGAN: 100 + 100 of "
                            "decay).")
    group.add_argument("--learning_rate", type=float, default=2e-4,
                       help="Adam learning rate of generators and discriminators (pix2pix's).")
    group.add_argument("--lr_scheduler", choices=LR_SCHEDULERS, default=PIX2PIX_SCHEDULER,
                       help="pix2pix_linear: pix2pix's constant rate, then linear decay to 0 over "
                            "--lr_decay_steps (default). The others are diffusers' schedules "
                            "(linear decays from the first step after --lr_warmup_steps).")
    group.add_argument("--lr_decay_steps", type=int, default=None,
                       help="pix2pix_linear: steps of linear decay at the end (default: half "
                            "the run, as pix2pix's 100 + 100 epochs).")
    group.add_argument("--lr_warmup_steps", type=int, default=0,
                       help="diffusers' schedules: warm-up steps.")
    group.add_argument("--adam_beta1", type=float, default=0.5,
                       help="Adam beta1 (pix2pix and CycleGAN: 0.5).")
    group.add_argument("--adam_beta2", type=float, default=0.999, help="Adam beta2.")
    group.add_argument("--gradient_accumulation_steps", type=int, default=1,
                       help="Batches whose gradients add up before each optimizer step.")
    group.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=None,
                       help="Default: what `accelerate config` / `accelerate launch "
                            "--mixed_precision` set (else no).")
    group.add_argument("--sync_batchnorm", action="store_true",
                       help="Several GPUs: batch-norm statistics over all processes' batches "
                            "(torch's SyncBatchNorm; batch-norm D or U-Net, small batches).")
    group.add_argument("--seed", type=int, default=0,
                       help="Random seed of initialisation, shuffling, crops and flips.")
    group.add_argument("--cpu", action="store_true", help="Train on the CPU even if a GPU is there.")
    group.add_argument("--skip_nan_steps", type=int, default=0,
                       help="Batches with a NaN/Inf loss to skip before stopping (default 0: "
                            "stop at the first).")
    group.add_argument("--gan_mode", choices=("lsgan", "vanilla", "hinge"), default=None,
                       help="GAN loss. Default: the reference recipe's, vanilla (BCE with "
                            "logits) for paired data as pix2pix, lsgan for cycle and "
                            "teacher_target as CycleGAN.")
    group.add_argument("--lambda_gan", type=float, default=1.0,
                       help="Weight of the generator's GAN term.")


def add_state_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("state, logging and Hub")
    group.add_argument("--output_dir", required=True,
                       help="Folder of the trained model, checkpoints, samples and logs "
                            "(required).")
    group.add_argument("--checkpointing_steps", type=int, default=500,
                       help="Save a resumable checkpoint-N folder every N steps (0: none).")
    group.add_argument("--checkpoints_total_limit", type=int, default=3,
                       help="Keep only the N newest checkpoints (N >= 1); 0 keeps them all.")
    group.add_argument("--save_on_each_node", action="store_true",
                       help="Several machines without a shared disk: each machine writes every "
                            "checkpoint into its own --output_dir (accelerate's "
                            "save_on_each_node). Without it, only the main machine's holds them.")
    group.add_argument("--resume_from_checkpoint", default=None,
                       help="'latest', a checkpoint-N name inside --output_dir, or a checkpoint "
                            "folder (default: start a new run).")
    group.add_argument("--overwrite_output_dir", action="store_true",
                       help="Start a new run in an --output_dir that holds an earlier run's "
                            "finished model (replaced at export) or checkpoints (deleted); "
                            "without it, such a run is refused.")
    group.add_argument("--report_to", default="tensorboard",
                       help="An accelerate tracker (tensorboard, wandb, ...) or 'none'.")
    group.add_argument("--logging_steps", type=int, default=10,
                       help="Send the losses to the trackers and the progress bar every N steps "
                            "(and at steps 1 and the last); reading them stalls a GPU.")
    group.add_argument("--validation_steps", type=int, default=500,
                       help="Save a validation grid every N steps (0: only at the end).")
    group.add_argument("--num_validation_images", type=int, default=4,
                       help="Validation images per batch and in each grid.")
    group.add_argument("--push_to_hub", action="store_true",
                       help="Upload the finished folder to --hub_model_id. The repo is created "
                            "(or opened) at start-up, so a bad token or name fails before "
                            "training.")
    group.add_argument("--train_if_hub_unreachable", action="store_true",
                       help="With --push_to_hub: train anyway when the Hub cannot be reached at "
                            "start-up (the upload is then tried at the end; the local folder is "
                            "complete either way).")
    group.add_argument("--hub_model_id", default=None,
                       help="Hub repo of --push_to_hub, e.g. user/my-student (default: none).")
    group.add_argument("--hub_space_id", default=None,
                       help="With --push_to_hub: also write a Gradio Space there (e.g. "
                            "user/my-student-demo) showing the model beside its teacher "
                            "(see `wkd-space`).")
    group.add_argument("--hub_token", default=None,
                       help="A Hub token (default: the one `hf auth login` or HF_TOKEN set, "
                            "which is safer); never written to disk.")
    group.add_argument("--hub_private_repo", action="store_true",
                       help="With --push_to_hub: create the repo private.")


# Validation metrics --keep_best can select on, and whether higher is better. Paired data: the
# generator against the validation targets; with a teacher and no targets: against the teacher.
VALIDATION_METRICS = {
    "psnr": True, "ssim": True, "l1": False,
    **{f"band_{band}": False for band in ("LL", "LH", "HL", "HH")},
    "teacher_l1": False, **{f"teacher_band_{band}": False for band in ("LL", "LH", "HL", "HH")},
}


def add_evaluation_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("evaluation during training")
    group.add_argument("--keep_best", default=None, metavar="METRIC",
                       choices=sorted(VALIDATION_METRICS),
                       help="Keep the generator that scores best on this validation metric "
                            "(never test data) in OUTPUT_DIR/best/ (a save_pretrained folder and "
                            "best_metric.json with the metric, value and step); checked every "
                            "--validation_steps and at the end. Paired data: psnr, ssim (higher "
                            "is better), l1, band_LL/LH/HL/HH (lower); unpaired data with a "
                            "teacher: teacher_l1, teacher_band_* (distance to the teacher). "
                            "Default: none (the final generator only).")


def check_args(args: argparse.Namespace) -> None:
    """Configuration mistakes stop here, before any model or data is loaded."""
    if (args.dataset_name is None) == (args.train_data_dir is None):
        raise SystemExit("error: pass exactly one of --dataset_name or --train_data_dir.")
    if args.train_data_dir is not None and not os.path.isdir(args.train_data_dir):
        raise SystemExit(f"error: --train_data_dir {args.train_data_dir} is not a folder.")
    positive = ["train_batch_size", "resolution", "gradient_accumulation_steps",
                "num_train_epochs", "shuffle_buffer_size", "num_validation_images",
                "logging_steps"]
    optional_positive = ["max_train_steps", "load_size", "max_train_samples"]
    for name in positive + [n for n in optional_positive if getattr(args, n) is not None]:
        if getattr(args, name) <= 0:
            raise SystemExit(f"error: --{name} must be > 0, got {getattr(args, name)}.")
    for name in ["checkpointing_steps", "validation_steps", "dataloader_num_workers",
                 "lr_warmup_steps",
                 "skip_nan_steps", "checkpoints_total_limit"]:
        if getattr(args, name) < 0:
            unlimited = " (0 keeps every checkpoint)" if name == "checkpoints_total_limit" else ""
            raise SystemExit(f"error: --{name} must be >= 0{unlimited}, got {getattr(args, name)}.")
    if not 0 < args.learning_rate < math.inf:
        raise SystemExit(f"error: --learning_rate must be > 0, got {args.learning_rate}.")
    if args.load_size is not None and args.load_size < args.resolution:
        raise SystemExit(f"error: --load_size {args.load_size} is smaller than --resolution "
                         f"{args.resolution}; the random crop needs load_size >= resolution.")
    if not 0 < args.max_bad_fraction <= 1:
        raise SystemExit(f"error: --max_bad_fraction must be in (0, 1], got {args.max_bad_fraction}.")
    if problem := validation_split_problem(args.validation_split):
        raise SystemExit(f"error: --validation_split {problem}.")
    if args.streaming and args.max_train_steps is None:
        raise SystemExit("error: --streaming data has no length; pass --max_train_steps.")
    resolve_resume_path(args)
    if args.push_to_hub and not args.hub_model_id:
        raise SystemExit("error: --push_to_hub needs --hub_model_id (e.g. user/my-student).")
    if getattr(args, "hub_space_id", None) and not args.push_to_hub:
        raise SystemExit("error: --hub_space_id needs --push_to_hub (and --hub_model_id).")
    # An --output_dir in the training folder feeds this run's samples.png to the next run.
    data_dir = os.path.expanduser(args.train_data_dir or args.dataset_name)
    if os.path.isdir(data_dir):  # not a Hub id
        data = os.path.realpath(data_dir)
        out = os.path.realpath(os.path.expanduser(args.output_dir))
        if os.path.commonpath([data, out]) == data:
            raise SystemExit(f"error: --output_dir {args.output_dir} is or lies inside the "
                             f"training folder {data_dir}; the next run would train on this "
                             "run's outputs (samples.png). Write the outputs elsewhere.")
    if args.max_image_pixels < 0:
        raise SystemExit(f"error: --max_image_pixels must be >= 0 (0: no cap), got "
                         f"{args.max_image_pixels}.")
    set_max_image_pixels(args.max_image_pixels or None)


def resolve_resume_path(args: argparse.Namespace) -> None:
    """Make --resume_from_checkpoint a folder, as diffusers reads it: a checkpoint-N name means
    OUTPUT_DIR/checkpoint-N, an existing folder stays itself and 'latest' is left as it is."""
    value = args.resume_from_checkpoint
    if not value or value == "latest":
        return
    for candidate in (os.path.join(args.output_dir, value), value):
        if os.path.isdir(os.path.expanduser(candidate)):
            args.resume_from_checkpoint = os.path.expanduser(candidate)
            return
    found = ", ".join(path.name for path in list_checkpoints(args.output_dir)) or "none"
    raise SystemExit(f"error: --resume_from_checkpoint {value}: no such checkpoint in "
                     f"--output_dir {args.output_dir} (its checkpoints: {found}), nor such a "
                     "folder. Pass 'latest', one of those names, or a checkpoint folder.")


def validation_rows(args: argparse.Namespace) -> float | int:
    """--validation_split as datasets expects it: a fraction, or an int row count."""
    split = args.validation_split
    return int(split) if split >= 1 else split
