"""Loading paired (pix2pix) and unpaired (CycleGAN) image data with ``datasets``.

Every loader returns rows whose image columns are UNDECODED (``datasets.Image(decode=False)``:
``{"bytes", "path"}`` dicts), so decoding, and catching bad files, happens in our transforms.

Paired rows: ``{"source", "target"}``. A side-by-side "AB" image (one image column) is stored in
both columns plus a third column ``"layout"`` (``"source_left"`` / ``"source_right"``) that tells
:class:`~wkd_hf.data.images.PairedTransform` which half is the source. Unpaired: two datasets with
one ``"image"`` column each.

Sources (``train_data_dir`` and ``dataset_name`` are mutually exclusive):

- ``train_data_dir`` with images: loaded with the ``imagefolder`` builder (files whose extension is
  not an image extension, e.g. ``.DS_Store``, ``Thumbs.db``, ``.txt``, are ignored). Its
  subfolders ``train/``, ``test/``, ``validation/`` ... are the splits; a folder without them is
  one split ``"train"`` (file names never pick splits: ``datasets``' own inference would put a
  ``test_1.png`` in a ``test`` split and silently drop the other files). A ``metadata.jsonl`` with
  ``input_file_name`` / ``target_file_name`` gives two image columns ``input`` / ``target``.
  Hostile data is refused up front: a metadata file name that is absolute, a URL or leaves the
  metadata file's folder (``../..``) is a ValueError naming the line, and that file is never
  read. Files whose names are not valid UTF-8 (``datasets`` cannot store them) are skipped with a
  warning naming them. A null metadata file name becomes a bad row (skipped and named).
- ``train_data_dir`` with parquet files: the ``parquet`` builder (splits from file names, e.g.
  ``train-00000-of-00001.parquet``).
- ``train_data_dir`` / ``dataset_name`` with ``trainA/`` + ``trainB/`` (CycleGAN layout, unpaired).
- ``dataset_name``: a folder written by ``save_to_disk``, another local dataset folder, or a Hub
  id, through ``datasets.load_dataset``.

Image values of a LOCAL source (``train_data_dir`` or a local ``dataset_name`` folder) that carry
a path but no bytes (parquet / Arrow rows, imagefolder files) are read only from inside that
folder: a relative path is joined to the folder (not the working directory); an absolute path
outside it, a path leaving it (``..``) or a URL is a bad row (skipped and named), never opened
(:func:`guard_local_paths`). Hub datasets are left as ``datasets`` gives them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets

from ..hub_access import HubUnreachableError, hub_advice
from ..hub_access import hub_reachable as _hub_reachable  # the one Hub probe (also models')
from .columns import (
    as_undecoded,
    check_columns,
    column_names,
    detect_two_columns,
    guard_local_paths,
    image_columns,
    select_renamed,
)
from .folders import (
    AnyDataset,
    check_folder,
    check_metadata_files,
    domain_folders,
    is_saved_to_disk,
    load_folder_dataset,
    load_local_folder,
)
from .images import LAYOUT_COLUMN, SOURCE_LEFT, SOURCE_RIGHT

logger = logging.getLogger(__name__)

DIRECTIONS = ("AtoB", "BtoA")
PAIRED_COLUMN_CANDIDATES = (("imageA", "imageB"), ("input", "target"), ("source", "target"))
UNPAIRED_COLUMN_CANDIDATES = (("imageA", "imageB"), ("A", "B"))
_HINT_LOCAL = "pass --train_data_dir for a local folder"


# ----------------------------------------------------------------------------- the Hub
def _hub_offline() -> bool:
    import huggingface_hub

    return huggingface_hub.constants.is_offline_mode()


def _network_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    errors: tuple[type[BaseException], ...] = (
        ConnectionError, TimeoutError, OfflineModeIsEnabled, LocalEntryNotFoundError)
    for module in ("httpx2", "httpx"):
        try:
            errors += (__import__(module).TransportError,)
        except (ImportError, AttributeError):
            continue
    return errors


def _unreachable(name: str, why: str) -> HubUnreachableError:
    return HubUnreachableError(
        f"Cannot load --dataset_name {name!r} from the Hub: {why}. {hub_advice(_HINT_LOCAL)}")


def load_hub_dataset(name: str, config_name: str | None = None, *, streaming: bool = False,
                     cache_dir: str | None = None) -> dict[str, AnyDataset]:
    """All splits of a Hub dataset; unreachable Hub -> :class:`HubUnreachableError` at once
    (instead of ``huggingface_hub``'s ~20 s of retries)."""
    if not _hub_offline() and not _hub_reachable():
        raise _unreachable(name, "the Hub endpoint does not answer (no network?)")
    try:
        loaded = datasets.load_dataset(name, config_name, streaming=streaming, cache_dir=cache_dir)
    except datasets.exceptions.DatasetNotFoundError as err:
        raise ValueError(f"--dataset_name {name!r} is not a local folder and was not found on the "
                         f"Hub ({err}). Check the id, or {_HINT_LOCAL}.") from err
    except _network_errors() as err:
        why = "offline mode (HF_HUB_OFFLINE=1) and not in the cache" if _hub_offline() else str(err)
        raise _unreachable(name, why) from err
    return dict(loaded)


# ----------------------------------------------------------------------------- any source
def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".\\")) or os.path.isabs(name)


