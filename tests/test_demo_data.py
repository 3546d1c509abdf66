"""Tests for examples/demo_data.py: the offline, real-photo paired demo dataset."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_PATH = Path(__file__).resolve().parents[1] / "examples" / "demo_data.py"
_spec = importlib.util.spec_from_file_location("demo_data", _PATH)
demo_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo_data)

SMALL = {"resolution": 32, "crops_per_photo": 4,
         "test_resolution": 64, "test_crops_per_photo": 2}
TEST_PHOTOS = ("chelsea", "flower")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "data"
    return out, demo_data.build_demo_dataset(out, test_photos=TEST_PHOTOS, **SMALL)


def _arrays(split, column):
    return np.stack([np.asarray(im, dtype=np.float32) for im in split[column]])


def test_every_photo_loads_offline_as_rgb():
    assert demo_data.PHOTOS.keys() == demo_data.CREDITS.keys()
    for name, load in demo_data.PHOTOS.items():
        image = load()
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] >= 3, name
        assert min(image.shape[:2]) >= 3 * 64, name  # room for the largest default crop


def test_split_sizes_columns_and_image_sizes(built):
    out, data = built
    n_photos = len(demo_data.PHOTOS)
    assert set(data) == {"train", "test"}
    assert len(data["train"]) == (n_photos - len(TEST_PHOTOS)) * SMALL["crops_per_photo"]
    assert len(data["test"]) == len(TEST_PHOTOS) * SMALL["test_crops_per_photo"]
    for name, split in data.items():
        side = SMALL["test_resolution" if name == "test" else "resolution"]
        assert set(split.column_names) == {"source", "target", "photo"}
        for row in split:
            for column in ("source", "target"):
                assert isinstance(row[column], Image.Image)
                assert row[column].size == (side, side) and row[column].mode == "RGB"
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
    ]
    assert "chelsea" in (out / "README.md").read_text()


def test_test_photos_are_held_out(built):
    _, data = built
    train, test = set(data["train"]["photo"]), set(data["test"]["photo"])
    assert test == set(TEST_PHOTOS)
    assert train.isdisjoint(test)
    assert train | test == set(demo_data.PHOTOS)


def test_source_is_target_plus_white_gaussian_noise_of_sigma(built):
    _, data = built
    for split in data.values():
        source, target = _arrays(split, "source"), _arrays(split, "target")
        noise = source - target
        unclipped = (target > 60) & (target < 195)  # 3.5 sigma from 0 and 255: no clipping
        # Zero mean, standard deviation sigma (0.15 in [0, 1] units = 38.25 grey levels).
        assert abs(noise[unclipped].mean()) < 1.0
        assert abs(noise[unclipped].std() - 0.15 * 255) < 1.5, noise[unclipped].std()
        # White: neighbouring pixels' noise is uncorrelated (a blur would correlate it).
        horizontal = np.corrcoef(noise[:, :, 1:].ravel(), noise[:, :, :-1].ravel())[0, 1]
        vertical = np.corrcoef(noise[:, 1:].ravel(), noise[:, :-1].ravel())[0, 1]
        assert abs(horizontal) < 0.05 and abs(vertical) < 0.05, (horizontal, vertical)
        # Independent per colour channel.
        assert abs(np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]) < 0.05


def test_noise_sigma_sets_the_noise_and_zero_leaves_the_clean_crop(built, tmp_path):
    _, data = built
    clean = demo_data.build_demo_dataset(
        tmp_path / "clean", noise_sigma=0.0, test_photos=TEST_PHOTOS, **SMALL
    )
    for split in ("train", "test"):
        target = _arrays(data[split], "target")
        # The crops themselves do not depend on the noise level.
        np.testing.assert_array_equal(_arrays(clean[split], "target"), target)
        np.testing.assert_array_equal(_arrays(clean[split], "source"), target)


def test_same_seed_same_data_other_seed_other_data(built, tmp_path):
    _, data = built
    again = demo_data.build_demo_dataset(tmp_path / "a", test_photos=TEST_PHOTOS, **SMALL)
    for split in ("train", "test"):
        for column in ("source", "target"):
            np.testing.assert_array_equal(
                _arrays(data[split], column), _arrays(again[split], column)
            )
        assert data[split]["photo"] == again[split]["photo"]
    other = demo_data.build_demo_dataset(tmp_path / "b", seed=1, test_photos=TEST_PHOTOS, **SMALL)
    assert not np.array_equal(_arrays(data["test"], "target"), _arrays(other["test"], "target"))
    # Another seed draws other noise, too (not only other crops).
    noise, other_noise = (_arrays(d["train"], "source") - _arrays(d["train"], "target")
                          for d in (data, other))
    assert abs(np.corrcoef(noise.ravel(), other_noise.ravel())[0, 1]) < 0.05


def test_reuses_an_identical_build_and_rebuilds_on_new_settings(tmp_path, caplog):
    out = tmp_path / "data"
    demo_data.build_demo_dataset(out, test_photos=TEST_PHOTOS, **SMALL)
    parquet = out / "train-00000-of-00001.parquet"
    stamp = parquet.stat().st_mtime_ns
    caplog.set_level("INFO")
    demo_data.main(["--output_dir", str(out), "--resolution", "32", "--crops_per_photo", "4",
                    "--test_resolution", "64", "--test_crops_per_photo", "2"])
    assert parquet.stat().st_mtime_ns == stamp
    assert "Reusing" in caplog.text and "train 32, test 4" in caplog.text
    data = demo_data.build_demo_dataset(
        out, **{**SMALL, "noise_sigma": 0.1}, test_photos=TEST_PHOTOS
    )
    assert parquet.stat().st_mtime_ns != stamp
    assert json.loads((out / "build_info.json").read_text())["noise_sigma"] == 0.1
    assert len(data["test"]) == 4


def test_loads_with_datasets_offline(built, tmp_path):
    out, data = built
    # A second folder with the same name and other settings must not hit the first one's cache.
    other = tmp_path / "data"
    other_data = demo_data.build_demo_dataset(
        other, **{**SMALL, "crops_per_photo": 2}, test_photos=TEST_PHOTOS
    )
    code = (
        "import sys, datasets\n"
        "for path in sys.argv[1:]:\n"
        "    d = datasets.load_dataset(path)\n"
        "    p = datasets.load_dataset('parquet', data_files={s: f'{path}/{s}-*.parquet'"
        " for s in ('train', 'test')})\n"
        "    for x in (d, p):\n"
        "        assert type(x['train'].features['source']).__name__ == 'Image'\n"
        "        print(sorted((k, len(v)) for k, v in x.items()))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(out), str(other)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = [str(sorted((k, len(v)) for k, v in d.items())) for d in (data, other_data)]
    assert result.stdout.splitlines() == [expected[0]] * 2 + [expected[1]] * 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resolution": 0},
        {"test_crops_per_photo": 0},
        {"noise_sigma": -0.1},
        {"noise_sigma": 1.5},
        {"test_photos": ("nope",)},
        {"test_photos": ()},
        {"test_photos": tuple(demo_data.PHOTOS)},
    ],
)
def test_rejects_bad_settings(tmp_path, kwargs):
    with pytest.raises(ValueError):
        demo_data.build_demo_dataset(tmp_path, **{**SMALL, **kwargs})
