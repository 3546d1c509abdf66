"""Per-band wavelet fidelity (the paper's Figure 1), paired metrics (PSNR/SSIM/L1), the figure,
and the evaluate modules loaded offline by path."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wkd_hf.evaluate_modules import module_path
from wkd_hf.metrics.bands import BandEnergy, BandFidelity, band_order, plot_band_fidelity
from wkd_hf.metrics.paired import evaluate_paired, l1, psnr, ssim


def _photos(size: int = 128) -> torch.Tensor:
    """Two real photos (scikit-image's astronaut and coffee) as 2 x 3 x size x size in [-1, 1]."""
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    rows = []
    for name in ("astronaut", "coffee"):
        image = Image.fromarray(getattr(data, name)()).convert("RGB").resize((size, size))
        rows.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(rows)


def _blur(images: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([1.0, 4, 6, 4, 1])
    kernel = (kernel[:, None] * kernel[None, :]) / 256
    weight = kernel.expand(3, 1, 5, 5).contiguous()
    return F.conv2d(F.pad(images, (2, 2, 2, 2), mode="reflect"), weight, groups=3)


def test_identical_images_have_zero_distance_in_every_band():
    images = _photos()
    bands = BandFidelity(levels=3)
    bands.update(images, images.clone())
    values = bands.compute()
    assert set(band_order(3)) <= set(values)
    assert all(v == pytest.approx(0, abs=1e-7) for v in values.values())


def test_blurring_raises_the_high_bands_only():
    images = _photos()
    bands = BandFidelity(levels=3)
    bands.update(_blur(images), images)
    values = bands.compute()
    assert values["LL"] < 0.05  # the low band is kept
    for name in ("LH1", "HL1", "HH1"):  # the finest detail is lost
        assert values[name] > 0.3 and values[name] > 10 * values["LL"]
    assert values["HH1"] > values["HH3"]  # blur hurts the finest level most


def test_band_energy_of_a_blurred_set_drops_in_the_high_bands():
    images = _photos()
    energy = BandEnergy(levels=2)
    energy.update(images=_blur(images))
    energy.update(references=images[[1, 0]])  # unaligned: order does not matter
    values = energy.compute()
    assert values["LL"] < 0.05 and values["HH1"] > 0.3 and values["HH1"] > 5 * values["LL"]


def test_paired_metrics_agree_with_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    images = _photos(128)
    noisy = (images + 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
             ).clamp(-1, 1)
    assert torch.all(ssim(images, images) > 0.999)
    for x, y, p, s, m in zip(noisy, images, psnr(noisy, images), ssim(noisy, images),
                             l1(noisy, images)):
        a, b = ((t.permute(1, 2, 0).numpy() + 1) / 2 for t in (x, y))
        assert float(p) == pytest.approx(metrics.peak_signal_noise_ratio(b, a, data_range=1),
                                         rel=1e-4)
        expected = metrics.structural_similarity(b, a, data_range=1, channel_axis=2,
                                                 gaussian_weights=True, sigma=1.5,
                                                 use_sample_covariance=False)
        assert float(s) == pytest.approx(expected, abs=0.02)
        assert float(m) == pytest.approx(np.abs(a - b).mean() * 2, rel=1e-5)


def test_evaluate_paired_reports_ssim_and_bands():
    images = _photos(64)
    scores = evaluate_paired(torch.nn.Identity(), [{"source": images, "target": images}])
    assert scores["ssim"] == pytest.approx(1, abs=1e-4) and scores["l1"] == 0
    assert {"psnr", "band_LL", "band_HH"} <= set(scores)


def test_band_figure_is_written(tmp_path):
    values = {"teacher": {b: 0.1 for b in band_order(2)},
              "student": {b: 0.3 for b in band_order(2)}}
    path = plot_band_fidelity({"vs targets": values, "vs teacher": values}, str(tmp_path / "b.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_band_fidelity_module_loads_offline_by_path(monkeypatch, tmp_path):
    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    images = _photos(64)
    bands = BandFidelity(levels=2)
    bands.update(_blur(images), images)
    metric = evaluate.load(module_path("band_fidelity"), keep_in_memory=True)
    for row in bands.per_image().tolist():
        metric.add(distances=row)
    result = metric.compute(band_names=bands.names)
    assert result["num_images"] == 2
    for name, value in bands.compute().items():
        assert result[name] == pytest.approx(value, rel=1e-9)


def test_fid_kid_module_loads_offline_by_path(monkeypatch, tmp_path):
    evaluate = pytest.importorskip("evaluate")
    pytest.importorskip("torch_fidelity")
    from wkd_hf.metrics.fid import fid_from_features, kid_from_features

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake, real = torch.randn(20, 8), torch.randn(24, 8) + 0.5
    metric = evaluate.load(module_path("fid_kid"), keep_in_memory=True)
    metric.add_batch(features=fake.tolist(), is_real=[False] * 20)
    metric.add_batch(features=real.tolist(), is_real=[True] * 24)
    result = metric.compute(kid_subsets=10)
    assert result["fid"] == pytest.approx(fid_from_features(fake, real), rel=1e-5)
    assert result["kid_mean"] == pytest.approx(kid_from_features(fake, real, subsets=10)[0],
                                               rel=1e-4)
    assert result["num_generated"] == 20 and result["num_real"] == 24