def local_source(dataset_name: str | None, train_data_dir: str | None) -> Path | None:
    """The local folder to read (``train_data_dir``, or a ``dataset_name`` that is a folder)."""
    if (dataset_name is None) == (train_data_dir is None):
        raise ValueError(f"Pass exactly one of --dataset_name (got {dataset_name!r}) and "
                         f"--train_data_dir (got {train_data_dir!r}).")
    if train_data_dir is not None:
        return check_folder(train_data_dir, "train_data_dir")
    if Path(dataset_name).expanduser().is_dir():
        return Path(dataset_name).expanduser()
    if _looks_like_path(dataset_name):
        raise ValueError(f"--dataset_name {dataset_name!r} looks like a path but is not a "
                         "directory.")
    return None


def load_splits(*, dataset_name: str | None = None, dataset_config_name: str | None = None,
                train_data_dir: str | None = None, streaming: bool = False,
                cache_dir: str | None = None) -> dict[str, AnyDataset]:
    """``{split name: dataset}`` for a local folder or a Hub id (images still decoded)."""
    folder = local_source(dataset_name, train_data_dir)
    if folder is None:
        return load_hub_dataset(dataset_name, dataset_config_name, streaming=streaming,
                                cache_dir=cache_dir)
    if train_data_dir is None and not is_saved_to_disk(folder):  # a local dataset_name
        check_metadata_files(folder)
        return load_folder_dataset(folder, str(folder), dataset_config_name, streaming=streaming,
                             cache_dir=cache_dir)
    return load_local_folder(folder, streaming=streaming, cache_dir=cache_dir)


def pick_split(splits: Mapping[str, AnyDataset], split: str, where: str) -> AnyDataset:
    """``splits[split]``; a missing split or an empty one is a ValueError naming what exists."""
    if split not in splits:
        raise ValueError(
            f"split={split!r} not found in {where}; available splits: {sorted(splits)}. Choose one "
            "of them (a local folder without train/ test/ ... subfolders is one split 'train').")
    dataset = splits[split]
    if isinstance(dataset, datasets.Dataset) and len(dataset) == 0:
        raise ValueError(f"split {split!r} of {where} has no rows; check the data.")
    return dataset


# ----------------------------------------------------------------------------- paired
def _side_by_side_columns(batch: dict[str, list], layout: str) -> dict[str, list]:
    return {"target": batch["source"], LAYOUT_COLUMN: [layout] * len(batch["source"])}


