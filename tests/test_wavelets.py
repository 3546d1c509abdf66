import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F

from wkd_hf.wavelets import WaveletBandSplit, band_distances, check_resolution, max_levels


def _smooth_image_with_edges(size: int = 64) -> torch.Tensor:
    """1 x 3 x size x size in [-1, 1]: smooth gradients plus a few sharp-edged blocks."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = 0.5 * torch.sin(2 * torch.pi * x) * torch.cos(torch.pi * y)
    blocks = ((x * 8).floor() + (y * 8).floor()) % 2 * 0.4 - 0.2
    img = torch.stack([base + blocks, base - blocks, 0.5 * base + blocks])
    return img.clamp(-1, 1)[None]


def test_shapes_order_and_pywt_agreement():
    x = torch.randn(2, 3, 32, 24, dtype=torch.float64)
    split = WaveletBandSplit("haar", levels=3)
    assert len(list(split.buffers())) == 4  # filters move with .to(device)
    ll, highs = split(x)
    assert ll.dtype == torch.float64 and ll.shape == (2, 3, 4, 3)  # float32 or wider
    assert [tuple(h.shape) for h in highs] == [(2, 3, 3, 16, 12), (2, 3, 3, 8, 6), (2, 3, 3, 4, 3)]
    # highs[0] is the finest level; bands are (LH, HL, HH) = pywt's (cH, cV, cD).
    ref = pywt.wavedec2(x[0, 0].numpy(), "haar", mode="zero", level=3)
    np.testing.assert_allclose(ll[0, 0].numpy(), ref[0], atol=1e-5)
    for j, (c_h, c_v, c_d) in enumerate(reversed(ref[1:])):
        for b, band in enumerate((c_h, c_v, c_d)):
            np.testing.assert_allclose(highs[j][0, 0, b].numpy(), band, atol=1e-5)


def test_horizontal_stripes_land_in_lh():
    x = torch.zeros(1, 1, 8, 8)
    x[:, :, ::2] = 1.0  # rows alternate: edges run horizontally
    _, highs = WaveletBandSplit("haar", levels=1)(x)
    energy = highs[0].abs().sum(dim=(0, 1, 3, 4))
    assert energy[0] > 0 and energy[1] == 0 and energy[2] == 0


def test_float32_under_bf16_autocast():
    split = WaveletBandSplit("haar", levels=2)
    x = torch.randn(1, 3, 16, 16).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ll, highs = split(x)
    assert ll.dtype == torch.float32 and all(h.dtype == torch.float32 for h in highs)


def test_too_small_resolution_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"at most 3 level.*--wkd_levels.*--resolution to at least 16"
    ):
        WaveletBandSplit("haar", levels=4)(torch.zeros(1, 3, 8, 32))
    with pytest.raises(ValueError, match="db3"):
        check_resolution(64, 64, levels=4, wave="db3")  # db3 needs 5 * 16 = 80 px
    check_resolution(80, 80, levels=4, wave="db3")
    assert max_levels(256, 256, "haar") == 8
    with pytest.raises(ValueError, match="levels"):
        WaveletBandSplit("haar", levels=0)
    with pytest.raises(ValueError, match="'nope'"):
        WaveletBandSplit("nope", levels=1)


def test_validation_is_cached_per_shape():
    split = WaveletBandSplit("haar", levels=2)
    split(torch.zeros(1, 1, 8, 8))
    split(torch.zeros(2, 1, 8, 8))
    assert split._checked_sizes == {(8, 8)}


def test_band_distances_identical_is_zero():
    img = _smooth_image_with_edges()
    d = band_distances(img, img.clone(), levels=2)
    assert set(d) == {"LL", "LH", "HL", "HH", "LH1", "HL1", "HH1", "LH2", "HL2", "HH2"}
    assert all(v == 0.0 for v in d.values())


def test_band_distances_blur_hurts_high_bands_most():
    ref = _smooth_image_with_edges()
    blurred = F.avg_pool2d(F.pad(ref, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    d = band_distances(blurred, ref)
    assert 0 < d["LL"] < 0.5
    for band in ("LH", "HL", "HH"):
        assert d[band] > 5 * d["LL"]
    # Formula: sum |B(x) - B(y)| / sum |B(y)|, checked for LL by hand (1 level Haar).
    ll_x, ll_y = (pywt.dwt2(t[0].numpy(), "haar", mode="zero")[0] for t in (blurred, ref))
    assert d["LL"] == pytest.approx(np.abs(ll_x - ll_y).sum() / np.abs(ll_y).sum(), rel=1e-4)


def test_band_distances_per_image():
    ref = torch.cat([_smooth_image_with_edges()] * 2)
    x = ref.clone()
    x[1] += 0.1
    d = band_distances(x, ref, per_image=True)
    assert d["LL"].shape == (2,) and d["LL"][0] == 0 and d["LL"][1] > 0
