"""Image decoding policy and the paired / unpaired training transforms.

Rows reach the transforms UNDECODED (``datasets.Image(decode=False)`` dicts ``{"bytes", "path"}``)
so that a corrupt file is caught here, per row, instead of crashing inside ``datasets``.

Decoding policy (:func:`decode_image`), every image ends as 8-bit RGB:

- EXIF orientation is applied.
- ``L`` / ``1`` / ``CMYK`` / ``YCbCr`` / ``P`` without transparency: ``PIL.Image.convert("RGB")``.
- ``RGBA`` / ``LA`` / ``PA`` / ``P`` with transparency: composited on a WHITE background (a
  transparent background becomes white, not black).
- 16-bit and 32-bit integer grayscale (``I;16*``, ``I``): the 0..65535 range is mapped linearly to
  0..255 (values outside are clipped). ``F`` (float): clipped to 0..255.
- A truncated / corrupt / missing / non-image file, a null value (e.g. a null ``file_name`` in
  ``metadata.jsonl``) and an image of more than ``max_image_pixels`` pixels (checked from the
  header, before decoding: a 12000 x 12000 file would take ~0.5 GB as RGB) raise
  :class:`BadImageError`. The cap defaults to :data:`DEFAULT_MAX_IMAGE_PIXELS` (64 megapixels);
  :func:`set_max_image_pixels` changes it for the process (``--max_image_pixels``), and the
  transforms capture it when built, so DataLoader workers use it too.

Side-by-side (pix2pix "AB") images are split into two halves of ``width // 2`` columns; an odd
width drops the last column (one warning per process). Paired images of different sizes are each
resized to ``load_size`` independently, then share one crop and one flip.

Bad rows: a transform returns a *bad-sample marker* ``{"bad_sample": path_or_"", "reason": str}``
instead of tensors (a dict, so wrappers that pass unknown dicts through keep it). The dataloader
wrappers in :mod:`wkd_hf.data.loaders` turn markers into ``None`` and feed a
:class:`BadSampleTracker`; :func:`~wkd_hf.data.loaders.collate_skipping_bad` drops both.

Randomness (crop offsets, flips) comes only from torch's global RNG (``torch.randint`` /
``torch.rand``; no ``random``, no numpy RNG). The loaders in :mod:`wkd_hf.data.loaders` seed it per
row from (seed, epoch, row index), which makes augmentation reproducible and exactly resumable.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch

logger = logging.getLogger(__name__)

BAD_SAMPLE_KEY = "bad_sample"
LAYOUT_COLUMN = "layout"
SOURCE_LEFT, SOURCE_RIGHT = "source_left", "source_right"
_INT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_warned: set[str] = set()
DEFAULT_MAX_IMAGE_PIXELS = 64 * 2**20  # 64 megapixels: 8192 x 8192 fits
_max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS
_PROCESS_SETTING: Any = object()  # decode_image's default: use _max_image_pixels
# ``bytes`` of a value whose path must not be read (set by wkd_hf.data.sources for a local
# dataset's path outside its folder): decoding it is a bad image naming the path, never a read.
REFUSED_PATH_PREFIX = b"wkd_hf refused to read this path: "


class BadImageError(ValueError):
    """An image that cannot be decoded (truncated, corrupt, missing, not an image)."""

    def __init__(self, source: str, reason: str = "could not be decoded") -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source or '<image without path>'}: {reason}")


class TooManyBadImagesError(RuntimeError):
    """More than the allowed share of images could not be decoded."""


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


# ----------------------------------------------------------------------------- decoding
def image_path(value: Any) -> str:
    """The file path of an undecoded image value, or "" when it has none (bytes only)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return value.get("path") or ""
    return getattr(value, "filename", "") or ""


def set_max_image_pixels(max_pixels: int | None) -> None:
    """Largest image (width x height) :func:`decode_image` accepts in this process; ``None``: no
    cap of ours (PIL's own decompression-bomb limit still applies). Transforms built afterwards
    capture the value."""
    global _max_image_pixels
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int)
                                   or max_pixels < 1):
        raise ValueError(f"max_image_pixels={max_pixels!r} must be a positive int or None.")
    _max_image_pixels = max_pixels


