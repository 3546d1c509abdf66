"""Tests for examples/demo_data.py: the offline, real-photo paired demo dataset."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

_PATH = Path(__file__).resolve().parents[1] / "examples" / "demo_data.py"
_spec = importlib.util.spec_from_file_location("demo_data", _PATH)
demo_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo_data)

SMALL = {"resolution": 32, "crops_per_photo": 4}
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
    assert len(data["test"]) == len(TEST_PHOTOS) * SMALL["crops_per_photo"]
    for split in data.values():
        assert set(split.column_names) == {"source", "target", "photo"}
        row = split[0]
        for column in ("source", "target"):
            assert isinstance(row[column], Image.Image)
            assert row[column].size == (32, 32) and row[column].mode == "RGB"
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


def _laplacian(x):  # N x H x W x C -> mean |4-neighbour Laplacian| per image
    lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return np.abs(lap).mean(axis=(1, 2, 3))


def test_source_is_a_blurred_version_of_target(built):
    _, data = built
    for split in data.values():
        source, target = _arrays(split, "source"), _arrays(split, "target")
        # High frequencies are gone: far less Laplacian energy in every source than its target.
        assert np.all(_laplacian(source) < 0.6 * _laplacian(target))
        assert _laplacian(source).mean() < 0.35 * _laplacian(target).mean()

        # Low frequencies are kept: a low-pass of both agrees to a few grey levels.
        def low(ims):
            return np.stack(
                [
                    np.asarray(
                        Image.fromarray(im.astype(np.uint8)).filter(ImageFilter.GaussianBlur(3)),
                        dtype=np.float32,
                    )
                    for im in ims
                ]
            )

        low_err = np.abs(low(source) - low(target)).mean()
        assert low_err < 4.0, low_err
        assert low_err < 0.5 * np.abs(source - target).mean() + 1.0


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


def test_reuses_an_identical_build_and_rebuilds_on_new_settings(tmp_path, caplog):
    out = tmp_path / "data"
    demo_data.build_demo_dataset(out, test_photos=TEST_PHOTOS, **SMALL)
    parquet = out / "train-00000-of-00001.parquet"
    stamp = parquet.stat().st_mtime_ns
    caplog.set_level("INFO")
    demo_data.main(["--output_dir", str(out), "--resolution", "32", "--crops_per_photo", "4"])
    assert parquet.stat().st_mtime_ns == stamp
    assert "Reusing" in caplog.text and "train 32, test 8" in caplog.text
    data = demo_data.build_demo_dataset(
        out, resolution=32, crops_per_photo=2, test_photos=TEST_PHOTOS
    )
    assert len(data["test"]) == 4
    assert json.loads((out / "build_info.json").read_text())["crops_per_photo"] == 2


def test_loads_with_datasets_offline(built, tmp_path):
    out, data = built
    # A second folder with the same name and other settings must not hit the first one's cache.
    other = tmp_path / "data"
    other_data = demo_data.build_demo_dataset(
        other, resolution=32, crops_per_photo=2, test_photos=TEST_PHOTOS
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
        {"resolution": 30},
        {"test_photos": ("nope",)},
        {"test_photos": ()},
        {"test_photos": tuple(demo_data.PHOTOS)},
    ],
)
def test_rejects_bad_settings(tmp_path, kwargs):
    with pytest.raises(ValueError):
        demo_data.build_demo_dataset(tmp_path, **{**SMALL, **kwargs})
