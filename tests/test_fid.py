"""FID/KID: the Frechet distance against a closed form and scipy, KID's unbiasedness, and the whole
feature path on a randomly initialised InceptionV3 saved as a weights file (the real weights
cannot be fetched here); the missing-weights error."""

import numpy as np
import pytest
import torch

pytest.importorskip("torch_fidelity", reason="FID/KID need the eval extra")

from inception_fixtures import save_random_inception_weights  # noqa: E402

from wkd_hf.metrics import fid  # noqa: E402


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    return save_random_inception_weights(tmp_path_factory.mktemp("inception") / "random.pth")


def _random_spd(rng, dim):
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def test_frechet_distance_of_two_gaussians_matches_the_closed_form():
    # diagonal covariances: FD = |mu1 - mu2|^2 + sum (a + b - 2 sqrt(a b))
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3, 16), rng.uniform(0.1, 3, 16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    expected = ((mu1 - mu2) ** 2).sum() + (a + b - 2 * np.sqrt(a * b)).sum()
    assert fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected,
                                                                                   rel=1e-9)
    # same Gaussian rotated: only the means differ
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    sigma = q @ np.diag(a) @ q.T
    assert fid.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(
        ((mu1 - mu2) ** 2).sum(), rel=1e-7)


def test_frechet_distance_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    for dim in (8, 64):
        s1, s2 = _random_spd(rng, dim), _random_spd(rng, dim)
        mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
        covmean = scipy_linalg.sqrtm(s1 @ s2).real  # pytorch-fid's formula
        expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
        assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_statistics_follow_numpy_cov_and_fid_of_a_set_with_itself_is_zero():
    x = torch.randn(200, 12, dtype=torch.float64)
    mu, sigma = fid.feature_statistics(x)
    np.testing.assert_allclose(mu.numpy(), x.numpy().mean(0), atol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.numpy(), rowvar=False), atol=1e-12)
    assert fid.fid_from_features(x, x) == pytest.approx(0, abs=1e-9)
    assert fid.fid_from_features(x, x + 1) == pytest.approx(12, rel=1e-9)  # shift of 1 per dim


def test_kid_is_unbiased_on_sets_from_one_distribution():
    gen = torch.Generator().manual_seed(0)
    means = []
    for _ in range(20):
        x, y = torch.randn(40, 8, generator=gen), torch.randn(40, 8, generator=gen)
        means.append(fid.kid_from_features(x, y, subsets=5, subset_size=40)[0])
    means = np.array(means)
    # unbiased: centred on 0 (a biased MMD^2 estimate would sit clearly above 0)
    assert abs(means.mean()) < 3 * means.std() / np.sqrt(len(means))
    shifted = fid.kid_from_features(torch.randn(40, 8, generator=gen),
                                    torch.randn(40, 8, generator=gen) + 1, subsets=5,
                                    subset_size=40)[0]
    assert shifted > 10 * abs(means.mean())


def test_kid_equals_the_unbiased_mmd_formula_on_whole_sets():
    x, y = torch.randn(30, 6, dtype=torch.float64), torch.randn(30, 6, dtype=torch.float64) + .3
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    expected = ((kxx.sum() - kxx.trace()) + (kyy.sum() - kyy.trace())) / (m * (m - 1)) \
        - 2 * kxy.sum() / m ** 2
    mean, std = fid.kid_from_features(x, y, subsets=3, subset_size=30)
    assert mean == pytest.approx(float(expected), rel=1e-9) and std == pytest.approx(0, abs=1e-9)


def test_feature_path_from_a_weights_file(inception_weights, tmp_path):
    extractor = fid.InceptionFeatures(inception_weights)
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (3, 3, 48, 48), generator=gen)
    images = pixels / 127.5 - 1  # exactly on the uint8 grid
    features = extractor(images)
    assert features.shape == (3, fid.FEATURE_DIM) and features.dtype == torch.float64
    assert features.std() > 1e-3  # the network is not dead
    # uint8 quantisation: images that round to the same bytes give the same features
    assert torch.equal(extractor(images + 1e-3), features)
    assert torch.equal(extractor(pixels.to(torch.uint8)), features)
    assert fid.fid_from_features(features, extractor(images)) == pytest.approx(0, abs=1e-6)
    other = extractor(torch.rand(3, 3, 48, 48, generator=gen) * 2 - 1)
    assert fid.fid_from_features(features, other) > 1e-3
    # real statistics: written once (GAN Compression's mu/sigma keys), read back
    path = tmp_path / "real_stats.npz"
    mu, sigma = fid.save_statistics(path, features)
    with np.load(path) as data:
        assert {"mu", "sigma", "features"} <= set(data) and data["mu"].shape == (2048,)
    loaded = fid.load_statistics(path)
    assert torch.allclose(loaded["mu"], mu) and torch.allclose(loaded["sigma"], sigma)


def test_missing_weights_offline_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(fid.InceptionWeightsError) as raised:
        fid.InceptionFeatures()
    message = str(raised.value)
    assert "\n" not in message and fid.INCEPTION_WEIGHTS_FILE in message
    assert "--inception_weights" in message and str(tmp_path / "torch_home") in message
    with pytest.raises(fid.InceptionWeightsError, match="is not a file"):
        fid.InceptionFeatures(tmp_path / "nowhere.pth")


def test_weights_in_the_torch_hub_cache_are_found(monkeypatch, tmp_path, inception_weights):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = tmp_path / "hub" / "checkpoints" / fid.INCEPTION_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(inception_weights.read_bytes())
    assert fid.find_inception_weights() == cached


def test_a_file_that_is_not_inception_weights_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(fid.InceptionWeightsError, match="not InceptionV3"):
        fid.InceptionFeatures(path)
