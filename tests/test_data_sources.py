"""wkd_hf.data.sources: every source kind (paired and unpaired), streaming, columns, splits, Hub errors."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets / huggingface_hub are imported

from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest
import torch
from PIL import Image

from data_fixtures import (
    BLUE,
    BLUE_T,
    RED,
    RED_T,
    _ab_image,
    _all_rows,
    _encode,
    _image_dataset,
    _mean_color,
    _write_junk,
)
from wkd_hf.data import (
    PairedTransform,
    UnalignedDataset,
    UnpairedTransform,
    build_train_dataloader,
    describe_dataset,
    load_paired_dataset,
    load_unpaired_datasets,
)
from wkd_hf.data import sources as sources_module
from wkd_hf.hub_access import HubUnreachableError

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
    with pytest.raises(ValueError, match="unpaired data. Train on it with --mode cycle "
                                         r"\(distill.py also --mode teacher_target\)"):
        load_paired_dataset(train_data_dir=str(cyclegan_folder), cache_dir=cache_dir)


def test_offline_hub_id_fails_fast(hub_offline, cache_dir, requested_sleeps):
    """Offline mode on: the advice is to unset it (never to set it) or go local."""
    with pytest.raises(HubUnreachableError, match="Unset HF_HUB_OFFLINE.*--train_data_dir") as err:
        load_paired_dataset(dataset_name="wkd-hf-tests/no-such-dataset", cache_dir=cache_dir)
    assert "Set HF_HUB_OFFLINE=1" not in str(err.value)
    with pytest.raises(HubUnreachableError, match="--train_data_dir"):
        load_unpaired_datasets(dataset_name="wkd-hf-tests/no-such-dataset", streaming=True)
    assert sum(requested_sleeps) < 1  # no retry back-off


def test_unreachable_hub_fails_fast_without_offline_mode(monkeypatch, cache_dir, requested_sleeps):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(sources_module, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(HubUnreachableError,
                       match="Check the network.*--train_data_dir.*set HF_HUB_OFFLINE=1"):
        load_paired_dataset(dataset_name="huggan/facades", cache_dir=cache_dir)
    assert sum(requested_sleeps) < 1  # no retry back-off


# ----------------------------------------------------------------------------- transforms

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


