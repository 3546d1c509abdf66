"""Train / validation splits and the torch DataLoaders over undecoded ``datasets`` rows.

Where things run: the transform (decoding, crops, flips) and a :class:`BadSampleTracker` run
inside each DataLoader worker (or the main process with ``num_workers=0``), in a small torch
dataset wrapper. A row the transform cannot decode comes back as a bad-sample marker; the wrapper
counts it, warns once per file (path, or ``row <index>`` when it has no path), raises
:class:`TooManyBadImagesError` past ``max_bad_fraction`` (the DataLoader re-raises it in the main
process), and yields ``None``; :func:`collate_skipping_bad` drops it. A batch may therefore hold
fewer than ``batch_size`` rows, and is ``None`` when all of its rows were bad: skip it (map-style
only: a stream drops bad rows before batching, so its batches are always full).

Training loaders use ``persistent_workers`` when ``num_workers > 0``, so each worker's tracker
(and its warned-once memory) lives for the whole run instead of one epoch.

Reproducible and resumable: the transforms draw crops / flips from torch's global RNG, but each
row runs under :func:`seeded_rng` keyed by (seed, epoch, row index), and the map-style order
comes from :class:`EpochSampler` (seed + epoch). Data augmentation therefore neither depends on
nor draws from the training RNG stream, and ``accelerator.skip_first_batches`` after
``load_state`` reproduces the interrupted epoch exactly (accelerate's one-batch prefetch and
worker seeding would otherwise shift it).

Multi-process training: hand the loader to ``accelerator.prepare``. For streaming data accelerate
dispatches batches from rank 0; do not also call ``datasets.distributed.split_dataset_by_node``
(sharding twice silently drops data). Map-style data is sharded by accelerate's sampler.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import datasets
import torch
from torch.utils.data import DataLoader, default_collate

from .folders import AnyDataset
from .images import BAD_SAMPLE_KEY, BadSampleTracker, image_path, is_bad_sample

logger = logging.getLogger(__name__)

Transform = Callable[[Mapping[str, Any]], Any]


# ----------------------------------------------------------------------------- unaligned pairs
class UnalignedDataset:
    """Two unpaired one-column (``"image"``) datasets served as rows ``{"A": row_a, "B": row_b}``.

    CycleGAN's pairing: map-style data has ``max(len(A), len(B))`` rows; row ``i`` takes
    ``A[i % len(A)]`` and, when training, a random B (torch's global RNG), else
    ``B[i % len(B)]``. Streaming data zips the two streams (each shuffled with its own seed when
    training) and stops at the shorter one. Transforms are applied per domain: an
    :class:`~wkd_hf.data.images.UnpairedTransform` gives batches ``{"A", "B"}``.
    """

    def __init__(self, domain_a: AnyDataset, domain_b: AnyDataset) -> None:
        kinds = {type(domain_a).__name__, type(domain_b).__name__}
        streaming = [isinstance(d, datasets.IterableDataset) for d in (domain_a, domain_b)]
        if len(set(streaming)) != 1:
            raise TypeError(
                f"Both domains must be streaming or both map-style, got {sorted(kinds)}.")
        self.domain_a = domain_a
        self.domain_b = domain_b
        self.streaming = streaming[0]

    def __len__(self) -> int:
        if self.streaming:
            raise TypeError("A streaming UnalignedDataset has no length.")
        return max(len(self.domain_a), len(self.domain_b))

    def limited(self, max_samples: int) -> UnalignedDataset:
        """The first ``max_samples`` rows of each domain."""
        return UnalignedDataset(_first_rows(self.domain_a, max_samples),
                                _first_rows(self.domain_b, max_samples))


# ----------------------------------------------------------------------------- collate
def collate_skipping_bad(
    batch: list[Mapping[str, Any] | None],
) -> dict[str, torch.Tensor] | None:
    """Drop ``None`` rows and bad-sample markers, stack the rest (``default_collate``).

    Returns None when every row of the batch was bad.
    """
    rows = [row for row in batch if not is_bad_sample(row)]
    return default_collate(rows) if rows else None


# ----------------------------------------------------------------------------- torch wrappers
def _row_name(row: Mapping[str, Any], index: int) -> str:
    """How a bad row is named when its marker has no path: ``row <index>`` (+ any image paths)."""
    paths = [image_path(v) for v in row.values() if isinstance(v, Mapping)]
    paths = [p for p in paths if p]
    return f"row {index}" + (f" ({', '.join(paths)})" if paths else "")


class _Checked:
    """Apply the transform to one row; count bad rows in the tracker and turn them into None."""

    def __init__(self, transform: Transform, max_bad_fraction: float) -> None:
        self.transform = transform
        self.tracker = BadSampleTracker(max_bad_fraction)

    def _record_bad(self, out: Mapping[str, Any] | None, fallback_name: str) -> None:
        if out is None:
            self.tracker.record_bad(fallback_name, "the transform returned None")
        else:
            self.tracker.record_bad(out.get(BAD_SAMPLE_KEY) or fallback_name, out.get("reason", ""))

    def __call__(self, row: Mapping[str, Any], index: int) -> Any:
        out = self.transform(row)
        if is_bad_sample(out):
            self._record_bad(out, _row_name(row, index))
            return None
        self.tracker.record_ok()
        return out

    def unaligned(self, row_a: Mapping[str, Any], row_b: Mapping[str, Any],
                  index: int) -> dict[str, Any] | None:
        """Both domains through the (unpaired) transform -> ``{"A", "B"}``, or None."""
        outs = {"A": self.transform(row_a), "B": self.transform(row_b)}
        for (name, out), row in zip(outs.items(), (row_a, row_b)):
            if is_bad_sample(out):
                self._record_bad(out, f"domain {name} {_row_name(row, index)}")
                return None
        self.tracker.record_ok()
        return {name: out["image"] for name, out in outs.items()}


@contextlib.contextmanager
def seeded_rng(seed: int, *keys: int) -> Iterator[None]:
    """Run a block on torch's global CPU RNG seeded from ``(seed, *keys)``, then restore it.

    The transforms draw crops and flips from torch's global RNG; the loaders wrap each row in
    this, keyed by (epoch, row index[, worker]), so augmentation is a function of the row and
    the epoch alone: identical after ``accelerate`` resumes mid-epoch (whatever was prefetched),
    for any ``num_workers`` on map-style data, and augmentation draws nothing from the training
    RNG stream.
    """
    digest = hashlib.blake2b(repr((seed, *keys)).encode(), digest_size=8).digest()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int.from_bytes(digest, "little"))
        yield


class EpochSampler(torch.utils.data.Sampler):
    """Map-style sampler yielding ``(epoch, index)`` keys, in an order fixed by ``(seed, epoch)``.

    A permutation per epoch (``shuffle``) or ``0..size-1``. ``set_epoch`` (called by
    accelerate's ``DataLoader.set_epoch``) picks the epoch; without it, each full pass moves to
    the next epoch. Every process computes the same order, as accelerate's sharding requires.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True) -> None:
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        order: Any = range(self.size)
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(
                self.seed + epoch)).tolist()
        for index in order:
            yield epoch, index
        self.epoch = epoch + 1


def _epoch_and_index(key: int | tuple[int, int]) -> tuple[int, int]:
    return (int(key[0]), int(key[1])) if isinstance(key, tuple) else (0, int(key))


class _MapRows(torch.utils.data.Dataset):
    """Map-style rows through the transform; keys are ``(epoch, index)`` or plain indices."""

    def __init__(self, dataset: datasets.Dataset, checked: _Checked, seed: int) -> None:
        self.dataset = dataset
        self.checked = checked
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        epoch, index = _epoch_and_index(key)
        with seeded_rng(self.seed, epoch, index):
            return self.checked(self.dataset[index], index)


class _MapUnaligned(torch.utils.data.Dataset):
    """CycleGAN pairs: ``A[i % len(A)]`` with a random B (train) or ``B[i % len(B)]``."""

    def __init__(self, data: UnalignedDataset, checked: _Checked, seed: int,
                 random_b: bool) -> None:
        self.data = data
        self.checked = checked
        self.seed = seed
        self.random_b = random_b

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        epoch, index = _epoch_and_index(key)
        size_a, size_b = len(self.data.domain_a), len(self.data.domain_b)
        with seeded_rng(self.seed, epoch, index):
            index_b = int(torch.randint(size_b, ())) if self.random_b else index % size_b
            return self.checked.unaligned(self.data.domain_a[index % size_a],
                                          self.data.domain_b[index_b], index)


def _worker_id() -> int:
    info = torch.utils.data.get_worker_info()
    return info.id if info is not None else 0


class _IterableRows(torch.utils.data.IterableDataset):
    """Streaming rows (or zipped A/B rows) through the transform; ``datasets`` shards the
    stream across DataLoader workers. Augmentation is keyed by (epoch, position, worker).
    Bad rows are dropped here, before batching: streaming batches are dispatched from rank 0,
    and a batch of bad rows only (None) would break accelerate's concatenation."""

    def __init__(self, dataset: datasets.IterableDataset, checked: _Checked, seed: int,
                 domain_b: datasets.IterableDataset | None = None) -> None:
        self.dataset = dataset
        self.domain_b = domain_b
        self.checked = checked
        self.seed = seed

    def __iter__(self) -> Iterator[Any]:
        epoch, worker = self.dataset.epoch, _worker_id()  # datasets shares the epoch with workers
        rows: Iterator[Any] = iter(self.dataset)
        if self.domain_b is not None:
            rows = zip(self.dataset, self.domain_b)
        for index, row in enumerate(rows):
            with seeded_rng(self.seed, epoch, index, worker):
                out = (self.checked(row, index) if self.domain_b is None
                       else self.checked.unaligned(row[0], row[1], index))
            if out is not None:  # a bad row (counted, warned) costs that row, never a batch
                yield out

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle per epoch (accelerate's ``DataLoader.set_epoch`` calls this)."""
        for dataset in (self.dataset, self.domain_b):
            if dataset is not None:
                dataset.set_epoch(epoch)


def _first_rows(dataset: AnyDataset, max_samples: int | None) -> AnyDataset:
    if max_samples is None:
        return dataset
    if max_samples < 1:
        raise ValueError(f"--max_train_samples {max_samples} must be >= 1 (default: all rows).")
    if isinstance(dataset, datasets.IterableDataset):
        return dataset.take(max_samples)
    return dataset.select(range(min(max_samples, len(dataset))))


def _shuffled(dataset: datasets.IterableDataset, seed: int, buffer_size: int) -> Any:
    return dataset.shuffle(seed=seed, buffer_size=buffer_size)


def _torch_dataset(dataset: Any, checked: _Checked, *, train: bool, seed: int = 0,
                   buffer_size: int = 1000) -> torch.utils.data.Dataset:
    """Wrap a ``datasets`` dataset or an :class:`UnalignedDataset` for a torch DataLoader."""
    if isinstance(dataset, UnalignedDataset):
        if not dataset.streaming:
            return _MapUnaligned(dataset, checked, seed, random_b=train)
        a, b = dataset.domain_a, dataset.domain_b
        if train:
            a, b = _shuffled(a, seed, buffer_size), _shuffled(b, seed + 1, buffer_size)
        return _IterableRows(a, checked, seed, domain_b=b)
    if isinstance(dataset, datasets.IterableDataset):
        stream = _shuffled(dataset, seed, buffer_size) if train else dataset
        return _IterableRows(stream, checked, seed)
    if isinstance(dataset, datasets.Dataset):
        return _MapRows(dataset, checked, seed)
    raise TypeError(f"Expected a datasets.Dataset, datasets.IterableDataset or UnalignedDataset, "
                    f"got {type(dataset).__name__}.")


# ----------------------------------------------------------------------------- dataloaders
def build_train_dataloader(
    dataset: AnyDataset | UnalignedDataset, transform: Transform, batch_size: int, *, seed: int,
    shuffle: bool = True, num_workers: int = 0, shuffle_buffer_size: int = 1000,
    max_samples: int | None = None, max_bad_fraction: float = 0.1, pin_memory: bool = False,
) -> DataLoader:
    """Training loader: batches ``{"source", "target"}`` / ``{"image"}`` / ``{"A", "B"}`` of
    float32 N x 3 x R x R in [-1, 1] (N <= ``batch_size`` when rows were bad), or None.

    Map-style: an :class:`EpochSampler` (a permutation fixed by ``seed`` + epoch). Streaming:
    ``dataset.shuffle(seed, buffer_size)``. Both reshuffle via ``loader.set_epoch(epoch)``
    (accelerate's prepared loader forwards it). Crops and flips are keyed by (seed, epoch, row),
    see :func:`seeded_rng`, so a run resumed mid-epoch sees the same images. ``max_samples``
    keeps the first rows (before shuffling). ``drop_last=True``. ``pin_memory`` (training on
    CUDA): page-locked batches, so their copy to the GPU can overlap the step (accelerate's
    ``non_blocking``).
    """
    if batch_size < 1:
        raise ValueError(f"--train_batch_size {batch_size} must be >= 1.")
    if max_samples is not None:
        dataset = (dataset.limited(max_samples) if isinstance(dataset, UnalignedDataset)
                   else _first_rows(dataset, max_samples))
    wrapped = _torch_dataset(dataset, _Checked(transform, max_bad_fraction), train=shuffle,
                             seed=seed, buffer_size=shuffle_buffer_size)
    sampler = None
    if not isinstance(wrapped, torch.utils.data.IterableDataset):
        if len(wrapped) < batch_size:
            raise ValueError(f"The training data has {len(wrapped)} rows, fewer than "
                             f"--train_batch_size {batch_size}, so no full batch is left; lower "
                             "--train_batch_size.")
        sampler = EpochSampler(len(wrapped), seed, shuffle=shuffle)
    return DataLoader(wrapped, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_skipping_bad, drop_last=True,
                      persistent_workers=num_workers > 0, pin_memory=pin_memory)


def build_eval_dataloader(
    dataset: AnyDataset | UnalignedDataset, transform: Transform, batch_size: int,
    num_workers: int = 0, *, max_bad_fraction: float = 0.1,
) -> DataLoader:
    """Evaluation loader: fixed order, no shuffling, ``drop_last=False`` (use ``train=False``
    transforms)."""
    if getattr(transform, "train", False):
        logger.warning("build_eval_dataloader got a training transform (%r): evaluation images "
                       "will be randomly cropped and flipped. Use train=False.", transform)
    wrapped = _torch_dataset(dataset, _Checked(transform, max_bad_fraction), train=False)
    return DataLoader(wrapped, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=collate_skipping_bad, drop_last=False)


# ----------------------------------------------------------------------------- splits
# Validation rows of a stream of unknown size when --validation_split is a fraction.
DEFAULT_STREAMING_VALIDATION_ROWS = 16


def _validation_rows(validation_split: float, size: int) -> int:
    """Rows to hold out of ``size`` (a fraction rounds up, like ``train_test_split``)."""
    if _is_fraction(validation_split):
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"--validation_split {validation_split} must be a fraction in "
                             "(0, 1) or a whole number of rows.")
        rows = math.ceil(validation_split * size)
    else:
        rows = int(validation_split)
    if not 1 <= rows < size:
        raise ValueError(f"--validation_split {validation_split} gives {rows} of {size} rows; "
                         "leave at least one row for each of training and validation.")
    return rows


def known_num_rows(dataset: AnyDataset) -> int | None:
    """Rows of a dataset: its length, or a stream's ``info.splits`` count (Hub metadata, or the
    loaders' count of a local folder's files); None when unknown."""
    if isinstance(dataset, datasets.Dataset):
        return len(dataset)
    splits = dataset.info.splits or {}
    if dataset.split is not None:
        info = splits.get(str(dataset.split))
    else:
        info = next(iter(splits.values())) if len(splits) == 1 else None
    return (info.num_examples or None) if info is not None else None


def _is_fraction(validation_split: float) -> bool:
    return isinstance(validation_split, float) and not validation_split.is_integer()


def _streaming_validation_rows(dataset: datasets.IterableDataset, validation_split: float) -> int:
    """Rows a stream holds out: a count as given, a fraction of the known size, else
    :data:`DEFAULT_STREAMING_VALIDATION_ROWS` (said in one warning)."""
    size = known_num_rows(dataset)
    if size is not None:
        rows = _validation_rows(validation_split, size)
        if _is_fraction(validation_split):
            logger.info("--validation_split %g of a stream of %d rows: its first %d rows are the "
                        "validation set.", validation_split, size, rows)
        return rows
    if not _is_fraction(validation_split):
        return int(validation_split)
    logger.warning("--validation_split %g is a fraction, but this stream does not say how many "
                   "rows it has: its first %d rows are the validation set. Pass "
                   "--validation_split N to hold out N rows instead.", validation_split,
                   DEFAULT_STREAMING_VALIDATION_ROWS)
    return DEFAULT_STREAMING_VALIDATION_ROWS


def split_train_validation(dataset: AnyDataset, validation_split: float,
                           seed: int) -> tuple[AnyDataset, AnyDataset | None]:
    """(train, validation) carved from one split; ``validation_split`` 0 gives ``(dataset, None)``.

    ``validation_split``: a fraction in (0, 1) or a row count. Map-style: drawn at random with
    ``seed`` (``train_test_split``); the two parts are disjoint and cover the dataset.
    Streaming: validation = the first rows (``take``), training = the rest (``skip``); a fraction
    needs the stream's size (:func:`known_num_rows`), else
    :data:`DEFAULT_STREAMING_VALIDATION_ROWS` rows are held out, with a warning. Caveat: with
    several DataLoader workers *and* a stream of several multi-row shards (parquet files),
    ``datasets`` splits the skip across the workers' shards, so the parts may overlap; local
    image folders stream as one shard and are exact.
    """
    if isinstance(validation_split, bool) or validation_split < 0:
        raise ValueError(f"--validation_split {validation_split!r} must be a fraction in (0, 1), "
                         "a row count >= 1, or 0 for no validation.")
    if validation_split == 0:
        return dataset, None
    if isinstance(dataset, datasets.IterableDataset):
        rows = _streaming_validation_rows(dataset, validation_split)
        return dataset.skip(rows), dataset.take(rows)
    rows = _validation_rows(validation_split, len(dataset))
    parts = dataset.train_test_split(test_size=rows, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def describe_dataset(dataset: AnyDataset | UnalignedDataset) -> str:
    """One line for logs: rows (or "streaming") and columns."""
    if isinstance(dataset, UnalignedDataset):
        domains = (describe_dataset(dataset.domain_a), describe_dataset(dataset.domain_b))
        return "unaligned A: {}; B: {}".format(*domains)
    columns = dataset.column_names
    listing = ", ".join(columns) if columns else "unknown columns"
    if isinstance(dataset, datasets.IterableDataset):
        return f"streaming ({dataset.num_shards} shards), columns: {listing}"
    return f"{len(dataset)} rows, columns: {listing}"
