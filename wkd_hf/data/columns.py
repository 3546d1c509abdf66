"""The columns of a loaded dataset: which hold images, the two of a pair, undecoded views of them
(``{"bytes", "path"}`` dicts), and the guard that keeps a local source's path-only image values
inside its folder (or a Hub dataset's inside the Hugging Face caches)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets

from .folders import AnyDataset, unsafe_file_name
from .images import REFUSED_PATH_PREFIX

logger = logging.getLogger(__name__)


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
