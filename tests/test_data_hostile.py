"""wkd_hf.data against hostile or odd data: each case is skipped and named (bad-row mechanism) or
stopped up front with one clear ValueError, never a traceback mid-training; a metadata file name
that leaves the data folder is never read."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets / huggingface_hub are imported

import io
import json
import logging
import struct
import zlib
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from wkd_hf.data import (
    DEFAULT_MAX_IMAGE_PIXELS,
    BadImageError,
    PairedTransform,
    UnpairedTransform,
    build_eval_dataloader,
    build_train_dataloader,
    decode_image,
    is_bad_sample,
    load_paired_dataset,
    set_max_image_pixels,
)
from wkd_hf.data import images as images_module

STREAMING = pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _ab(path, size=8) -> None:
    image = Image.new("RGB", (2 * size, size), (255, 0, 0))
    image.paste(Image.new("RGB", (size, size), (0, 0, 255)), (size, 0))
    image.save(path, format="PNG")


def _rows(dataset, transform=None, batch_size=16) -> int:
    loader = build_eval_dataloader(dataset, transform or PairedTransform(8, train=False),
                                   batch_size=batch_size)
    return sum(batch["source"].shape[0] for batch in loader if batch is not None)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "hf_cache")


@pytest.fixture(autouse=True)
def _default_pixel_cap():
    set_max_image_pixels(DEFAULT_MAX_IMAGE_PIXELS)
    yield
    set_max_image_pixels(DEFAULT_MAX_IMAGE_PIXELS)


def _metadata_folder(root: Path, extra_rows: list[dict]) -> Path:
    """Three good input/target rows plus ``extra_rows``; a readable image lies OUTSIDE it."""
    folder = root / "data"
    folder.mkdir()
    Image.new("RGB", (8, 8), (0, 255, 0)).save(root / "secret.png")  # decodes fine if read
    rows = []
    for i in range(3):
        Image.new("RGB", (8, 8), (255, 0, 0)).save(folder / f"in_{i}.png")
        Image.new("RGB", (8, 8), (0, 0, 255)).save(folder / f"out_{i}.png")
        rows.append({"input_file_name": f"in_{i}.png", "target_file_name": f"out_{i}.png"})
    lines = [json.dumps(row) for row in rows + extra_rows]
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


# ----------------------------------------------------------------------------- file names
@STREAMING
def test_non_utf8_file_name_is_skipped_and_named(tmp_path, streaming, caplog, cache_dir):
    folder = tmp_path / "ab"
    folder.mkdir()
    for i in range(3):
        _ab(folder / f"{i}.png")
    _ab(os.fsdecode(os.fsencode(folder) + b"/bad\xff.png"))
    sub = Path(os.fsdecode(os.fsencode(folder) + b"/dir\xfe"))
    sub.mkdir()
    _ab(sub / "x.png")
    with caplog.at_level(logging.WARNING):
        dataset = load_paired_dataset(train_data_dir=str(folder), streaming=streaming,
                                      cache_dir=cache_dir)
    assert _rows(dataset) == 3
    warning = next(r.getMessage() for r in caplog.records if "not valid UTF-8" in r.getMessage())
    assert "bad\\xff.png" in warning and "dir\\xfe/x.png" in warning


def test_glob_characters_in_names_survive_the_explicit_file_list(tmp_path, cache_dir):
    folder = tmp_path / "ab"
    folder.mkdir()
    for name in ("a[1].png", "b*.png", "c?.png", "d.png"):
        _ab(folder / name)
    _ab(os.fsdecode(os.fsencode(folder) + b"/bad\xff.png"))
    assert _rows(load_paired_dataset(train_data_dir=str(folder), cache_dir=cache_dir)) == 4


# ----------------------------------------------------------------------------- metadata
@STREAMING
@pytest.mark.parametrize("name", ["../secret.png", "sub/../../secret.png", "{root}/secret.png",
                                  "file://{root}/secret.png"],
                         ids=["dotdot", "nested-dotdot", "absolute", "url"])
@pytest.mark.parametrize("argument", ["train_data_dir", "dataset_name"])
def test_metadata_path_leaving_the_folder_is_refused_up_front(tmp_path, streaming, name,
                                                              argument, cache_dir, monkeypatch):
    folder = _metadata_folder(tmp_path, [{"input_file_name": name.format(root=tmp_path),
                                          "target_file_name": "out_0.png"}])
    opened = []
    original_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: opened.append(fp) or original_open(
        fp, *a, **k))
    with pytest.raises(ValueError, match=r"metadata.jsonl line 4: input_file_name=.*secret.png"):
        load_paired_dataset(**{argument: str(folder)}, streaming=streaming, cache_dir=cache_dir)
    assert not any("secret" in str(fp) for fp in opened)


def test_metadata_dotdot_that_stays_inside_is_fine(tmp_path, cache_dir):
    folder = _metadata_folder(tmp_path, [{"input_file_name": "sub/../in_0.png",
                                          "target_file_name": "out_0.png"}])
    assert _rows(load_paired_dataset(train_data_dir=str(folder), cache_dir=cache_dir)) == 4


@STREAMING
def test_null_or_missing_metadata_file_name_is_a_named_bad_row(tmp_path, streaming, caplog,
                                                                cache_dir):
    folder = _metadata_folder(tmp_path, [{"input_file_name": None, "target_file_name": "out_1.png"},
                                         {"target_file_name": "out_2.png"}])
    dataset = load_paired_dataset(train_data_dir=str(folder), streaming=streaming,
                                  cache_dir=cache_dir)
    with caplog.at_level(logging.WARNING):
        assert _rows(dataset) == 3
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 2 and all("null" in w and "out_" in w for w in warnings)


@pytest.mark.parametrize("line, match", [
    ("{not json", r"line 4 is not valid JSON"),
    ('{"input_file_name": 5, "target_file_name": "out_0.png"}', r"line 4: input_file_name=5 is "
                                                                 r"not a string"),
    ("[1, 2]", r"line 4 is not a JSON object"),
], ids=["broken-json", "number", "not-an-object"])
def test_malformed_metadata_is_a_clear_error(tmp_path, line, match, cache_dir):
    folder = _metadata_folder(tmp_path, [])
    with (folder / "metadata.jsonl").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(ValueError, match=match):
        load_paired_dataset(train_data_dir=str(folder), cache_dir=cache_dir)


def test_csv_and_parquet_metadata_are_checked_too(tmp_path, cache_dir):
    folder = _metadata_folder(tmp_path, [])
    (folder / "metadata.jsonl").unlink()
    (folder / "metadata.csv").write_text("input_file_name,target_file_name\n"
                                         "in_0.png,out_0.png\n../secret.png,out_1.png\n")
    with pytest.raises(ValueError, match=r"metadata.csv row 2: input_file_name='../secret.png'"):
        load_paired_dataset(train_data_dir=str(folder), cache_dir=cache_dir)
    (folder / "metadata.csv").unlink()
    pq.write_table(pa.table({"input_file_name": ["in_0.png", "/etc/passwd"],
                             "target_file_name": ["out_0.png", "out_1.png"]}),
                   folder / "metadata.parquet")
    with pytest.raises(ValueError, match=r"metadata.parquet row 1: .*is an absolute path"):
        load_paired_dataset(train_data_dir=str(folder), cache_dir=cache_dir)


# ----------------------------------------------------------------------------- image size cap
def test_image_over_the_pixel_cap_is_a_bad_image_checked_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "large.png"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(path)
    loads = []
    original_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self) or original_load(
        self))
    with pytest.raises(BadImageError, match=r"large.png: .*40x30 .*--max_image_pixels 1000"):
        decode_image(str(path), max_pixels=1000)
    assert not loads  # refused from the header, before decoding
    assert decode_image(str(path), max_pixels=1200).size == (40, 30)
    set_max_image_pixels(1000)  # the process setting (--max_image_pixels), captured by transforms
    transform = UnpairedTransform(8)
    set_max_image_pixels(DEFAULT_MAX_IMAGE_PIXELS)
    marker = transform({"image": {"bytes": None, "path": str(path)}})
    assert is_bad_sample(marker) and marker["bad_sample"] == str(path)
    assert "max_image_pixels" in marker["reason"]
    assert not is_bad_sample(UnpairedTransform(8)({"image": {"bytes": None, "path": str(path)}}))


@STREAMING
def test_oversized_images_are_skipped_and_named_by_the_loaders(tmp_path, streaming, caplog,
                                                                cache_dir):
    folder = tmp_path / "ab"
    folder.mkdir()
    for i in range(3):
        _ab(folder / f"{i}.png")
    _ab(folder / "huge.png", size=64)  # 128 x 64 = 8192 pixels
    dataset = load_paired_dataset(train_data_dir=str(folder), streaming=streaming,
                                  cache_dir=cache_dir)
    with caplog.at_level(logging.WARNING):
        assert _rows(dataset, PairedTransform(8, train=False, max_image_pixels=4096)) == 3
    assert any("huge.png" in r.getMessage() and "max_image_pixels" in r.getMessage()
               for r in caplog.records)


def test_decompression_bomb_is_a_bad_image():
    with pytest.raises(BadImageError, match=r"bomb.png: .*(max_image_pixels|Decompression)"):
        decode_image({"bytes": _png_header_only(30000, 30000), "path": "bomb.png"},
                     max_pixels=None)
    with pytest.raises(BadImageError, match="max_image_pixels"):
        decode_image({"bytes": _png_header_only(12000, 12000), "path": "big.png"})


def test_default_cap_is_64_megapixels():
    assert DEFAULT_MAX_IMAGE_PIXELS == images_module.get_max_image_pixels() == 64 * 2**20
    with pytest.raises(ValueError, match="positive int"):
        set_max_image_pixels(0)


# ----------------------------------------------------------------------------- parquet
@STREAMING
def test_column_that_cannot_hold_images_is_a_clear_error(tmp_path, streaming, cache_dir):
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"imageA": [1, 2, 3], "imageB": [4, 5, 6]}),
                   folder / "train-00000-of-00001.parquet")
    with pytest.raises(ValueError, match=r"Column 'imageA' holds Value\('int64'\), not images"):
        load_paired_dataset(train_data_dir=str(folder), streaming=streaming, cache_dir=cache_dir)


@STREAMING
def test_null_image_in_parquet_is_a_bad_row(tmp_path, streaming, cache_dir):
    folder = tmp_path / "pq"
    folder.mkdir()
    red = {"bytes": _png(Image.new("RGB", (8, 8), (255, 0, 0))), "path": None}
    features = datasets.Features({"imageA": datasets.Image(), "imageB": datasets.Image()})
    datasets.Dataset.from_dict({"imageA": [red, None, red], "imageB": [red, red, red]},
                               features=features).to_parquet(
        str(folder / "train-00000-of-00001.parquet"))
    dataset = load_paired_dataset(train_data_dir=str(folder), streaming=streaming,
                                  cache_dir=cache_dir)
    assert _rows(dataset) == 2


def test_streaming_bad_image_costs_one_row_never_a_batch(tmp_path, caplog, cache_dir):
    """Streaming batches are dispatched from rank 0, where a None batch (all rows bad) broke
    accelerate's concatenation: a bad row is dropped before batching, with its warning."""
    folder = tmp_path / "pq"
    folder.mkdir()
    red = {"bytes": _png(Image.new("RGB", (8, 8), (255, 0, 0))), "path": None}
    features = datasets.Features({"imageA": datasets.Image(), "imageB": datasets.Image()})
    datasets.Dataset.from_dict({"imageA": [red, None, red, red], "imageB": [red] * 4},
                               features=features).to_parquet(
        str(folder / "train-00000-of-00001.parquet"))
    dataset = load_paired_dataset(train_data_dir=str(folder), streaming=True, cache_dir=cache_dir)
    loader = build_train_dataloader(dataset, PairedTransform(8, train=True), 1, seed=0,
                                    max_bad_fraction=0.5)
    with caplog.at_level(logging.WARNING):
        batches = list(loader)
    assert len(batches) == 3 and all(b is not None and len(b["source"]) == 1 for b in batches)
    assert caplog.text.count("Skipping unreadable image row") == 1


