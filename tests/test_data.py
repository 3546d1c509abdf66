"""Tests for wkd_hf.data: every source kind, streaming, transforms, bad images, splits, loaders."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets / huggingface_hub are imported

import io
import json
import logging
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from wkd_hf.data import (
    BadImageError,
    BadSampleTracker,
    DatasetUnreachableError,
    PairedTransform,
    TooManyBadImagesError,
    UnalignedDataset,
    UnpairedTransform,
    build_eval_dataloader,
    build_train_dataloader,
    collate_skipping_bad,
    decode_image,
    describe_dataset,
    is_bad_sample,
    load_paired_dataset,
    load_unpaired_datasets,
    split_train_validation,
)
from wkd_hf.data import images as images_module
from wkd_hf.data import sources as sources_module

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


def _shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"shared data {path} is not available on this machine")
    return path


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


# ----------------------------------------------------------------------------- paired sources
PAIRED_KINDS = ["side_by_side", "metadata", "parquet", "dataset_name_folder", "saved_to_disk"]


def _paired_source(kind, ab_folder, metadata_folder, parquet_folder, tmp_path) -> dict:
    if kind == "side_by_side":
        return {"train_data_dir": str(ab_folder)}
    if kind == "metadata":
        return {"train_data_dir": str(metadata_folder)}
    if kind == "parquet":
        return {"train_data_dir": str(parquet_folder)}
    if kind == "dataset_name_folder":  # a local dataset folder through datasets.load_dataset
        return {"dataset_name": str(parquet_folder)}
    saved = tmp_path / "saved"
    datasets.load_dataset("parquet", data_dir=str(parquet_folder),
                          cache_dir=str(tmp_path / "c")).save_to_disk(str(saved))
    return {"dataset_name": str(saved)}


@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
@pytest.mark.parametrize("kind", PAIRED_KINDS)
def test_paired_sources_give_the_right_images(kind, streaming, ab_folder, metadata_folder,
                                              parquet_folder, tmp_path, cache_dir):
    source = _paired_source(kind, ab_folder, metadata_folder, parquet_folder, tmp_path)
    for direction, (want_source, want_target) in (("AtoB", (RED_T, BLUE_T)),
                                                  ("BtoA", (BLUE_T, RED_T))):
        dataset = load_paired_dataset(**source, direction=direction, streaming=streaming,
                                      cache_dir=cache_dir)
        assert isinstance(dataset, datasets.IterableDataset) == streaming
        rows = _all_rows(dataset)
        assert len(rows) == 4
        columns = {"source", "target"} | ({"layout"} if kind == "side_by_side" else set())
        assert set(rows[0]) == columns
        assert isinstance(rows[0]["source"], dict) and {"bytes", "path"} <= set(rows[0]["source"])
        out = PairedTransform(8, train=False)(rows[0])
        assert torch.allclose(_mean_color(out["source"]), want_source, atol=0.02)
        assert torch.allclose(_mean_color(out["target"]), want_target, atol=0.02)


def test_non_image_files_are_ignored(ab_folder, cache_dir):
    dataset = load_paired_dataset(train_data_dir=str(ab_folder), cache_dir=cache_dir)
    assert len(dataset) == 4
    assert all(Path(row["source"]["path"]).suffix == ".png" for row in dataset)


def test_split_subfolders_are_splits_and_file_names_are_not(tmp_path, cache_dir):
    for split, count in (("train", 3), ("test", 2)):
        (tmp_path / "d" / split).mkdir(parents=True)
        for i in range(count):  # names that datasets' own inference would read as splits
            _ab_image().save(tmp_path / "d" / split / f"test_{i}.png")
    test = load_paired_dataset(train_data_dir=str(tmp_path / "d"), split="test",
                               cache_dir=cache_dir)
    train = load_paired_dataset(train_data_dir=str(tmp_path / "d" / "train"), cache_dir=cache_dir)
    assert (len(test), len(train)) == (2, 3)


def test_explicit_columns(metadata_folder, cache_dir):
    dataset = load_paired_dataset(train_data_dir=str(metadata_folder), source_column="target",
                                  target_column="input", cache_dir=cache_dir)
    out = PairedTransform(8, train=False)(dataset[0])
    assert torch.allclose(_mean_color(out["source"]), BLUE_T, atol=0.02)
    with pytest.raises(ValueError, match="already fix the direction"):
        load_paired_dataset(train_data_dir=str(metadata_folder), source_column="target",
                            target_column="input", direction="BtoA", cache_dir=cache_dir)


def test_explicit_side_by_side_column(ab_folder, cache_dir):
    dataset = load_paired_dataset(train_data_dir=str(ab_folder), source_column="image",
                                  target_column="image", direction="BtoA", cache_dir=cache_dir)
    out = PairedTransform(8, train=False)(dataset[0])
    assert torch.allclose(_mean_color(out["source"]), BLUE_T, atol=0.02)


def test_real_facades_halves(cache_dir):
    folder = _shared("facades", "train")
    for streaming in (False, True):
        dataset = load_paired_dataset(train_data_dir=str(folder), direction="BtoA",
                                      streaming=streaming, cache_dir=cache_dir)
        row = _first_row(dataset)
        out = PairedTransform(64, train=False)(row)
        whole = Image.open(row["source"]["path"]).convert("RGB")
        assert whole.size == (512, 256)
        label_map = whole.crop((256, 0, 512, 256)).resize((64, 64), Image.Resampling.BICUBIC)
        photo = whole.crop((0, 0, 256, 256)).resize((64, 64), Image.Resampling.BICUBIC)
        expected = [torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 127.5 - 1
                    for im in (label_map, photo)]
        assert torch.allclose(out["source"], expected[0], atol=1e-5)  # BtoA: labels -> photo
        assert torch.allclose(out["target"], expected[1], atol=1e-5)
    assert "rows" in describe_dataset(load_paired_dataset(train_data_dir=str(folder),
                                                          cache_dir=cache_dir))


# ----------------------------------------------------------------------------- errors
def test_wrong_column_lists_the_columns(parquet_folder, cache_dir):
    with pytest.raises(ValueError, match=r"'nope'.*\['imageA', 'imageB'\]"):
        load_paired_dataset(train_data_dir=str(parquet_folder), source_column="nope",
                            target_column="imageB", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="both"):
        load_paired_dataset(train_data_dir=str(parquet_folder), source_column="imageA",
                            cache_dir=cache_dir)


def test_missing_split_lists_the_splits(ab_folder, cache_dir):
    with pytest.raises(ValueError, match=r"split='validation'.*\['train'\]"):
        load_paired_dataset(train_data_dir=str(ab_folder), split="validation",
                            cache_dir=cache_dir)


def test_empty_or_junk_only_folder(tmp_path, cache_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        load_paired_dataset(train_data_dir=str(tmp_path / "empty"), cache_dir=cache_dir)
    (tmp_path / "junk").mkdir()
    _write_junk(tmp_path / "junk")
    with pytest.raises(ValueError, match="no image or parquet files.*notes.txt"):
        load_paired_dataset(train_data_dir=str(tmp_path / "junk"), cache_dir=cache_dir)
    with pytest.raises(ValueError, match="not an existing directory"):
        load_paired_dataset(train_data_dir=str(tmp_path / "missing"), cache_dir=cache_dir)
    with pytest.raises(ValueError, match="exactly one"):
        load_paired_dataset(cache_dir=cache_dir)


def test_paired_loader_refuses_a_cyclegan_folder(cyclegan_folder, cache_dir):
    with pytest.raises(ValueError, match="unpaired"):
        load_paired_dataset(train_data_dir=str(cyclegan_folder), cache_dir=cache_dir)


def test_offline_hub_id_fails_fast(hub_offline, cache_dir):
    start = time.monotonic()
    with pytest.raises(DatasetUnreachableError, match="--train_data_dir"):
        load_paired_dataset(dataset_name="wkd-hf-tests/no-such-dataset", cache_dir=cache_dir)
    with pytest.raises(DatasetUnreachableError, match="--train_data_dir"):
        load_unpaired_datasets(dataset_name="wkd-hf-tests/no-such-dataset", streaming=True)
    assert time.monotonic() - start < 10


def test_unreachable_hub_fails_fast_without_offline_mode(monkeypatch, cache_dir):
    monkeypatch.setattr(sources_module, "_hub_offline", lambda: False)
    monkeypatch.setattr(sources_module, "_hub_reachable", lambda timeout=3.0: False)
    start = time.monotonic()
    with pytest.raises(DatasetUnreachableError, match="HF_HUB_OFFLINE=1.*--train_data_dir"):
        load_paired_dataset(dataset_name="huggan/facades", cache_dir=cache_dir)
    assert time.monotonic() - start < 10


# ----------------------------------------------------------------------------- transforms
def test_same_crop_and_flip_for_both_images():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), np.uint8))
    row = {"source": {"bytes": _encode(noise), "path": None},
           "target": {"bytes": _encode(noise), "path": None}}
    transform = PairedTransform(16, load_size=30, flip=True)
    outputs = []
    for seed in range(8):
        torch.manual_seed(seed)
        out = transform(row)
        assert torch.equal(out["source"], out["target"])
        outputs.append(out["source"])
    assert len({tuple(o.flatten()[:50].tolist()) for o in outputs}) > 1  # crops really vary


def test_side_by_side_halves_share_crop_and_flip():
    half = Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 12, 3), np.uint8))
    ab = Image.new("RGB", (24, 12))
    ab.paste(half, (0, 0))
    ab.paste(half, (12, 0))
    row = {"source": {"bytes": _encode(ab), "path": None}, "target": {"bytes": _encode(ab),
           "path": None}, "layout": "source_left"}
    for seed in range(4):
        torch.manual_seed(seed)
        out = PairedTransform(8, load_size=10)(row)
        assert torch.equal(out["source"], out["target"])


def test_output_shape_range_and_dtype():
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (5, 7, 3), np.uint8))
    row = {"source": {"bytes": _encode(image), "path": None},
           "target": {"bytes": _encode(image, "JPEG"), "path": None}}
    for transform in (PairedTransform(16, load_size=18), PairedTransform(16, train=False)):
        out = transform(row)  # 5x7 images are resized up past the crop
        for tensor in out.values():
            assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.float32
            assert tensor.min() >= -1 and tensor.max() <= 1
    single = UnpairedTransform(8)({"image": {"bytes": _encode(image), "path": None}})
    assert set(single) == {"image"} and single["image"].shape == (3, 8, 8)


def test_seeded_random_crops_are_reproducible():
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (32, 32, 3), np.uint8))
    row = {"image": {"bytes": _encode(image), "path": None}}
    transform = UnpairedTransform(16, load_size=24)
    torch.manual_seed(123)
    first = [transform(row)["image"] for _ in range(3)]
    torch.manual_seed(123)
    again = [transform(row)["image"] for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(first[0], other) for other in first[1:])


def test_eval_transform_uses_no_randomness():
    image = Image.new("RGB", (10, 10), GREEN)
    row = {"image": {"bytes": _encode(image), "path": None}}
    torch.manual_seed(0)
    UnpairedTransform(8, train=False)(row)
    after = torch.rand(())
    torch.manual_seed(0)
    assert torch.rand(()) == after


def test_bad_load_size_is_a_clear_error():
    with pytest.raises(ValueError, match="load_size=8 must be an int >= resolution=16"):
        PairedTransform(16, load_size=8)


# ----------------------------------------------------------------------------- decoding
def _gray16() -> Image.Image:
    return Image.fromarray(np.array([[0, 65535], [32896, 257]], dtype=np.uint16))


@pytest.mark.parametrize("make, fmt, expected", [
    (lambda: Image.new("L", (4, 4), 200), "PNG", (200, 200, 200)),
    (lambda: Image.new("1", (4, 4), 1), "PNG", (255, 255, 255)),
    (lambda: Image.new("RGBA", (4, 4), (255, 0, 0, 0)), "PNG", (255, 255, 255)),  # on white
    (lambda: Image.new("RGBA", (4, 4), (255, 0, 0, 255)), "PNG", (255, 0, 0)),
    (lambda: Image.new("LA", (4, 4), (10, 255)), "PNG", (10, 10, 10)),
    (lambda: Image.new("RGB", (4, 4), GREEN).convert("P"), "PNG", GREEN),
    (lambda: Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "JPEG", (255, 255, 255)),
    (lambda: _gray16(), "PNG", (0, 0, 0)),
], ids=["L", "1", "RGBA-transparent", "RGBA-opaque", "LA", "P", "CMYK", "I;16"])
def test_modes_become_8bit_rgb(make, fmt, expected):
    image = decode_image({"bytes": _encode(make(), fmt), "path": None})
    assert image.mode == "RGB"
    pixel = np.array(image)[0, 0]
    assert np.abs(pixel.astype(int) - expected).max() <= 2


def test_16bit_values_are_scaled_not_clipped():
    image = decode_image({"bytes": _encode(_gray16()), "path": None})
    assert np.array(image)[:, :, 0].tolist() == [[0, 255], [128, 1]]
    as_int32 = decode_image(_gray16().convert("I"))
    assert np.array(as_int32)[:, :, 0].tolist() == [[0, 255], [128, 1]]


def test_palette_with_transparency_goes_on_white():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    image.info["transparency"] = 0
    decoded = decode_image({"bytes": _encode(image, transparency=0), "path": None})
    assert np.array(decoded)[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _encode(Image.new("RGB", (16, 8), RED), "JPEG", exif=exif.tobytes())
    assert decode_image({"bytes": data, "path": None}).size == (8, 16)


def _truncated_jpeg() -> bytes:
    noise = np.random.default_rng(4).integers(0, 256, (64, 64, 3), np.uint8)
    data = _encode(Image.fromarray(noise), "JPEG", quality=95)
    return data[: len(data) // 2]


@pytest.mark.parametrize("data", [_truncated_jpeg(), b"this is not an image"],
                         ids=["truncated", "garbage"])
def test_broken_images_raise_bad_image_error(data, tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(data)
    with pytest.raises(BadImageError, match="broken.jpg"):
        decode_image({"bytes": None, "path": str(path)})
    marker = UnpairedTransform(8)({"image": {"bytes": None, "path": str(path)}})
    assert is_bad_sample(marker) and marker["bad_sample"] == str(path)


def test_missing_file_is_a_bad_image(tmp_path):
    with pytest.raises(BadImageError, match="gone.png"):
        decode_image(str(tmp_path / "gone.png"))


def test_odd_width_side_by_side_drops_a_column_and_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(images_module, "_warned", set())
    ab = _ab_image(size=8).resize((17, 8))
    row = {"source": {"bytes": _encode(ab), "path": "odd.png"},
           "target": {"bytes": _encode(ab), "path": "odd.png"}, "layout": "source_left"}
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            out = PairedTransform(8, train=False)(row)
    assert out["source"].shape == (3, 8, 8)
    assert sum("odd width" in r.getMessage() for r in caplog.records) == 1


# ----------------------------------------------------------------------------- bad rows in loaders
@pytest.fixture
def folder_with_bad_files(tmp_path) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    for i in range(3):
        _ab_image().save(folder / f"good_{i}.png")
    (folder / "truncated.jpg").write_bytes(_truncated_jpeg())
    (folder / "garbage.jpg").write_bytes(b"\x00garbage bytes with an image extension")
    _write_junk(folder)
    return folder


@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
def test_bad_files_are_skipped_with_one_warning_each(streaming, folder_with_bad_files, caplog,
                                                     cache_dir):
    dataset = load_paired_dataset(train_data_dir=str(folder_with_bad_files),
                                  streaming=streaming, cache_dir=cache_dir)
    loader = build_eval_dataloader(dataset, PairedTransform(8, train=False), batch_size=8)
    with caplog.at_level(logging.WARNING):
        batches = list(loader)
    assert len(batches) == 1 and batches[0]["source"].shape == (3, 3, 8, 8)
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 2
    assert any("truncated.jpg" in w for w in warnings)
    assert any("garbage.jpg" in w for w in warnings)


@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
def test_bad_files_in_two_column_and_unpaired_sources(streaming, metadata_folder, cyclegan_folder,
                                                      caplog, cache_dir):
    (metadata_folder / "out_1.jpg").write_bytes(b"garbage")
    (cyclegan_folder / "trainA" / "A1.jpg").write_bytes(_truncated_jpeg())
    paired = load_paired_dataset(train_data_dir=str(metadata_folder), streaming=streaming,
                                 cache_dir=cache_dir)
    domain_a, _ = load_unpaired_datasets(train_data_dir=str(cyclegan_folder), streaming=streaming,
                                         cache_dir=cache_dir)
    with caplog.at_level(logging.WARNING):
        pairs = list(build_eval_dataloader(paired, PairedTransform(8, train=False), 8))
        singles = list(build_eval_dataloader(domain_a, UnpairedTransform(8, train=False), 8))
    assert pairs[0]["source"].shape[0] == 3 and singles[0]["image"].shape[0] == 2
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "out_1.jpg" in messages and "A1.jpg" in messages


def _bytes_dataset(good: int, bad: int) -> datasets.Dataset:
    ok = {"bytes": _encode(Image.new("RGB", (8, 8), RED)), "path": None}
    broken = {"bytes": b"garbage", "path": None}
    features = datasets.Features({"image": datasets.Image(decode=False)})
    return datasets.Dataset.from_dict({"image": [ok] * good + [broken] * bad}, features=features)


def test_bad_share_limit_raises():
    tracker = BadSampleTracker(max_bad_fraction=0.1, min_samples=20)
    for _ in range(17):
        tracker.record_ok()
    tracker.record_bad("a.jpg", "broken")
    tracker.record_bad("b.jpg", "broken")  # 2 of 19: below min_samples
    with pytest.raises(TooManyBadImagesError, match=r"3 of 20.*a.jpg, b.jpg"):
        tracker.record_bad("c.jpg", "broken")


def test_bad_share_limit_stops_the_loader(caplog):
    dataset = _bytes_dataset(good=16, bad=8)
    loader = build_train_dataloader(dataset, UnpairedTransform(8), 4, seed=0,
                                    max_bad_fraction=0.1)
    with pytest.raises(TooManyBadImagesError, match="max_bad_fraction=0.1"):
        list(loader)
    assert any("row " in r.getMessage() for r in caplog.records)  # no path: named by index


def test_bad_share_limit_raised_in_a_worker_reaches_the_main_process():
    loader = build_eval_dataloader(_bytes_dataset(good=16, bad=8),
                                   UnpairedTransform(8, train=False), 4, num_workers=1,
                                   max_bad_fraction=0.1)
    with pytest.raises(TooManyBadImagesError, match="max_bad_fraction=0.1"):
        list(loader)


def test_collate_skipping_bad():
    row = {"image": torch.zeros(3, 2, 2)}
    assert collate_skipping_bad([None, {"bad_sample": "x", "reason": "y"}]) is None
    batch = collate_skipping_bad([row, None, row])
    assert batch["image"].shape == (2, 3, 2, 2)


# ----------------------------------------------------------------------------- splits
def test_validation_split_map_style(tmp_path):
    dataset = _image_dataset({"image": [{"bytes": None, "path": f"{i}.png"} for i in range(10)]})
    dataset = dataset.cast_column("image", datasets.Image(decode=False))
    for value, expected in ((0.2, 2), (3, 3), (3.0, 3)):
        train, val = split_train_validation(dataset, value, seed=0)
        train_paths = {r["image"]["path"] for r in train}
        val_paths = {r["image"]["path"] for r in val}
        assert len(val_paths) == expected and len(train_paths) == 10 - expected
        assert not train_paths & val_paths
    again = split_train_validation(dataset, 3, seed=0)[1]
    assert [r["image"]["path"] for r in again] == [r["image"]["path"] for r in val]
    assert split_train_validation(dataset, 0, seed=0) == (dataset, None)
    for bad in (1.5, 10, -1):
        with pytest.raises(ValueError, match="validation_split"):
            split_train_validation(dataset, bad, seed=0)


def test_validation_split_streaming(ab_folder, cache_dir):
    dataset = load_paired_dataset(train_data_dir=str(ab_folder), streaming=True,
                                  cache_dir=cache_dir)
    train, val = split_train_validation(dataset, 1, seed=0)
    train_paths = [r["source"]["path"] for r in train]
    val_paths = [r["source"]["path"] for r in val]
    assert len(val_paths) == 1 and len(train_paths) == 3
    assert not set(train_paths) & set(val_paths)
    shuffled = build_train_dataloader(train, PairedTransform(8), 1, seed=0)
    assert sum(1 for _ in shuffled) == 3  # shuffling after skip keeps the split
    with pytest.raises(ValueError, match="number of rows"):
        split_train_validation(dataset, 0.25, seed=0)


# ----------------------------------------------------------------------------- dataloaders
def _gray_levels_dataset(n: int) -> datasets.Dataset:
    rows = [{"bytes": _encode(Image.new("RGB", (8, 8), (v, v, v))), "path": f"{v}.png"}
            for v in range(0, 20 * n, 20)]
    features = datasets.Features({"image": datasets.Image(decode=False)})
    return datasets.Dataset.from_dict({"image": rows}, features=features)


def _levels(batch: dict) -> list[int]:
    return [round((float(t.mean()) + 1) * 127.5) for t in batch["image"]]


def test_train_loader_covers_every_row_once_per_epoch():
    loader = build_train_dataloader(_gray_levels_dataset(6), UnpairedTransform(4, load_size=6), 2,
                                    seed=0)
    torch.manual_seed(0)
    levels = [level for batch in loader for level in _levels(batch)]
    assert sorted(levels) == list(range(0, 120, 20))
    assert len(loader) == 3


def test_streaming_train_loader_covers_rows_and_reshuffles(tmp_path):
    dataset = _gray_levels_dataset(8).to_iterable_dataset()
    loader = build_train_dataloader(dataset, UnpairedTransform(4), 2, seed=0,
                                    shuffle_buffer_size=8)
    orders = []
    for epoch in range(2):
        loader.dataset.set_epoch(epoch)
        orders.append([level for batch in loader for level in _levels(batch)])
    assert all(sorted(order) == list(range(0, 160, 20)) for order in orders)
    assert orders[0] != orders[1]
    again = build_train_dataloader(dataset, UnpairedTransform(4), 2, seed=0, shuffle_buffer_size=8)
    assert [level for batch in again for level in _levels(batch)] == orders[0]


def test_streaming_split_with_two_workers_is_exact(tmp_path, cache_dir):
    for domain in ("trainA", "trainB"):
        (tmp_path / domain).mkdir()
    for v in range(0, 200, 20):
        Image.new("RGB", (8, 8), (v, v, v)).save(tmp_path / "trainA" / f"{v:03d}.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "trainB" / "b.png")
    stream, _ = load_unpaired_datasets(train_data_dir=str(tmp_path), streaming=True,
                                       cache_dir=cache_dir)
    train, val = split_train_validation(stream, 3, seed=0)
    loader = build_train_dataloader(train, UnpairedTransform(4), 1, seed=0, num_workers=2)
    seen = sorted(level for batch in loader for level in _levels(batch))
    held_out = sorted(round((float(t.mean()) + 1) * 127.5) for b in build_eval_dataloader(
        val, UnpairedTransform(4, train=False), 8) for t in b["image"])
    assert len(held_out) == 3 and sorted(seen + held_out) == list(range(0, 200, 20))


def _noise_dataset(n: int) -> datasets.Dataset:
    rng = np.random.default_rng(5)
    rows = [{"bytes": _encode(Image.fromarray(rng.integers(0, 256, (12, 12, 3), np.uint8))),
             "path": f"{i}.png"} for i in range(n)]
    features = datasets.Features({"image": datasets.Image(decode=False)})
    return datasets.Dataset.from_dict({"image": rows}, features=features)


@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
def test_accelerate_resume_mid_epoch_sees_the_same_batches(streaming, tmp_path):
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed

    dataset = _noise_dataset(8)
    dataset = dataset.to_iterable_dataset() if streaming else dataset

    def prepared():
        accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(
            use_seedable_sampler=True))
        set_seed(0)
        loader = build_train_dataloader(dataset, UnpairedTransform(8, load_size=11), 2, seed=3)
        return accelerator, accelerator.prepare(loader)

    accelerator, loader = prepared()
    loader.set_epoch(1)
    reference = []
    for step, batch in enumerate(loader):
        reference.append(batch["image"])
        torch.rand(5)  # the training loop's own randomness
        if step == 1:
            accelerator.save_state(str(tmp_path / "checkpoint"))
    accelerator, loader = prepared()
    accelerator.load_state(str(tmp_path / "checkpoint"))
    loader.set_epoch(1)
    resumed = [batch["image"] for batch in accelerator.skip_first_batches(loader, 2)]
    assert len(resumed) == 2
    assert all(torch.equal(a, b) for a, b in zip(reference[2:], resumed))


def test_augmentation_is_keyed_by_epoch_and_row_not_by_the_global_rng():
    dataset = _noise_dataset(4)
    loader = build_train_dataloader(dataset, UnpairedTransform(8, load_size=11), 2, seed=0)
    torch.manual_seed(0)
    first = [b["image"] for b in loader]  # epoch 0, then the sampler moves on to epoch 1
    second = [b["image"] for b in loader]
    loader.sampler.set_epoch(0)
    torch.manual_seed(99)
    again = [b["image"] for b in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, second))


def test_max_samples_and_eval_loader_order():
    dataset = _gray_levels_dataset(6)
    loader = build_train_dataloader(dataset, UnpairedTransform(4), 2, seed=0, max_samples=4)
    assert sorted(lv for b in loader for lv in _levels(b)) == [0, 20, 40, 60]
    evaluated = build_eval_dataloader(dataset, UnpairedTransform(4, train=False), 4)
    assert [lv for b in evaluated for lv in _levels(b)] == list(range(0, 120, 20))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        build_train_dataloader(dataset, UnpairedTransform(4), 8, seed=0)


# ----------------------------------------------------------------------------- unpaired
@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
def test_cyclegan_folder(streaming, cyclegan_folder, cache_dir):
    for split, sizes in (("train", (3, 5)), ("test", (2, 2))):
        domain_a, domain_b = load_unpaired_datasets(train_data_dir=str(cyclegan_folder),
                                                    split=split, streaming=streaming,
                                                    cache_dir=cache_dir)
        rows_a, rows_b = _all_rows(domain_a), _all_rows(domain_b)
        assert (len(rows_a), len(rows_b)) == sizes
        assert set(rows_a[0]) == {"image"}
        a = UnpairedTransform(8, train=False)(rows_a[0])["image"]
        b = UnpairedTransform(8, train=False)(rows_b[0])["image"]
        assert torch.allclose(_mean_color(a), RED_T, atol=0.05)
        assert torch.allclose(_mean_color(b), BLUE_T, atol=0.05)
    with pytest.raises(ValueError, match=r"\['test', 'train'\]"):
        load_unpaired_datasets(train_data_dir=str(cyclegan_folder), split="val",
                               cache_dir=cache_dir)


def test_unpaired_two_columns_drop_missing_images(tmp_path, cache_dir):
    red = {"bytes": _encode(Image.new("RGB", (8, 8), RED)), "path": None}
    blue = {"bytes": _encode(Image.new("RGB", (8, 8), BLUE)), "path": None}
    folder = tmp_path / "two"
    folder.mkdir()
    _image_dataset({"imageA": [red, red, None], "imageB": [blue] * 3}).to_parquet(
        str(folder / "train.parquet"))
    for streaming in (False, True):
        domain_a, domain_b = load_unpaired_datasets(dataset_name=str(folder), streaming=streaming,
                                                    cache_dir=cache_dir)
        assert (len(_all_rows(domain_a)), len(_all_rows(domain_b))) == (2, 3)
    with pytest.raises(ValueError, match=r"'nope'.*\['imageA', 'imageB'\]"):
        load_unpaired_datasets(dataset_name=str(folder), domain_a_column="nope",
                               domain_b_column="imageB", cache_dir=cache_dir)


def test_unpaired_splits_named_like_domains(tmp_path):
    red = {"bytes": _encode(Image.new("RGB", (8, 8), RED)), "path": None}
    blue = {"bytes": _encode(Image.new("RGB", (8, 8), BLUE)), "path": None}
    saved = tmp_path / "saved"
    datasets.DatasetDict({"trainA": _image_dataset({"pic": [red] * 2}),
                          "trainB": _image_dataset({"pic": [blue] * 3})}).save_to_disk(str(saved))
    domain_a, domain_b = load_unpaired_datasets(dataset_name=str(saved))
    assert (len(domain_a), len(domain_b)) == (2, 3)
    assert describe_dataset(domain_a) == "2 rows, columns: image"


@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
def test_unaligned_loader_gives_both_domains(streaming, cyclegan_folder, cache_dir):
    domain_a, domain_b = load_unpaired_datasets(train_data_dir=str(cyclegan_folder),
                                                streaming=streaming, cache_dir=cache_dir)
    data = UnalignedDataset(domain_a, domain_b)
    loader = build_train_dataloader(data, UnpairedTransform(8, load_size=10), 1, seed=0)
    batches = list(loader)
    assert len(batches) == (3 if streaming else 5)  # streaming zips; map-style: max(3, 5)
    for batch in batches:
        assert torch.allclose(_mean_color(batch["A"][0]), RED_T, atol=0.05)
        assert torch.allclose(_mean_color(batch["B"][0]), BLUE_T, atol=0.05)
    assert "unaligned" in describe_dataset(data)


def test_real_horse2zebra_with_grayscale_zebras(cache_dir):
    root = _shared("horse2zebra")
    domain_a, _ = load_unpaired_datasets(train_data_dir=str(root), split="test", streaming=True,
                                         cache_dir=cache_dir)
    out = UnpairedTransform(32, train=False)(next(iter(domain_a)))
    assert out["image"].shape == (3, 32, 32)
    gray = next((p for p in sorted((root / "trainB").glob("*.jpg"))
                 if Image.open(p).mode == "L"), None)
    if gray is None:
        pytest.skip("no grayscale image found in horse2zebra/trainB")
    image = UnpairedTransform(32, train=False)({"image": {"bytes": None, "path": str(gray)}})
    assert image["image"].shape == (3, 32, 32)
    assert torch.equal(image["image"][0], image["image"][1])
