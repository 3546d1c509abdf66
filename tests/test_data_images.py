"""wkd_hf.data.images: shared crops and flips, colour modes, broken files."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets / huggingface_hub are imported

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from data_fixtures import GREEN, RED, _ab_image, _encode, _truncated_jpeg
from wkd_hf.data import (
    BadImageError,
    PairedTransform,
    UnpairedTransform,
    decode_image,
    is_bad_sample,
)
from wkd_hf.data import images as images_module


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