# ----------------------------------------------------------------------------- image paths
def _path_only_parquet(root: Path) -> tuple[Path, Path]:
    """A parquet folder (an "image" column of side-by-side AB images) whose path-only values
    point inside and outside it; a readable image ``secret.png`` lies OUTSIDE the folder."""
    folder = root / "pq"
    folder.mkdir()
    secret = root / "secret.png"
    _ab(secret)  # decodes fine if read
    _ab(folder / "inside.bin")  # not an image extension, so the folder stays a parquet folder
    embedded = io.BytesIO()
    _ab(embedded)
    values = [
        {"bytes": embedded.getvalue(), "path": None},  # (a) embedded: loads
        {"bytes": None, "path": str(secret)},  # (b) absolute, outside: refused
        {"bytes": None, "path": "../secret.png"},  # (c) relative, leaving the folder: refused
        {"bytes": None, "path": f"file://{secret}"},  # a URL: refused
        {"bytes": None, "path": "sub/../../pq/../secret.png"},  # ".." that ends outside: refused
        {"bytes": None, "path": str(folder / "inside.bin")},  # (d) absolute, inside: loads
        {"bytes": None, "path": "inside.bin"},  # relative: read from the folder, not the cwd
    ]
    pq.write_table(pa.table({"image": values}), folder / "train-00000-of-00001.parquet")
    return folder, secret