def get_max_image_pixels() -> int | None:
    return _max_image_pixels


def _check_pixels(image: PIL.Image.Image, max_pixels: int | None) -> None:
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise ValueError(f"{width}x{height} is {width * height / 1e6:.1f} megapixels, more than "
                         f"--max_image_pixels {max_pixels} ({max_pixels / 1e6:.1f} megapixels); "
                         "downscale the file or raise --max_image_pixels")


def _open(value: Any, max_pixels: int | None = None) -> PIL.Image.Image:
    """Open an image value (PIL image, path, raw bytes or ``{"bytes", "path"}``), check its size
    from the header against ``max_pixels``, then load it (as ``datasets.Image`` would)."""
    if isinstance(value, PIL.Image.Image):
        _check_pixels(value, max_pixels)
        value.load()
        return value
    value = _as_value_dict(value)
    data, path = value["bytes"], value["path"]
    if data is None and path is None:
        raise ValueError("the value has neither bytes nor a path")
    if isinstance(data, bytes) and data.startswith(REFUSED_PATH_PREFIX):
        raise PermissionError(data[len(REFUSED_PATH_PREFIX):].decode("utf-8", "replace"))
    if data is None:
        from datasets.download.download_config import DownloadConfig
        from datasets.utils.file_utils import is_local_path, xopen

        if not is_local_path(path):  # hf://, zip://... read as datasets.Image does
            with xopen(path, "rb", download_config=DownloadConfig()) as handle:
                data = handle.read()
    image = PIL.Image.open(io.BytesIO(data) if data is not None else path)
    try:
        _check_pixels(image, max_pixels)
        image.load()  # a local file is closed once read
    except BaseException:
        image.close()
        raise
    return image


def _as_value_dict(value: Any) -> dict[str, Any]:
    """Path / bytes / mapping -> ``{"bytes", "path"}``; TypeError for anything else."""
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, str):
        return {"bytes": None, "path": value}
    if isinstance(value, Mapping) and ("bytes" in value or "path" in value):
        return {"bytes": value.get("bytes"), "path": value.get("path")}
    raise TypeError(f"Expected a PIL image, a path, bytes or a {{'bytes', 'path'}} dict, got "
                    f"{type(value).__name__}: {value!r:.80}")


def _int_to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """16/32-bit integer grayscale: 0..65535 -> 0..255 (clipped), then RGB."""
    array = np.asarray(image).astype(np.float64)
    array = np.clip(np.round(array / 257.0), 0, 255).astype(np.uint8)
    return PIL.Image.fromarray(array, mode="L").convert("RGB")


def _float_to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    array = np.nan_to_num(np.asarray(image, dtype=np.float64))
    return PIL.Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8)).convert("RGB")


def _alpha_on_white(image: PIL.Image.Image) -> PIL.Image.Image:
    rgba = image.convert("RGBA")
    background = PIL.Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """Any PIL mode -> 8-bit RGB, following the module's decoding policy."""
    if image.mode == "RGB":
        return image
    if image.mode in _INT_MODES:
        return _int_to_rgb(image)
    if image.mode == "F":
        return _float_to_rgb(image)
    if image.mode == "P":
        has_alpha = "transparency" in image.info
        return _alpha_on_white(image) if has_alpha else image.convert("RGB")
    if image.mode in _ALPHA_MODES:
        return _alpha_on_white(image)
    return image.convert("RGB")


def _exif_transposed(image: PIL.Image.Image) -> PIL.Image.Image:
    if image.getexif().get(PIL.Image.ExifTags.Base.Orientation, 1) != 1:
        return PIL.ImageOps.exif_transpose(image)
    return image


