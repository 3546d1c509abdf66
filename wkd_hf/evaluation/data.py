"""``evaluate.py``'s data: the split to evaluate (test, else train; a test folder given as
``--train_data_dir`` keeps its name), the layout (paired, or unpaired domain folders) and the
loaders of sources and real images."""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from ..data import (
    PairedTransform,
    UnpairedTransform,
    build_eval_dataloader,
    load_paired_dataset,
    load_unpaired_datasets,
    set_max_image_pixels,
)
from ..data.folders import domain_folders
from ..data.sources import local_source


def _split_candidates(args) -> list[str]:
    return [args.split] if args.split else ["test", "train"]


def dataset_label(args) -> str:
    if args.dataset_name and not os.path.isdir(args.dataset_name):
        return args.dataset_name
    folder = Path(os.path.expanduser(args.train_data_dir or args.dataset_name)).resolve()
    if folder.name.lower() in ("train", "test", "val", "validation", "testa", "testb", "traina",
                               "trainb"):
        return folder.parent.name
    return folder.name


def split_label(args, split: str) -> str:
    """The split as readers know it: a folder of test images given as --train_data_dir loads as
    the single split 'train', but is the test split."""
    if args.split is None and split == "train" and args.train_data_dir:
        name = Path(os.path.expanduser(args.train_data_dir)).resolve().name.lower()
        if name in ("test", "val", "validation"):
            return name
    return split


def _layout(args) -> str:
    if args.layout != "auto":
        return args.layout
    folder = local_source(args.dataset_name, args.train_data_dir)
    if folder is not None and domain_folders(folder):
        return "unpaired"
    return "paired"


def _first_rows(dataset, count):
    if count is None:
        return dataset
    if isinstance(dataset, datasets.IterableDataset):
        return dataset.take(count)
    return dataset.select(range(min(count, len(dataset))))


def _load_split(args, loader_fn, **kwargs):
    """Try each candidate split; the first that exists wins (an explicit --split must exist)."""
    candidates = _split_candidates(args)
    for i, split in enumerate(candidates):
        try:
            return split, loader_fn(split=split, **kwargs)
        except ValueError as error:
            if i + 1 == len(candidates) or "split" not in str(error):
                raise
    raise AssertionError("unreachable")


def build_data(args) -> dict:
    """``{"layout", "split", "loader"}`` (paired) or ``{"layout", "split", "sources", "reals"}``."""
    set_max_image_pixels(args.max_image_pixels or None)
    common = dict(dataset_name=args.dataset_name, dataset_config_name=args.dataset_config_name,
                  train_data_dir=args.train_data_dir, streaming=args.streaming,
                  cache_dir=args.cache_dir)
    loader_kwargs = dict(num_workers=args.dataloader_num_workers,
                         max_bad_fraction=args.max_bad_fraction)
    layout = _layout(args)
    if layout == "paired":
        split, dataset = _load_split(args, load_paired_dataset, source_column=args.source_column,
                                     target_column=args.target_column, direction=args.direction,
                                     **common)
        dataset = _first_rows(dataset, args.max_eval_samples)
        loader = build_eval_dataloader(dataset, PairedTransform(args.resolution, train=False),
                                       args.batch_size, **loader_kwargs)
        return {"layout": layout, "split": split, "loader": loader}
    split, (domain_a, domain_b) = _load_split(
        args, load_unpaired_datasets, domain_a_column=args.domain_a_column,
        domain_b_column=args.domain_b_column, **common)
    sources, reals = (domain_a, domain_b) if args.direction == "AtoB" else (domain_b, domain_a)
    transform = UnpairedTransform(args.resolution, train=False)
    return {"layout": layout, "split": split,
            "sources": build_eval_dataloader(_first_rows(sources, args.max_eval_samples),
                                             transform, args.batch_size, **loader_kwargs),
            "reals": build_eval_dataloader(_first_rows(reals, args.max_eval_samples),
                                           transform, args.batch_size, **loader_kwargs)}