def _spy_on_reads(monkeypatch) -> list:
    """Every file PIL or datasets' ``xopen`` is asked to open."""
    from datasets.utils import file_utils

    opened = []
    original_open, original_xopen = Image.open, file_utils.xopen
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: opened.append(fp) or original_open(
        fp, *a, **k))
    monkeypatch.setattr(file_utils, "xopen", lambda fp, *a, **k: opened.append(fp) or
                        original_xopen(fp, *a, **k))
    return opened


@STREAMING
@pytest.mark.parametrize("argument", ["train_data_dir", "dataset_name"])
def test_path_only_image_outside_a_local_folder_is_a_named_bad_row_never_read(
        tmp_path, streaming, argument, caplog, cache_dir, monkeypatch):
    folder, secret = _path_only_parquet(tmp_path)
    monkeypatch.chdir(tmp_path)  # a cwd-relative read of "inside.bin" would fail, "../" not
    opened = _spy_on_reads(monkeypatch)
    dataset = load_paired_dataset(**{argument: str(folder)}, streaming=streaming,
                                  cache_dir=cache_dir)
    with caplog.at_level(logging.WARNING):
        assert _rows(dataset) == 3  # (a), (d) and the relative path inside
    assert not any("secret" in str(fp) for fp in opened)
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    for name in (str(secret), "../secret.png", f"file://{secret}", "sub/../../pq/../secret.png"):
        assert any(f"image {name} (" in w and "not read" in w for w in warnings), (name, warnings)
    assert len(warnings) == 4