def _as_side_by_side(dataset: AnyDataset, column: str, direction: str) -> AnyDataset:
    """One AB image column -> ``{"source", "target"}`` (the same image) + ``"layout"``."""
    dataset = select_renamed(as_undecoded(dataset, column), {column: "source"})
    layout = SOURCE_LEFT if direction == "AtoB" else SOURCE_RIGHT
    features = datasets.Features({"source": datasets.Image(decode=False),
                                  "target": datasets.Image(decode=False),
                                  LAYOUT_COLUMN: datasets.Value("string")})
    kwargs: dict[str, Any] = {"desc": "side-by-side rows"} if isinstance(
        dataset, datasets.Dataset) else {}
    return dataset.map(_side_by_side_columns, batched=True, features=features,
                       fn_kwargs={"layout": layout}, **kwargs)


def _paired_columns(dataset: AnyDataset, source_column: str | None, target_column: str | None,
                    direction: str) -> tuple[str, str]:
    """(source column, target column); equal columns mean one side-by-side image column."""
    if (source_column is None) != (target_column is None):
        raise ValueError(f"Pass both --source_column and --target_column or neither (got "
                         f"{source_column!r} and {target_column!r}); name the same column twice "
                         "for side-by-side AB images.")
    if source_column is None:
        a, b = detect_two_columns(dataset, PAIRED_COLUMN_CANDIDATES)
        return (a, b) if direction == "AtoB" else (b, a)
    check_columns(dataset, source_column=source_column, target_column=target_column)
    if source_column != target_column and direction != "AtoB":
        raise ValueError(f"--direction {direction} with --source_column {source_column!r} and "
                         f"--target_column {target_column!r}: the columns already fix the "
                         "direction. Swap the two columns instead, or drop --direction.")
    return source_column, target_column


def _refuse_unpaired_folder(folder: Path | None) -> None:
    if folder is not None and not is_saved_to_disk(folder) and domain_folders(folder):
        raise ValueError(f"{folder} has CycleGAN domain folders ({domain_folders(folder)} + A/B): "
                         "unpaired data. Train on it with --mode cycle (distill.py also "
                         "--mode teacher_target), or give a folder of side-by-side AB images.")


