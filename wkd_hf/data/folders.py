"""Local dataset folders: the ``imagefolder`` / ``parquet`` / ``save_to_disk`` layouts, their
splits (subfolders, never file names), ``metadata.jsonl`` files checked before anything is read,
``trainA/`` + ``trainB/`` domain folders, and the row counts that streams lack."""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets

logger = logging.getLogger(__name__)

AnyDataset = datasets.Dataset | datasets.IterableDataset
SPLIT_FOLDER_NAMES = ("train", "test", "validation", "valid", "val", "dev", "eval")
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


def load_folder_dataset(where: Path, *args: Any, streaming: bool = False,
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


def is_saved_to_disk(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _load_from_disk(folder: Path, streaming: bool) -> dict[str, AnyDataset]:
    loaded = datasets.load_from_disk(str(folder))
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    if streaming:
        splits = {name: with_num_rows(ds.to_iterable_dataset(), len(ds))
                  for name, ds in splits.items()}
    return splits


def check_folder(folder: str | os.PathLike, argument: str) -> Path:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ValueError(f"--{argument} {str(folder)!r} is not an existing directory; check the "
                         "path.")
    return path


def load_local_folder(folder: str | os.PathLike, *, streaming: bool = False,
                      cache_dir: str | None = None) -> dict[str, AnyDataset]:
    """All splits of a local folder (see the module docstring for the accepted layouts)."""
    path = check_folder(folder, "train_data_dir")
    if is_saved_to_disk(path):
        return _load_from_disk(path, streaming)
    builder = _folder_builder(path)
    if builder == "imagefolder":
        check_metadata_files(path)
        return load_folder_dataset(path, "imagefolder", data_files=_split_folders(path),
                             drop_labels=True, streaming=streaming, cache_dir=cache_dir)
    return load_folder_dataset(path, "parquet", data_dir=str(path), streaming=streaming,
                         cache_dir=cache_dir)


def domain_folders(folder: Path) -> list[str]:
    """Split prefixes with both ``<prefix>A/`` and ``<prefix>B/`` (e.g. ``["test", "train"]``)."""
    names = {p.name for p in folder.iterdir() if p.is_dir()}
    prefixes = (match.group(1) for name in names if (match := re.fullmatch(r"(.+)A", name)))
    return sorted(prefix for prefix in prefixes if f"{prefix}B" in names)
