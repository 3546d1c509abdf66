import pytest
import torch
from objective_reference import wkd as reference_wkd

from wkd_hf.losses import (
    FeatureDistillationLoss,
    GANLoss,
    OutputDistillationLoss,
    WaveletDistillationLoss,
)


def _images(seed: int = 0, n: int = 2, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) * 2 - 1 for _ in range(2))


@pytest.mark.parametrize("wave", ["haar", "db3"])
@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("bands", ["high", "low", "all"])
@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_wkd_matches_independent_computation(wave, levels, bands, distance):
    """Against PyWavelets' wavedec2 in float64 (objective_reference), not pytorch_wavelets."""
    s, t = _images(levels, size=48)  # db3 (6 taps) needs 5 * 2**levels pixels
    loss = WaveletDistillationLoss(wave, levels, bands, distance)(s, t)
    expected = reference_wkd(s, t, wave, levels, bands, distance)
    assert loss.shape == () and loss > 0
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)


def test_wkd_haar_four_levels_as_the_authors_run():
    s, t = _images(4, size=64)
    loss = WaveletDistillationLoss("haar", 4, "high", "l1")(s, t)
    assert loss.item() == pytest.approx(reference_wkd(s, t, "haar", 4, "high", "l1").item(),
                                        rel=1e-5)


def test_constant_offset_only_moves_the_low_band():
    s, _ = _images()
    t = s + 0.3
    assert WaveletDistillationLoss(bands="high")(s, t) < 1e-6
    assert WaveletDistillationLoss(bands="low")(s, t) > 0.1


def test_identical_images_give_zero():
    s, _ = _images()
    for bands in ("high", "low", "all"):
        assert WaveletDistillationLoss(bands=bands)(s, s.clone()).item() == 0.0


def test_gradients_reach_student_only():
    s, t = _images()
    s.requires_grad_(True)
    t.requires_grad_(True)
    (WaveletDistillationLoss()(s, t) + OutputDistillationLoss()(s, t)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_bf16_autocast_returns_float32():
    s, t = _images()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = WaveletDistillationLoss(levels=3)(s.bfloat16(), t.bfloat16())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_wkd_errors():
    with pytest.raises(ValueError, match="'mid'"):
        WaveletDistillationLoss(bands="mid")
    with pytest.raises(ValueError, match="'l3'"):
        WaveletDistillationLoss(distance="l3")
    with pytest.raises(ValueError, match="--wkd_levels"):
        WaveletDistillationLoss(levels=4)(*_images(size=8))
    s, t = _images()
    with pytest.raises(ValueError, match="shapes differ"):
        WaveletDistillationLoss(levels=1)(s, t[:1])


def test_output_kd_values():
    s, t = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert OutputDistillationLoss("l1")(s, t).item() == pytest.approx(0.5)
    assert OutputDistillationLoss("l2")(s, t).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="'huber'"):
        OutputDistillationLoss("huber")


def test_feature_kd_gradients_and_value():
    kd = FeatureDistillationLoss(
        {"down.1": 4, "res": 8}, {"down.1": 6, "res": 16}, ["down.1", "res"]
    )
    s = {
        "down.1": torch.randn(2, 4, 8, 8, requires_grad=True),
        "res": torch.randn(2, 8, 4, 4, requires_grad=True),
    }
    t = {
        "down.1": torch.randn(2, 6, 8, 8, requires_grad=True),
        "res": torch.randn(2, 16, 4, 4, requires_grad=True),
    }
    loss = kd(s, t)
    expected = torch.stack(
        [((kd.adapters[k.replace(".", "__")](s[k]) - t[k]) ** 2).mean() for k in ("down.1", "res")]
    ).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in kd.parameters())
    assert all(v.grad is not None for v in s.values())
    assert all(v.grad is None for v in t.values())


def test_feature_kd_errors():
    with pytest.raises(ValueError, match=r"\['mid'\].*available: \['a', 'b'\]"):
        FeatureDistillationLoss({"a": 1, "b": 2}, {"a": 1, "mid": 2}, ["a", "mid"])
    kd = FeatureDistillationLoss({"a": 2}, {"a": 3}, ["a"])
    with pytest.raises(ValueError, match=r"spatially"):
        kd({"a": torch.zeros(1, 2, 4, 4)}, {"a": torch.zeros(1, 3, 8, 8)})
    with pytest.raises(ValueError, match=r"missing from the teacher"):
        kd({"a": torch.zeros(1, 2, 4, 4)}, {"b": torch.zeros(1, 3, 4, 4)})


def test_gan_losses_on_known_inputs():
    p = torch.tensor([0.5, -1.0, 2.0])
    lsgan, vanilla, hinge = GANLoss("lsgan"), GANLoss("vanilla"), GANLoss("hinge")
    assert lsgan(p, True).item() == pytest.approx((0.25 + 4 + 1) / 3)
    assert lsgan(p, False).item() == pytest.approx((0.25 + 1 + 4) / 3)
    sp = torch.nn.functional.softplus
    assert vanilla(p, True).item() == pytest.approx(sp(-p).mean().item())
    assert vanilla(p, False).item() == pytest.approx(sp(p).mean().item())
    assert hinge(p, True).item() == pytest.approx((0.5 + 2.0 + 0.0) / 3)
    assert hinge(p, False).item() == pytest.approx((1.5 + 0.0 + 3.0) / 3)
    assert hinge(p, True, for_discriminator=False).item() == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="target_is_real=False"):
        hinge(p, False, for_discriminator=False)
    with pytest.raises(ValueError, match="'wgan'"):
        GANLoss("wgan")