def load_paired_dataset(
    *, dataset_name: str | None = None, dataset_config_name: str | None = None,
    train_data_dir: str | None = None, split: str = "train", source_column: str | None = None,
    target_column: str | None = None, direction: str = "AtoB", streaming: bool = False,
    cache_dir: str | None = None,
) -> AnyDataset:
    """Paired (pix2pix) rows ``{"source", "target"}`` of undecoded images (+ ``"layout"`` for
    side-by-side AB images: ``direction="AtoB"`` takes the left half as source, ``"BtoA"`` the
    right half; facades labels -> photo is BtoA).

    Columns: ``source_column``/``target_column`` if given, else ``imageA/imageB``, ``input/target``,
    ``source/target``, exactly two image columns (A = first), or one image column (side-by-side).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"--direction {direction!r} must be one of {DIRECTIONS}.")
    folder = local_source(dataset_name, train_data_dir)
    _refuse_unpaired_folder(folder)
    where = dataset_name or train_data_dir
    dataset = pick_split(load_splits(
        dataset_name=dataset_name, dataset_config_name=dataset_config_name,
        train_data_dir=train_data_dir, streaming=streaming, cache_dir=cache_dir), split, where)
    source, target = _paired_columns(dataset, source_column, target_column, direction)
    if source == target:
        logger.info("%s: one image column %r, read as side-by-side AB images", where, source)
        dataset = _as_side_by_side(dataset, source, direction)
    else:
        dataset = select_renamed(as_undecoded(dataset, source, target),
                                 {source: "source", target: "target"})
    return guard_local_paths(dataset, folder, "source", "target", cache_dir=cache_dir)


# ----------------------------------------------------------------------------- unpaired
def _not_none(value: Any) -> bool:
    return value is not None


def single_image(dataset: AnyDataset, column: str) -> AnyDataset:
    """``column`` alone, renamed ``"image"``, undecoded, rows without an image dropped."""
    dataset = select_renamed(as_undecoded(dataset, column), {column: "image"})
    if isinstance(dataset, datasets.Dataset) and dataset.data.column("image").null_count == 0:
        return dataset
    return dataset.filter(_not_none, input_columns="image")


def _only_image_column(dataset: AnyDataset, column: str | None, argument: str) -> str:
    check_columns(dataset, **{argument: column})
    if column is not None:
        return column
    images = image_columns(dataset)
    if len(images) != 1:
        raise ValueError(f"Expected one image column, found {images} among {column_names(dataset)};"
                         f" pass --{argument}.")
    return images[0]


def _unpaired_from_folders(folder: Path, split: str, streaming: bool,
                           cache_dir: str | None) -> tuple[AnyDataset, AnyDataset]:
    if split not in domain_folders(folder):
        raise ValueError(f"split={split!r} needs {split}A/ and {split}B/ in {folder}; found the "
                         f"splits {domain_folders(folder)}.")
    domains = []
    for letter in "AB":
        sub = folder / f"{split}{letter}"
        dataset = pick_split(load_local_folder(sub, streaming=streaming, cache_dir=cache_dir),
                             "train", str(sub))
        domains.append(single_image(dataset, "image"))
    return domains[0], domains[1]


def _unpaired_from_splits(splits: Mapping[str, AnyDataset], split: str, where: str,
                          column_a: str | None, column_b: str | None) -> tuple[AnyDataset, ...]:
    if f"{split}A" in splits and f"{split}B" in splits:
        a, b = splits[f"{split}A"], splits[f"{split}B"]
        return (single_image(a, _only_image_column(a, column_a, "domain_a_column")),
                single_image(b, _only_image_column(b, column_b, "domain_b_column")))
    dataset = pick_split(splits, split, where)
    check_columns(dataset, domain_a_column=column_a, domain_b_column=column_b)
    if (column_a is None) != (column_b is None):
        raise ValueError(f"Pass both --domain_a_column and --domain_b_column or neither (got "
                         f"{column_a!r} and {column_b!r}).")
    if column_a is None:
        column_a, column_b = detect_two_columns(dataset, UNPAIRED_COLUMN_CANDIDATES)
    if column_a == column_b:
        raise ValueError(f"{where} has one image column ({column_a!r}); unpaired data needs two "
                         "(e.g. imageA/imageB), splits <split>A/<split>B, or trainA/ + trainB/.")
    return single_image(dataset, column_a), single_image(dataset, column_b)


def load_unpaired_datasets(
    *, dataset_name: str | None = None, dataset_config_name: str | None = None,
    train_data_dir: str | None = None, split: str = "train", domain_a_column: str | None = None,
    domain_b_column: str | None = None, streaming: bool = False, cache_dir: str | None = None,
) -> tuple[AnyDataset, AnyDataset]:
    """Two unpaired datasets (domain A, domain B), each with one undecoded ``"image"`` column.

    Sources: a CycleGAN folder (``{split}A/`` + ``{split}B/``), a dataset with splits
    ``{split}A``/``{split}B``, or one split with two image columns (``domain_a_column``/
    ``domain_b_column``, else ``imageA``/``imageB``, ``A``/``B``, or exactly two image columns);
    rows where a domain's image is None are dropped from that domain.
    """
    folder = local_source(dataset_name, train_data_dir)
    if folder is not None and not is_saved_to_disk(folder) and domain_folders(folder):
        domain_a, domain_b = _unpaired_from_folders(folder, split, streaming, cache_dir)
    else:
        splits = load_splits(dataset_name=dataset_name, dataset_config_name=dataset_config_name,
                             train_data_dir=train_data_dir, streaming=streaming,
                             cache_dir=cache_dir)
        domain_a, domain_b = _unpaired_from_splits(splits, split, dataset_name or train_data_dir,
                                                   domain_a_column, domain_b_column)
    return (guard_local_paths(domain_a, folder, "image", cache_dir=cache_dir),
            guard_local_paths(domain_b, folder, "image", cache_dir=cache_dir))
