"""Building blocks of the training recipes: teachers, students and data from run arguments,
validation grids, and the exported output folder. ``train_teacher.py`` and ``distill.py`` are
outlines over these functions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from .data import (
    PairedTransform,
    UnalignedDataset,
    UnpairedTransform,
    build_eval_dataloader,
    build_train_dataloader,
    load_paired_dataset,
    load_unpaired_datasets,
    split_train_validation,
)
from .grid_labels import add_column_labels
from .models import GENERATOR_CLASSES, ResnetGenerator, UnetGenerator
from .models.building import load_generator
from .names import ARGS_FILE, CYCLE_DISCRIMINATORS, CYCLE_SUBFOLDERS, WKD_CONFIG_NAME
from .script_args import validation_rows
from .training import pins_memory

logger = logging.getLogger(__name__)



# ----------------------------------------------------------------------------- models
def load_teachers(name_or_path: str, mode: str, direction: str = "AtoB",
                  subfolder: str | None = None) -> dict[str, nn.Module]:
    """Teachers keyed by direction: ``{"a2b": T}`` (paired, teacher_target) or both (cycle).

    A CycleGAN teacher is one folder with ``generator_a2b/`` and ``generator_b2a/``; for one
    direction of it, ``direction`` picks the subfolder when ``subfolder`` is not given.
    """
    is_cycle_folder = os.path.isdir(os.path.join(name_or_path, CYCLE_SUBFOLDERS["a2b"]))
    if mode == "cycle":
        if subfolder is not None:
            raise ValueError("--teacher_subfolder does not apply to mode 'cycle': the teacher "
                             "folder must hold generator_a2b/ and generator_b2a/.")
        try:
            return {key: load_generator(name_or_path, sub) for key, sub in CYCLE_SUBFOLDERS.items()}
        except (OSError, ValueError) as error:
            raise ValueError(
                f"mode 'cycle' needs a CycleGAN teacher folder with generator_a2b/ and "
                f"generator_b2a/ (as train_teacher.py --mode cycle writes); {name_or_path}: "
                f"{error}") from error
    if subfolder is None and is_cycle_folder:
        subfolder = CYCLE_SUBFOLDERS["a2b" if direction == "AtoB" else "b2a"]
    return {"a2b": load_generator(name_or_path, subfolder)}


def discriminator_init_paths(path: str | None, keys: list[str], mode: str
                             ) -> dict[str, str | None]:
    """Where each direction's discriminator starts from (``--teacher_discriminator_path``).

    Paired modes: ``{"a2b": path}``. Cycle mode: ``path`` must be a CycleGAN teacher folder, and
    the discriminator judging each direction starts from the teacher's own one for that domain
    (``a2b`` is judged by D_B: ``discriminator_b/``; ``b2a`` by D_A: ``discriminator_a/``).
    """
    if path is None or mode != "cycle":
        return {key: path for key in keys}
    folders = {key: os.path.join(path, CYCLE_DISCRIMINATORS[key]) for key in keys}
    missing = [os.path.basename(f) for f in folders.values() if not os.path.isdir(f)]
    if missing:
        raise ValueError(
            f"--teacher_discriminator_path {path}: mode 'cycle' needs a CycleGAN teacher folder "
            f"with discriminator_a/ and discriminator_b/ (as train_teacher.py --mode cycle "
            f"writes); {', '.join(missing)} is missing. For a Hub teacher, download it first "
            "(`hf download REPO --local-dir DIR`), or omit the flag to train the "
            "discriminators from scratch.")
    return folders


def teacher_discriminator_ndf(path: str | None) -> int | None:
    """The width of a local teacher's discriminator (its ``discriminator*/config.json``, or the
    folder's own ``config.json`` for a discriminator folder); None when unknown."""
    if not path or not os.path.isdir(path):
        return None
    for name in ("discriminator", "discriminator_a", "discriminator_b", ""):
        config = Path(path, name, "config.json")
        if config.is_file():
            try:
                data = json.loads(config.read_text())
            except (OSError, ValueError):
                return None
            if data.get("_class_name") == "PatchDiscriminator" and "ndf" in data:
                return int(data["ndf"])
    return None


def check_resolution_fits(model: nn.Module, resolution: int, role: str = "generator") -> None:
    """A ``--resolution`` the generator cannot take is a ValueError before training (instead of
    "Sizes of tensors must match" inside the first step).

    Uses ``model.check_input_size(height, width)`` when the model has it; otherwise the rule of
    its family: ResNet, a multiple of 4 (two stride-2 downsamplings), at least 8; U-Net, a
    multiple of ``2**num_downs``. Other models are not checked.
    """
    check = getattr(model, "check_input_size", None)
    if callable(check):
        try:
            check(resolution, resolution)
        except ValueError as error:
            raise ValueError(f"--resolution {resolution} does not fit the {role} "
                             f"({type(model).__name__}): {error}") from error
        return
    if isinstance(model, ResnetGenerator):
        multiple, minimum, why = 4, 8, "two stride-2 downsamplings"
    elif isinstance(model, UnetGenerator):
        multiple = minimum = 2 ** model.config.num_downs
        why = f"num_downs={model.config.num_downs} stride-2 downsamplings"
    else:
        return
    if resolution % multiple or resolution < minimum:
        below = resolution // multiple * multiple
        hint = f"{below} or {below + multiple}" if below >= minimum else f"{minimum}"
        raise ValueError(f"--resolution {resolution} does not fit the {role} "
                         f"({type(model).__name__}): it needs multiples of {multiple} ({why}), "
                         f"at least {minimum}; use e.g. {hint}.")


