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

import csv
import glob
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import datasets

from ..hub_access import HubUnreachableError
from ..hub_access import hub_reachable as _hub_reachable  # the one Hub probe (also models')
from .images import LAYOUT_COLUMN, REFUSED_PATH_PREFIX, SOURCE_LEFT, SOURCE_RIGHT

logger = logging.getLogger(__name__)

AnyDataset = datasets.Dataset | datasets.IterableDataset
DIRECTIONS = ("AtoB", "BtoA")
PAIRED_COLUMN_CANDIDATES = (("imageA", "imageB"), ("input", "target"), ("source", "target"))
UNPAIRED_COLUMN_CANDIDATES = (("imageA", "imageB"), ("A", "B"))
SPLIT_FOLDER_NAMES = ("train", "test", "validation", "valid", "val", "dev", "eval")
_HINT_LOCAL = "pass --train_data_dir for a local folder"
METADATA_FILE_NAMES = ("metadata.jsonl", "metadata.csv", "metadata.parquet")


# ----------------------------------------------------------------------------- local folders
def _visible_files(folder: Path) -> list[Path]:
    """Files under ``folder``, skipping hidden / ``__*`` names as ``datasets`` does."""
    return [p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith((".", "__")) for part in p.relative_to(folder).parts)]


def _image_extensions() -> set[str]:
    from datasets.packaged_modules.imagefolder.imagefolder import ImageFolder

    return {ext.lower() for ext in ImageFolder.EXTENSIONS}


def _folder_builder(folder: Path) -> str:
    """``"imagefolder"`` or ``"parquet"``; a ValueError when the folder holds neither."""
    files = _visible_files(folder)
    suffixes = {p.suffix.lower() for p in files}
    if suffixes & _image_extensions():
        return "imagefolder"
    if ".parquet" in suffixes:
        return "parquet"
    found = sorted(p.name for p in folder.rglob("*") if p.is_file())
    listing = f"it holds only {found[:8]}" if found else "it is empty"
    raise ValueError(
        f"{folder} has no image or parquet files ({listing}). Expected side-by-side AB images, "
        "images with a metadata.jsonl, parquet files, or trainA/ + trainB/ folders.")


def _is_utf8(path: Path | str) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # an undecodable byte kept as a surrogate (PEP 383)
        return False
    return True


def _split_files(folder: Path) -> list[str]:
    """``data_files`` of one split folder: ``<folder>/**``; when some names are not valid UTF-8
    (``datasets`` cannot store them: the whole load would fail), the other files one by one
    (glob-escaped), with a warning naming the skipped ones."""
    files = _visible_files(folder)
    if all(_is_utf8(p) for p in files):
        return [str(folder / "**")]
    skipped = [repr(os.fsencode(p.relative_to(folder))) for p in files if not _is_utf8(p)]
    kept = [glob.escape(str(p)) for p in files if _is_utf8(p)]
    logger.warning("Skipping %d file(s) of %s whose names are not valid UTF-8 (datasets cannot "
                   "store them): %s. Rename them to train on them.", len(skipped), folder,
                   ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    if not kept:
        raise ValueError(f"No file of {folder} has a valid UTF-8 name ({', '.join(skipped[:5])}"
                         "...); rename them.")
    return kept


def _split_folders(folder: Path) -> dict[str, list[str]]:
    """``data_files`` for imagefolder: split subfolders, or the whole folder as ``"train"``."""
    if not _is_utf8(folder):
        raise ValueError(f"The folder path {os.fsencode(folder)!r} is not valid UTF-8, which "
                         "datasets cannot store; rename it.")
    subfolders = {p.name: p for p in folder.iterdir() if p.is_dir()}
    splits = {name: _split_files(sub) for name, sub in sorted(subfolders.items())
              if name in SPLIT_FOLDER_NAMES and _visible_files(sub)}
    return splits or {"train": _split_files(folder)}


# ----------------------------------------------------------------------------- metadata files
def _is_file_name_column(name: str) -> bool:
    return name in ("file_name", "file_names") or name.endswith(("_file_name", "_file_names"))


def _metadata_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for each row of a metadata.jsonl / .csv / .parquet, file-name columns only."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        columns = [c for c in pq.read_schema(path).names if _is_file_name_column(c)]
        for number, row in enumerate(pq.read_table(path, columns=columns).to_pylist()):
            yield f"row {number}", row
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), 1):
                yield f"row {number}", {k: v for k, v in row.items()
                                        if k and _is_file_name_column(k)}
    else:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path} line {number} is not valid JSON ({err}); fix or "
                                     "remove the line.") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path} line {number} is not a JSON object: {line[:80]!r}.")
                yield f"line {number}", {k: v for k, v in row.items() if _is_file_name_column(k)}


