"""Image files, folders and helpers shared by the wkd_hf.data tests (a pytest plugin: see
conftest.py)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets / huggingface_hub are imported

import io
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
RED_T, BLUE_T = torch.tensor([1.0, -1.0, -1.0]), torch.tensor([-1.0, -1.0, 1.0])
JUNK = {".DS_Store": b"\x00\x01Bud1", "Thumbs.db": b"\xd0\xcf\x11\xe0", "notes.txt": b"hello"}


# ----------------------------------------------------------------------------- fixtures
def _encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _ab_image(left=RED, right=BLUE, size=8) -> Image.Image:
    image = Image.new("RGB", (2 * size, size), left)
    image.paste(Image.new("RGB", (size, size), right), (size, 0))
    return image


def _write_junk(folder: Path) -> None:
    for name, data in JUNK.items():
        (folder / name).write_bytes(data)


def shared_data_root() -> Path:
    """Where the real datasets (facades, horse2zebra) live: ``$WKD_HF_SHARED_DATA`` if set (an empty
    folder simulates a fresh clone), else ``<repo>/../shared/data``."""
    override = os.environ.get("WKD_HF_SHARED_DATA")
    return Path(override) if override else SHARED_DATA


def on_ci() -> bool:
    """``CI`` is set (GitHub Actions, GitLab, ... set ``CI=true``); ``""``/``0``/``false`` are unset."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _shared(*parts: str) -> Path:
    """A folder of the real shared data. Missing: the test skips on a developer machine (every
    end-to-end test also runs on repository-made photos, see conftest.py) but FAILS when ``CI`` is
    set, so a CI run can never go green without having run the real-data tests."""
    path = shared_data_root().joinpath(*parts)
    if not path.is_dir():
        message = (f"shared data {path} is not available on this machine (set WKD_HF_SHARED_DATA "
                   "to the folder holding facades/ and horse2zebra/)")
        if on_ci():
            pytest.fail(f"{message}; CI is set, so the real-data tests must run: provide the data "
                        "or unset CI", pytrace=False)
        pytest.skip(message)
    return path


def require_shared_module(*parts: str) -> Path:
    """Module-level gate for a test module that runs only on the real shared data: the module is
    skipped as one (a single "skipped" line) on a developer machine without it, and fails to
    collect when ``CI`` is set. Returns the data root."""
    missing = [name for name in parts if not shared_data_root().joinpath(name).is_dir()]
    if missing:
        message = (f"shared data {', '.join(missing)} not available under {shared_data_root()} "
                   "(set WKD_HF_SHARED_DATA to the folder holding facades/ and horse2zebra/)")
        if on_ci():
            pytest.fail(f"{message}; CI is set, so the real-data tests must run: provide the data "
                        "or unset CI", pytrace=False)
        pytest.skip(message, allow_module_level=True)
    return shared_data_root()


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "hf_cache")


@pytest.fixture
def ab_folder(tmp_path) -> Path:
    """Four side-by-side AB images (left red, right blue) plus non-image junk files."""
    folder = tmp_path / "ab"
    folder.mkdir()
    for i in range(4):
        _ab_image().save(folder / f"{i}.png")
    _write_junk(folder)
    return folder


@pytest.fixture
def metadata_folder(tmp_path) -> Path:
    """metadata.jsonl naming two files per row: input (red) and target (blue)."""
    folder = tmp_path / "meta"
    folder.mkdir()
    rows = []
    for i in range(4):
        Image.new("RGB", (8, 8), RED).save(folder / f"in_{i}.png")
        Image.new("RGB", (8, 8), BLUE).save(folder / f"out_{i}.jpg")
        rows.append({"input_file_name": f"in_{i}.png", "target_file_name": f"out_{i}.jpg", "i": i})
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    _write_junk(folder)
    return folder


def _image_dataset(columns: dict[str, list]) -> datasets.Dataset:
    features = datasets.Features({name: datasets.Image() for name in columns})
    return datasets.Dataset.from_dict(columns, features=features)


@pytest.fixture
def parquet_folder(tmp_path) -> Path:
    """A parquet file with two image columns imageA (red) / imageB (blue)."""
    folder = tmp_path / "pq"
    folder.mkdir()
    red, blue = _encode(Image.new("RGB", (8, 8), RED)), _encode(Image.new("RGB", (8, 8), BLUE))
    _image_dataset({"imageA": [{"bytes": red, "path": None}] * 4,
                    "imageB": [{"bytes": blue, "path": None}] * 4}).to_parquet(
        str(folder / "train-00000-of-00001.parquet"))
    return folder


@pytest.fixture
def cyclegan_folder(tmp_path) -> Path:
    """trainA (3 red), trainB (5 blue), testA / testB (2 each), with junk files."""
    root = tmp_path / "cyclegan"
    for split, counts in (("train", (3, 5)), ("test", (2, 2))):
        for letter, color, count in (("A", RED, counts[0]), ("B", BLUE, counts[1])):
            folder = root / f"{split}{letter}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (8, 8), color).save(folder / f"{letter}{i}.jpg")
            _write_junk(folder)
    return root


def _mean_color(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.mean(dim=(-1, -2))


def _first_row(dataset):
    return next(iter(dataset)) if isinstance(dataset, datasets.IterableDataset) else dataset[0]


def _all_rows(dataset) -> list[dict]:
    return list(dataset)


def _truncated_jpeg() -> bytes:
    noise = np.random.default_rng(4).integers(0, 256, (64, 64, 3), np.uint8)
    data = _encode(Image.fromarray(noise), "JPEG", quality=95)
    return data[: len(data) // 2]