def check_teacher_fits_data(teacher: nn.Module, image_channels: int = 3) -> None:
    """A teacher whose channels do not fit RGB data is a configuration error, stopped early."""
    config = teacher.config
    if not isinstance(teacher, GENERATOR_CLASSES) or "out_channels" not in config:
        raise ValueError(f"The teacher is a {type(teacher).__name__}, not a generator; pass the "
                         "generator's folder or checkpoint as --teacher_model_name_or_path.")
    if config.in_channels != image_channels or config.out_channels != image_channels:
        raise ValueError(
            f"The teacher maps {config.in_channels} -> {config.out_channels} channels, but the "
            f"data has {image_channels}-channel images. Use a teacher trained on RGB images.")


def _same_data(record: Mapping, args: argparse.Namespace) -> bool:
    """Whether a teacher's run record names the data of this run: the same ``--dataset_name``,
    or ``--train_data_dir`` folders that are equal or one inside the other."""
    if record.get("dataset_name") and record.get("dataset_name") == args.dataset_name:
        return True
    theirs, ours = record.get("train_data_dir"), args.train_data_dir
    if not (isinstance(theirs, str) and ours):
        return False
    theirs, ours = Path(theirs).resolve(), Path(ours).resolve()
    return theirs == ours or theirs in ours.parents or ours in theirs.parents