def unsafe_file_name(value: Any, folder: str = "the metadata file's folder") -> str | None:
    """Why a metadata file name must not be read, or None when it is safe (a null is left to the
    bad-row mechanism). Safe: a relative path that stays in the metadata file's folder."""
    if value is None:
        return None
    if isinstance(value, list):
        return next((why for item in value if (why := unsafe_file_name(item, folder))), None)
    if not isinstance(value, str):
        return f"is not a string but a {type(value).__name__}"
    if "://" in value:
        return "is a URL"
    if os.path.isabs(value) or value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", value):
        return "is an absolute path"
    relative = os.path.normpath(value.replace("\\", "/")).replace("\\", "/")
    if relative == ".." or relative.startswith("../"):
        return f"leaves {folder}"
    return None


def check_metadata_files(folder: Path) -> None:
    """Refuse, before anything is read, metadata whose file names point outside their folder.

    ``datasets`` joins a metadata ``file_name`` to the metadata file's folder; ``../../x`` or
    ``/etc/passwd`` would read any file on the machine (recent ``datasets`` versions refuse them
    too, but only while generating the dataset, i.e. mid-training when streaming).
    """
    problems = []
    for path in _visible_files(folder):
        if path.name not in METADATA_FILE_NAMES:
            continue
        for where, row in _metadata_rows(path):
            problems += [f"{path} {where}: {column}={value!r} {why}" for column, value in
                         row.items() if (why := unsafe_file_name(value))]
            if len(problems) >= 5:
                break
    if problems:
        raise ValueError("Refusing metadata file names that do not name a file inside the "
                         "metadata file's folder (relative paths only, no '..' out of it, no "
                         "absolute paths or URLs): " + "; ".join(problems[:5]) + ". Fix or "
                         "remove these rows.")


def _load_dataset(where: Path, *args: Any, streaming: bool = False,
                  **kwargs: Any) -> dict[str, AnyDataset]:
    """``datasets.load_dataset`` on a local folder; a failure to generate the dataset is a
    ValueError naming the folder and the cause (instead of a ``DatasetGenerationError``).
    Streamed splits carry their row count when their files tell it (:func:`count_rows`)."""
    try:
        if not streaming:
            return dict(datasets.load_dataset(*args, **kwargs))
        builder = datasets.load_dataset_builder(*args, **kwargs)  # what load_dataset streams
        splits = dict(builder.as_streaming_dataset())
    except datasets.exceptions.DatasetGenerationError as err:
        cause = err.__cause__ or err.__context__ or err
        raise ValueError(f"Could not read the data in {where}: {type(cause).__name__}: "
                         f"{cause}") from err
    files = {str(name): list(found) for name, found in (builder.config.data_files or {}).items()}
    return {name: with_num_rows(dataset, count_rows(files.get(name, [])))
            for name, dataset in splits.items()}


# ----------------------------------------------------------------------------- stream sizes
def count_rows(files: list[str]) -> int | None:
    """Rows of a local split from its files, without decoding an image: the rows of its metadata
    files, else its parquet files' row counts, else its image files; None when unknown."""
    paths = [Path(name) for name in files]
    metadata = [p for p in paths if p.name in METADATA_FILE_NAMES]
    if metadata:
        return sum(1 for path in metadata for _ in _metadata_rows(path))
    images = [p for p in paths if p.suffix.lower() in _image_extensions()]
    parquet = [p for p in paths if p.suffix.lower() == ".parquet"]
    if parquet and not images:
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(path).metadata.num_rows for path in parquet)
    return len(images) or None