def decode_image(value: Any, max_pixels: Any = _PROCESS_SETTING) -> PIL.Image.Image:
    """Decode one image value to an 8-bit RGB ``PIL.Image`` (EXIF orientation applied).

    Args:
        value: ``{"bytes": bytes | None, "path": str | None}`` (``datasets.Image(decode=False)``),
            a path, raw encoded bytes, or a ``PIL.Image``. ``None`` (a null cell, e.g. a null
            ``file_name`` in ``metadata.jsonl``) is a bad image.
        max_pixels: the largest width x height accepted, checked before decoding; default: the
            process setting (:func:`set_max_image_pixels`, 64 megapixels), ``None``: no cap.

    Raises:
        BadImageError: the image is truncated, corrupt, missing, null, too large, or not an image.
    """
    if value is None:
        raise BadImageError("", "no image (null value, e.g. a null file_name in metadata.jsonl)")
    if not isinstance(value, PIL.Image.Image):
        value = _as_value_dict(value)  # a wrong input type is a TypeError, not a bad image
    if max_pixels is _PROCESS_SETTING:
        max_pixels = _max_image_pixels
    try:
        return to_rgb(_exif_transposed(_open(value, max_pixels)))
    except Exception as err:  # PIL raises many types for broken files (OSError, SyntaxError, ...)
        reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "<bytes>", str(err))
        if isinstance(err, PIL.Image.DecompressionBombError):
            reason += (" (PIL's own limit, 2 x PIL.Image.MAX_IMAGE_PIXELS, applies whatever "
                       "--max_image_pixels says)")
        raise BadImageError(image_path(value), f"{type(err).__name__}: {reason}") from err


def split_side_by_side(image: PIL.Image.Image, name: str = "") -> tuple[PIL.Image.Image, ...]:
    """A pix2pix "AB" image -> (left half A, right half B), each ``width // 2`` wide.

    An odd width drops the last column (warned once per process); a width below 2 is a bad image.
    """
    width, height = image.size
    if width < 2:
        raise BadImageError(name, f"width {width} is too small to split into two halves")
    half = width // 2
    if width % 2:
        _warn_once("odd_width", "Side-by-side image %s has an odd width (%d): the last column is "
                   "dropped (warned once).", name or "<no path>", width)
    return image.crop((0, 0, half, height)), image.crop((half, 0, 2 * half, height))


# ----------------------------------------------------------------------------- bad samples
def bad_sample(path: str, reason: str) -> dict[str, str]:
    """The marker a transform returns for a row it cannot decode."""
    return {BAD_SAMPLE_KEY: path, "reason": reason}


def is_bad_sample(sample: Any) -> bool:
    """True for ``None`` and for bad-sample markers."""
    return sample is None or (isinstance(sample, Mapping) and BAD_SAMPLE_KEY in sample)


class BadSampleTracker:
    """Counts seen vs. skipped rows, warns once per bad file, and stops a run that is mostly bad.

    Raises :class:`TooManyBadImagesError` as soon as at least ``min_samples`` rows were seen and
    more than ``max_bad_fraction`` of them were bad. One tracker lives in each process that runs
    the transforms (each DataLoader worker has its own copy), so the share is per worker.
    """

    def __init__(self, max_bad_fraction: float = 0.1, min_samples: int = 20) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction={max_bad_fraction} must lie in [0, 1] "
                             "(e.g. 0.1 tolerates one unreadable image in ten).")
        if min_samples < 1:
            raise ValueError(f"min_samples={min_samples} must be >= 1.")
        self.max_bad_fraction = max_bad_fraction
        self.min_samples = min_samples
        self.seen = 0
        self.bad = 0
        self.reported: list[str] = []

    def record_ok(self) -> None:
        self.seen += 1
        self._check()

    def record_bad(self, name: str, reason: str) -> None:
        """Count one unreadable row; the first time ``name`` is seen, log a warning naming it."""
        self.seen += 1
        self.bad += 1
        if name not in self.reported:
            self.reported.append(name)
            logger.warning("Skipping unreadable image %s (%s)", name, reason)
        self._check()

    def _check(self) -> None:
        if self.seen < self.min_samples or self.bad <= self.max_bad_fraction * self.seen:
            return
        examples = ", ".join(self.reported[:5])
        raise TooManyBadImagesError(
            f"{self.bad} of {self.seen} images could not be decoded ({self.bad / self.seen:.0%} > "
            f"--max_bad_fraction {self.max_bad_fraction:g}); e.g. {examples}. Fix or remove these "
            "files, or raise --max_bad_fraction.")


# ----------------------------------------------------------------------------- transforms
def to_tensor(image: PIL.Image.Image) -> torch.Tensor:
    """RGB ``PIL.Image`` (H x W) -> float32 tensor 3 x H x W in [-1, 1]."""
    array = np.array(image, dtype=np.uint8, copy=True)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous().float().div_(127.5).sub_(1.0)