def test_path_only_image_outside_a_local_folder_is_refused_for_unpaired_data(
        tmp_path, cache_dir, monkeypatch):
    from wkd_hf.data import load_unpaired_datasets

    folder, secret = _path_only_parquet(tmp_path)
    inside = {"bytes": None, "path": str(folder / "inside.bin")}
    pq.write_table(pa.table({"imageA": [inside, {"bytes": None, "path": str(secret)}],
                             "imageB": [inside, {"bytes": None, "path": "../secret.png"}]}),
                   folder / "train-00000-of-00001.parquet")
    opened = _spy_on_reads(monkeypatch)
    domain_a, domain_b = load_unpaired_datasets(train_data_dir=str(folder), cache_dir=cache_dir)
    transform = UnpairedTransform(8, train=False)
    assert not is_bad_sample(transform(domain_a[0])) and not is_bad_sample(transform(domain_b[0]))
    for row, name in ((domain_a[1], str(secret)), (domain_b[1], "../secret.png")):
        marker = transform(row)
        assert is_bad_sample(marker) and marker["bad_sample"] == name
        assert "outside" in marker["reason"] or "leaves" in marker["reason"]
    assert not any("secret" in str(fp) for fp in opened)


def test_path_only_images_of_a_hub_dataset_stay_in_the_caches_or_on_the_hub(tmp_path,
                                                                            monkeypatch):
    """A Hub dataset (no local folder) may name files in the Hugging Face caches or hf:// URLs;
    a path-only value pointing anywhere else on the user's disk is a bad row, never read."""
    from wkd_hf.data.columns import guard_local_paths
    from wkd_hf.data.images import REFUSED_PATH_PREFIX

    cache = tmp_path / "hf_cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    values = [{"bytes": None, "path": str(cache / "downloads" / "a.png")},
              {"bytes": None, "path": "hf://datasets/user/set@main/train/b.png"},
              {"bytes": None, "path": str(tmp_path / "secret.png")},
              {"bytes": None, "path": "../secret.png"},
              {"bytes": None, "path": "file:///etc/secret.png"}]
    features = datasets.Features({"image": datasets.Image(decode=False)})
    for streaming in (False, True):
        dataset = datasets.Dataset.from_dict({"image": values}, features=features)
        if streaming:
            dataset = dataset.to_iterable_dataset()
        guarded = [row["image"] for row in guard_local_paths(dataset, None, "image")]
        assert [v["bytes"] for v in guarded[:2]] == [None, None]
        for value in guarded[2:]:
            assert value["bytes"].startswith(REFUSED_PATH_PREFIX)
            assert b"outside the Hugging Face caches" in value["bytes"]