def check_teacher_direction(args: argparse.Namespace) -> None:
    """A local teacher folder whose ``args.json`` says it was trained on this run's data with the
    other ``--direction`` is a ValueError: it would be fed the other domain's images and the
    student would learn from its nonsense (paired and teacher_target modes)."""
    path = Path(args.teacher_model_name_or_path, args.teacher_subfolder or "")
    if args.mode == "cycle" or (path / CYCLE_SUBFOLDERS["a2b"]).is_dir():
        return  # a CycleGAN folder: --direction picks the matching generator
    try:
        record = json.loads((path / ARGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # no run record (a Hub id, a .pth, a converted folder): nothing to compare
    theirs = record.get("direction") if isinstance(record, dict) else None
    if theirs in ("AtoB", "BtoA") and theirs != args.direction and _same_data(record, args):
        raise ValueError(
            f"the teacher {args.teacher_model_name_or_path} was trained on this data with "
            f"--direction {theirs} (its {ARGS_FILE}), but this run uses --direction "
            f"{args.direction}: the teacher would translate the wrong half. Pass --direction "
            f"{theirs}, or a teacher trained for {args.direction}.")


def warn_if_student_not_smaller(teacher: nn.Module, student: nn.Module, teacher_path: str) -> None:
    """One warning when the student has at least the teacher's parameters: distillation then
    compresses nothing (often a student folder passed as the teacher, whose ``wkd_config.json``
    the warning names). Same-size students stay allowed (self-distillation baselines)."""
    theirs, ours = (sum(p.numel() for p in model.parameters()) for model in (teacher, student))
    if ours < theirs:
        return
    hint = (f" {teacher_path} holds a wkd_config.json: it is a distilled student, not a teacher."
            if Path(teacher_path, WKD_CONFIG_NAME).is_file() else "")
    logger.warning(f"the student ({ours:,} parameters) is not smaller than the teacher "
                   f"({theirs:,}): lower --student_ngf or set a --student_speedup.{hint}")


# ----------------------------------------------------------------------------- data
@dataclass
class TrainingData:
    """The training dataloader and a fixed validation batch (None without validation data)."""

    train_loader: torch.utils.data.DataLoader
    validation_loader: torch.utils.data.DataLoader | None
    description: str


def build_paired_data(args: argparse.Namespace) -> TrainingData:
    """pix2pix data from the run arguments: batches ``{"source", "target"}``."""
    dataset = load_paired_dataset(
        dataset_name=args.dataset_name, dataset_config_name=args.dataset_config_name,
        train_data_dir=args.train_data_dir, source_column=args.source_column,
        target_column=args.target_column, direction=args.direction, streaming=args.streaming,
        cache_dir=args.cache_dir)
    train, validation = split_train_validation(dataset, validation_rows(args), args.seed)
    train_transform = PairedTransform(args.resolution, args.load_size, flip=not args.no_flip)
    eval_transform = PairedTransform(args.resolution, train=False)
    return _loaders(args, train, validation, train_transform, eval_transform)


def build_unpaired_data(args: argparse.Namespace, domains: str = "AB") -> TrainingData:
    """Unpaired data: ``"AB"`` gives CycleGAN batches ``{"A", "B"}``; ``"A"``/``"B"`` gives
    batches ``{"source"}`` of that domain (GAN Compression's teacher-target mode)."""
    domain_a, domain_b = load_unpaired_datasets(
        dataset_name=args.dataset_name, dataset_config_name=args.dataset_config_name,
        train_data_dir=args.train_data_dir, domain_a_column=args.domain_a_column,
        domain_b_column=args.domain_b_column, streaming=args.streaming, cache_dir=args.cache_dir)
    train_transform = UnpairedTransform(args.resolution, args.load_size, flip=not args.no_flip)
    eval_transform = UnpairedTransform(args.resolution, train=False)
    rows = validation_rows(args)
    train_a, val_a = split_train_validation(domain_a, rows, args.seed)
    train_b, val_b = split_train_validation(domain_b, rows, args.seed)
    if domains == "AB":
        train = UnalignedDataset(train_a, train_b)
        validation = UnalignedDataset(val_a, val_b) if val_a is not None else None
    else:
        train, validation = (train_a, val_a) if domains == "A" else (train_b, val_b)
        train_transform = _AsSource(train_transform)
        eval_transform = _AsSource(eval_transform)
    return _loaders(args, train, validation, train_transform, eval_transform)


class _AsSource:
    """Wrap an unpaired transform so its ``image`` comes out as ``source``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, row):
        out = self.transform(row)
        if out is None or "image" not in out:
            return out
        return {"source": out["image"]}


def _loaders(args, train, validation, train_transform, eval_transform) -> TrainingData:
    train_loader = build_train_dataloader(
        train, train_transform, args.train_batch_size, seed=args.seed,
        num_workers=args.dataloader_num_workers, shuffle_buffer_size=args.shuffle_buffer_size,
        max_samples=args.max_train_samples, max_bad_fraction=args.max_bad_fraction,
        pin_memory=pins_memory(args))
    validation_loader = None
    if validation is not None:
        validation_loader = build_eval_dataloader(validation, eval_transform,
                                                  args.num_validation_images,
                                                  num_workers=args.dataloader_num_workers)
    return TrainingData(train_loader, validation_loader, describe(args))


def describe(args: argparse.Namespace) -> str:
    source = args.dataset_name or f"local folder `{Path(args.train_data_dir).name}`"
    return (f"{source}, {args.resolution}x{args.resolution} crops"
            f"{' (streamed)' if args.streaming else ''}, direction {args.direction}")


def first_batch(loader: torch.utils.data.DataLoader | None) -> dict[str, Tensor] | None:
    """The first usable batch of a loader (fixed validation images), or None."""
    if loader is None:
        return None
    for batch in loader:
        if batch is not None:
            return batch
    return None


def move_batch(batch: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


# ----------------------------------------------------------------------------- images
def to_pil(images: Tensor) -> list[Image.Image]:
    """N x C x H x W in [-1, 1] -> N RGB PIL images (1-channel images are repeated)."""
    images = images.detach().float().cpu().clamp(-1, 1)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    array = ((images[:, :3] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(np.ascontiguousarray(a)) for a in array]


def image_grid(columns: Mapping[str, Tensor], padding: int = 2,
               labels: bool = False) -> Image.Image:
    """One row per sample, one column per entry of ``columns`` (each N x C x H x W in [-1, 1]);
    ``labels``: the column names in a strip above (:func:`grid_labels.add_column_labels`)."""
    tiles = [to_pil(images) for images in columns.values()]
    rows, cols = len(tiles[0]), len(tiles)
    width, height = tiles[0][0].size
    grid = Image.new("RGB", (cols * (width + padding) - padding,
                             rows * (height + padding) - padding), "white")
    for c, column in enumerate(tiles):
        for r, tile in enumerate(column):
            grid.paste(tile, (c * (width + padding), r * (height + padding)))
    return add_column_labels(grid, list(columns), width, padding) if labels else grid


def save_previews(previews: Mapping[str, Mapping[str, Tensor]], directory: str | os.PathLike,
                  prefix: str) -> dict[str, Path]:
    """Write each preview grid as ``{directory}/{prefix}[_{name}].png``; returns name -> path."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, columns in previews.items():
        suffix = "" if len(previews) == 1 else f"_{name}"
        paths[name] = Path(directory) / f"{prefix}{suffix}.png"
        image_grid(columns, labels=True).save(paths[name])
    return paths


def log_previews(accelerator, previews: Mapping[str, Mapping[str, Tensor]], step: int) -> None:
    """Send preview grids to every active tracker that takes images (tensorboard, wandb, ...),
    through accelerate's ``log_images``, as ``validation/<name>``."""
    grids = {f"validation/{name}": np.asarray(image_grid(columns, labels=True))
             for name, columns in previews.items()}
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images({k: v[None] for k, v in grids.items()}, step, dataformats="NHWC")
        elif callable(getattr(tracker, "log_images", None)):
            try:
                tracker.log_images({k: [v] for k, v in grids.items()}, step)
            except NotImplementedError:
                logger.warning(f"The {tracker.name} tracker takes no images; validation grids "
                               "are in the output folder's validation/.")