def _resize(image: PIL.Image.Image, size: int) -> PIL.Image.Image:
    if image.size == (size, size):
        return image
    return image.resize((size, size), PIL.Image.Resampling.BICUBIC)


class _ImageTransform:
    """Shared geometry: resize to ``load_size``, one random crop and one random flip for all
    images of a row (train), or a plain resize to ``resolution`` (eval)."""

    def __init__(self, resolution: int, load_size: int | None = None, flip: bool = True,
                 train: bool = True, max_image_pixels: Any = _PROCESS_SETTING) -> None:
        load_size = resolution if load_size is None else load_size
        if not isinstance(resolution, int) or resolution < 1:
            raise ValueError(f"resolution={resolution!r} must be a positive int (e.g. 256).")
        if not isinstance(load_size, int) or load_size < resolution:
            raise ValueError(f"load_size={load_size!r} must be an int >= resolution={resolution} "
                             "(pix2pix: 286 for 256 crops), or None for no jitter.")
        self.resolution = resolution
        self.load_size = load_size
        self.flip = flip
        self.train = train
        # captured now so that DataLoader workers (even spawned ones) apply the same cap
        self.max_image_pixels = (_max_image_pixels if max_image_pixels is _PROCESS_SETTING
                                 else max_image_pixels)

    def _decode(self, value: Any) -> PIL.Image.Image:
        return decode_image(value, self.max_image_pixels)

    def _geometry(self, images: Sequence[PIL.Image.Image]) -> list[torch.Tensor]:
        """Same crop and flip for every image -> list of 3 x R x R tensors in [-1, 1]."""
        if not self.train:
            return [to_tensor(_resize(image, self.resolution)) for image in images]
        span = self.load_size - self.resolution + 1
        top, left = (int(v) for v in torch.randint(0, span, (2,)))
        mirror = self.flip and bool(torch.rand(()) < 0.5)
        box = (left, top, left + self.resolution, top + self.resolution)
        tensors = [to_tensor(_resize(image, self.load_size).crop(box)) for image in images]
        return [t.flip(-1) for t in tensors] if mirror else tensors

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(resolution={self.resolution}, load_size={self.load_size}, "
                f"flip={self.flip}, train={self.train})")


class PairedTransform(_ImageTransform):
    """Row ``{"source", "target"[, "layout"]}`` -> ``{"source", "target"}``: float32 tensors
    3 x R x R in [-1, 1], or a bad-sample marker when an image cannot be decoded.

    Train: both images resized to ``load_size`` (default ``resolution``: no jitter), then the same
    random ``resolution`` crop and the same random horizontal flip. Eval (``train=False``): resized
    to ``resolution``, no crop or flip. A row with ``layout`` holds one side-by-side image in both
    columns; ``layout`` says which half is the source (``"source_left"`` / ``"source_right"``).
    """

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        try:
            source, target = self._decode_row(row)
        except BadImageError as err:
            return bad_sample(err.source, err.reason)
        source_t, target_t = self._geometry([source, target])
        return {"source": source_t, "target": target_t}

    def _decode_row(self, row: Mapping[str, Any]) -> tuple[PIL.Image.Image, PIL.Image.Image]:
        layout = row.get(LAYOUT_COLUMN)
        if layout is None:
            return self._decode(row["source"]), self._decode(row["target"])
        if layout not in (SOURCE_LEFT, SOURCE_RIGHT):
            raise ValueError(f"layout={layout!r} must be {SOURCE_LEFT!r} or {SOURCE_RIGHT!r}.")
        left, right = split_side_by_side(self._decode(row["source"]), image_path(row["source"]))
        return (left, right) if layout == SOURCE_LEFT else (right, left)


class UnpairedTransform(_ImageTransform):
    """Row ``{"image"}`` -> ``{"image": float32 tensor 3 x R x R in [-1, 1]}``, or a bad-sample
    marker. Same geometry as :class:`PairedTransform` for a single image."""

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        try:
            image = self._decode(row["image"])
        except BadImageError as err:
            return bad_sample(err.source, err.reason)
        return {"image": self._geometry([image])[0]}
