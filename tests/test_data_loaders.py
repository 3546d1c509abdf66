"""wkd_hf.data.loaders: bad-sample handling, validation splits, epoch coverage, exact resume."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets / huggingface_hub are imported

import logging
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from data_fixtures import RED, _ab_image, _encode, _image_dataset, _truncated_jpeg, _write_junk
from wkd_hf.data import (
    BadSampleTracker,
    PairedTransform,
    TooManyBadImagesError,
    UnpairedTransform,
    build_eval_dataloader,
    build_train_dataloader,
    collate_skipping_bad,
    load_paired_dataset,
    load_unpaired_datasets,
    split_train_validation,
)
from wkd_hf.data.loaders import DEFAULT_STREAMING_VALIDATION_ROWS, known_num_rows


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
    with pytest.raises(TooManyBadImagesError, match="--max_bad_fraction 0.1"):
        list(loader)
    assert any("row " in r.getMessage() for r in caplog.records)  # no path: named by index


def test_bad_share_limit_raised_in_a_worker_reaches_the_main_process():
    loader = build_eval_dataloader(_bytes_dataset(good=16, bad=8),
                                   UnpairedTransform(8, train=False), 4, num_workers=1,
                                   max_bad_fraction=0.1)
    with pytest.raises(TooManyBadImagesError, match="--max_bad_fraction 0.1"):
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
    with pytest.raises(ValueError, match="--validation_split 4 gives 4 of 4 rows"):
        split_train_validation(dataset, 4, seed=0)


@pytest.mark.parametrize("kind", ["image_folder", "parquet", "saved_to_disk"])
def test_a_fraction_of_a_stream_of_known_size(kind, ab_folder, parquet_folder, tmp_path, caplog,
                                              cache_dir):
    source = {"image_folder": {"train_data_dir": str(ab_folder)},
              "parquet": {"dataset_name": str(parquet_folder)}}.get(kind)
    if source is None:
        load_paired_dataset(train_data_dir=str(ab_folder)).save_to_disk(str(tmp_path / "saved"))
        source = {"dataset_name": str(tmp_path / "saved")}
    dataset = load_paired_dataset(streaming=True, cache_dir=cache_dir, **source)
    assert known_num_rows(dataset) == 4
    with caplog.at_level(logging.INFO, logger="wkd_hf"):
        train, val = split_train_validation(dataset, 0.5, seed=0)
    assert (sum(1 for _ in train), sum(1 for _ in val)) == (2, 2)
    assert "--validation_split 0.5 of a stream of 4 rows: its first 2 rows" in caplog.text


def test_a_fraction_of_a_stream_of_unknown_size_holds_out_the_default_rows(caplog):
    def rows():
        for i in range(40):
            yield {"image": {"bytes": None, "path": f"{i}.png"}}

    stream = datasets.IterableDataset.from_generator(rows)
    assert known_num_rows(stream) is None
    with caplog.at_level(logging.WARNING, logger="wkd_hf"):
        train, val = split_train_validation(stream, 0.05, seed=0)
    assert sum(1 for _ in val) == DEFAULT_STREAMING_VALIDATION_ROWS == 16
    assert sum(1 for _ in train) == 40 - 16
    assert "--validation_split N" in caplog.text and "first 16 rows" in caplog.text


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
    with pytest.raises(ValueError, match="6 rows, fewer than --train_batch_size 8"):
        build_train_dataloader(dataset, UnpairedTransform(4), 8, seed=0)


# ----------------------------------------------------------------------------- unpaired
