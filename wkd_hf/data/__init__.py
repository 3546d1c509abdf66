"""Data for pix2pix / CycleGAN training with ``datasets``: loading, decoding, transforms, loaders.

- :mod:`.sources`: ``load_paired_dataset`` / ``load_unpaired_datasets`` (Hub ids, local folders
  of side-by-side AB images, imagefolders with ``metadata.jsonl``, parquet files,
  ``trainA/`` + ``trainB/``), all returning UNDECODED image columns; Hub datasets. Under it:
  :mod:`.folders` (local folder layouts, splits, metadata files) and :mod:`.columns` (image
  columns, undecoded views, the guard on path-only image values).
- :mod:`.images`: the decoding policy (``decode_image``, ``BadImageError``) and the transforms
  (``PairedTransform``, ``UnpairedTransform``) that share one crop and flip across a pair.
- :mod:`.loaders`: ``split_train_validation`` (a fraction of a stream: of its known size,
  ``known_num_rows``, else ``DEFAULT_STREAMING_VALIDATION_ROWS`` rows), ``build_train_dataloader`` /
  ``build_eval_dataloader`` (bad images skipped and counted by a ``BadSampleTracker``),
  ``UnalignedDataset`` (CycleGAN pairs) and ``describe_dataset``.
"""

from .images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    BadImageError,
    BadSampleTracker,
    PairedTransform,
    TooManyBadImagesError,
    UnpairedTransform,
    decode_image,
    is_bad_sample,
    set_max_image_pixels,
    split_side_by_side,
)
from .loaders import (
    DEFAULT_STREAMING_VALIDATION_ROWS,
    UnalignedDataset,
    build_eval_dataloader,
    build_train_dataloader,
    collate_skipping_bad,
    describe_dataset,
    known_num_rows,
    split_train_validation,
)
from .sources import load_paired_dataset, load_unpaired_datasets

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_STREAMING_VALIDATION_ROWS",
    "BadImageError",
    "BadSampleTracker",
    "PairedTransform",
    "TooManyBadImagesError",
    "UnalignedDataset",
    "UnpairedTransform",
    "build_eval_dataloader",
    "build_train_dataloader",
    "collate_skipping_bad",
    "decode_image",
    "describe_dataset",
    "is_bad_sample",
    "known_num_rows",
    "load_paired_dataset",
    "load_unpaired_datasets",
    "set_max_image_pixels",
    "split_side_by_side",
    "split_train_validation",
]