def with_num_rows(dataset: AnyDataset, rows: int | None) -> AnyDataset:
    """Record a stream's row count where ``datasets`` keeps a Hub dataset's: ``info.splits``."""
    if rows is not None and isinstance(dataset, datasets.IterableDataset):
        name = str(dataset.split or "train")
        dataset.info.splits = datasets.SplitDict({name: datasets.SplitInfo(name, num_examples=rows)})
    return dataset


def _is_saved_to_disk(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _load_from_disk(folder: Path, streaming: bool) -> dict[str, AnyDataset]:
    loaded = datasets.load_from_disk(str(folder))
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    if streaming:
        splits = {name: with_num_rows(ds.to_iterable_dataset(), len(ds))
                  for name, ds in splits.items()}
    return splits


def _check_folder(folder: str | os.PathLike, argument: str) -> Path:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ValueError(f"--{argument} {str(folder)!r} is not an existing directory; check the "
                         "path.")
    return path


def load_local_folder(folder: str | os.PathLike, *, streaming: bool = False,
                      cache_dir: str | None = None) -> dict[str, AnyDataset]:
    """All splits of a local folder (see the module docstring for the accepted layouts)."""
    path = _check_folder(folder, "train_data_dir")
    if _is_saved_to_disk(path):
        return _load_from_disk(path, streaming)
    builder = _folder_builder(path)
    if builder == "imagefolder":
        check_metadata_files(path)
        return _load_dataset(path, "imagefolder", data_files=_split_folders(path),
                             drop_labels=True, streaming=streaming, cache_dir=cache_dir)
    return _load_dataset(path, "parquet", data_dir=str(path), streaming=streaming,
                         cache_dir=cache_dir)


def domain_folders(folder: Path) -> list[str]:
    """Split prefixes with both ``<prefix>A/`` and ``<prefix>B/`` (e.g. ``["test", "train"]``)."""
    names = {p.name for p in folder.iterdir() if p.is_dir()}
    prefixes = (match.group(1) for name in names if (match := re.fullmatch(r"(.+)A", name)))
    return sorted(prefix for prefix in prefixes if f"{prefix}B" in names)


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
        f"Cannot load --dataset_name {name!r} from the Hub: {why}. Set HF_HUB_OFFLINE=1 to use a "
        f"copy already in the datasets cache, or {_HINT_LOCAL}.")


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
        return _check_folder(train_data_dir, "train_data_dir")
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
    if train_data_dir is None and not _is_saved_to_disk(folder):  # a local dataset_name
        check_metadata_files(folder)
        return _load_dataset(folder, str(folder), dataset_config_name, streaming=streaming,
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


# ----------------------------------------------------------------------------- columns
def column_names(dataset: AnyDataset) -> list[str]:
    features = dataset.features
    return list(features) if features is not None else list(dataset.column_names or [])


def _is_image_feature(feature: Any) -> bool:
    return isinstance(feature, datasets.Image) or (isinstance(feature, dict) and "bytes" in feature)


def image_columns(dataset: AnyDataset) -> list[str]:
    """Columns holding images (``datasets.Image`` or raw ``{"bytes", "path"}`` structs)."""
    if dataset.features is None:
        raise ValueError("The columns of this streaming dataset are unknown; name the image "
                         "columns explicitly (--source_column/--target_column or "
                         "--domain_a_column/--domain_b_column).")
    return [name for name, feature in dataset.features.items() if _is_image_feature(feature)]


def check_columns(dataset: AnyDataset, **named: str | None) -> None:
    """ValueError for any ``argument=column`` whose column does not exist, listing the columns."""
    existing = column_names(dataset)
    for argument, column in named.items():
        if column is not None and existing and column not in existing:
            raise ValueError(f"--{argument} {column!r} is not a column of this dataset; its "
                             f"columns are {existing}. Pass one of them.")


def detect_two_columns(dataset: AnyDataset,
                       candidates: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The (A, B) image columns: a known name pair, else exactly two image columns; a single image
    column gives (col, col) (side-by-side)."""
    names = column_names(dataset)
    for a, b in candidates:
        if a in names and b in names:
            return a, b
    images = image_columns(dataset)
    if len(images) in (1, 2):
        return images[0], images[-1]
    raise ValueError(f"Cannot tell which columns hold the two images: columns {names}, image "
                     f"columns {images}. Name them explicitly (e.g. --source_column and "
                     "--target_column).")


def _can_hold_images(feature: Any) -> bool:
    """Image features, ``{"bytes", "path"}`` structs, and string (path) / binary (bytes) values."""
    if isinstance(feature, dict):
        return bool(feature) and set(feature) <= {"bytes", "path"}
    if isinstance(feature, datasets.Value):
        return feature.dtype in ("string", "large_string", "binary", "large_binary")
    return isinstance(feature, datasets.Image)


def as_undecoded(dataset: AnyDataset, *columns: str) -> AnyDataset:
    """Cast ``columns`` to ``datasets.Image(decode=False)`` (metadata-only for Image columns).

    Do this FIRST: a streaming dataset decodes its Image columns in every later ``map`` step
    (``select_columns`` / ``rename_columns`` included), which would crash on a bad file. A
    column that cannot hold images (numbers, lists...) is a ValueError here, not an Arrow error
    at the first row (streaming casts lazily).
    """
    for column in dict.fromkeys(columns):
        feature = dataset.features.get(column) if dataset.features is not None else None
        if feature is not None and not _can_hold_images(feature):
            raise ValueError(f"Column {column!r} holds {feature}, not images (an Image feature, "
                             "file paths or encoded bytes); name the image columns explicitly "
                             "(--source_column/--target_column or --domain_a_column/"
                             "--domain_b_column).")
        try:
            dataset = dataset.cast_column(column, datasets.Image(decode=False))
        except (TypeError, ValueError, NotImplementedError) as err:
            feature = dataset.features[column] if dataset.features else "?"
            raise ValueError(f"Column {column!r} holds {feature}, not images: {err}") from err
    return dataset


def select_renamed(dataset: AnyDataset, mapping: dict[str, str]) -> AnyDataset:
    """Keep the columns of ``mapping`` (old -> new) and rename them (swaps are allowed)."""
    dataset = dataset.select_columns(list(mapping))
    temporary = {old: f"__wkd_{i}" for i, old in enumerate(mapping)}
    dataset = dataset.rename_columns(temporary)
    return dataset.rename_columns({temporary[old]: new for old, new in mapping.items()})


# ----------------------------------------------------------------------------- image paths
HUB_URL_PREFIXES = ("hf://",)


def _guarded_value(value: Any, roots: tuple[str, ...], hub: bool = False) -> Any:
    """A path-only image value of a local dataset: a relative path joined to the data folder
    (not the working directory), and a path outside the folder (absolute, ``..``, a URL)
    replaced by a refusal that decodes as a bad image naming the path (the file is never read).
    For a Hub dataset (``hub``; ``roots`` = the Hugging Face caches) only ``hf://`` URLs and
    absolute paths inside the caches are kept."""
    if not isinstance(value, Mapping) or value.get("bytes") is not None or not value.get("path"):
        return value
    path = value["path"]
    if hub:
        if path.startswith(HUB_URL_PREFIXES):
            return value
        inside = os.path.isabs(path) and "://" not in path and any(
            os.path.commonpath([os.path.normpath(path), root]) == root for root in roots)
        if inside:
            return value
        reason = (f"the image path of a Hub dataset points outside the Hugging Face caches and "
                  f"the Hub ({path}); it was not read")
        return {"bytes": REFUSED_PATH_PREFIX + reason.encode(), "path": path}
    if os.path.isabs(path) and "://" not in path:
        inside = any(os.path.commonpath([os.path.normpath(path), root]) == root for root in roots)
        why = None if inside else "is an absolute path outside the data folder"
    else:
        why = unsafe_file_name(path, "the data folder")
    if why:
        reason = f"the image path {why} ({roots[0]}); it was not read"
        return {"bytes": REFUSED_PATH_PREFIX + reason.encode(), "path": path}
    if not os.path.isabs(path):
        return {"bytes": None, "path": os.path.join(roots[0], os.path.normpath(path))}
    return value


def _guard_batch(batch: dict[str, list], columns: list[str], roots: tuple[str, ...],
                 hub: bool = False) -> dict[str, list]:
    return {column: [_guarded_value(v, roots, hub) for v in batch[column]] for column in columns}


def _cache_roots(cache_dir: str | None = None) -> tuple[str, ...]:
    """Where a Hub dataset's files legitimately live on this machine."""
    from huggingface_hub import constants as hub_constants

    paths = [datasets.config.HF_DATASETS_CACHE, hub_constants.HF_HUB_CACHE, cache_dir]
    return tuple(dict.fromkeys(os.path.normpath(os.path.realpath(p)) for p in paths if p))


def _path_only_paths(dataset: datasets.Dataset, column: str) -> list[str]:
    """Paths of the values of ``column`` that have no bytes (read from Arrow, bytes untouched)."""
    import pyarrow.compute as pc

    values = dataset.data.column(column)
    paths = pc.filter(pc.struct_field(values, "path"), pc.is_null(pc.struct_field(values, "bytes")))
    return [path for path in paths.to_pylist() if path]


def guard_local_paths(dataset: AnyDataset, folder: Path | None, *columns: str,
                      cache_dir: str | None = None) -> AnyDataset:
    """Keep image values from reading files they should not: a LOCAL dataset's (``folder``)
    stay inside ``folder``, a Hub dataset's (``folder`` None) inside the Hugging Face caches or
    on the Hub (see :func:`_guarded_value`). ``columns`` must be undecoded (``as_undecoded``).
    Map-style data is rewritten only when some value needs it (imagefolder paths are absolute
    paths inside the folder or the cache); streaming data is checked row by row."""
    hub = folder is None
    roots = _cache_roots(cache_dir) if hub else tuple(dict.fromkeys(
        os.path.normpath(p) for p in (os.path.abspath(folder), os.path.realpath(folder))))
    columns = list(dict.fromkeys(columns))
    kwargs: dict[str, Any] = {"batched": True, "features": dataset.features,
                              "fn_kwargs": {"columns": columns, "roots": roots, "hub": hub}}
    if isinstance(dataset, datasets.Dataset):
        values = ({"bytes": None, "path": path} for column in columns
                  for path in _path_only_paths(dataset, column))
        if all(_guarded_value(value, roots, hub) is value for value in values):
            return dataset  # nothing to change: no rewrite of the table
        kwargs["desc"] = "checking image paths"
    return dataset.map(_guard_batch, **kwargs)


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
    if folder is not None and not _is_saved_to_disk(folder) and domain_folders(folder):
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
    if folder is not None and not _is_saved_to_disk(folder) and domain_folders(folder):
        domain_a, domain_b = _unpaired_from_folders(folder, split, streaming, cache_dir)
    else:
        splits = load_splits(dataset_name=dataset_name, dataset_config_name=dataset_config_name,
                             train_data_dir=train_data_dir, streaming=streaming,
                             cache_dir=cache_dir)
        domain_a, domain_b = _unpaired_from_splits(splits, split, dataset_name or train_data_dir,
                                                   domain_a_column, domain_b_column)
    return (guard_local_paths(domain_a, folder, "image", cache_dir=cache_dir),
            guard_local_paths(domain_b, folder, "image", cache_dir=cache_dir))
