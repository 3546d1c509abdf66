"""The trained-evaluator metrics (wkd_hf.metrics.fcn_score, domain_classifier, evaluators) and
their training script, pinned to hand-made cases: a hand-counted confusion matrix, a palette of
known colours saved as JPEG, a segmentation of a synthetic image with known regions, and the
Frechet distance computed by hand with numpy/scipy."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import load_script, run_script
from wkd_hf import ResnetGenerator
from wkd_hf.errors import WKDError
from wkd_hf.metrics.domain_classifier import (
    DomainClassifier,
    DomainScore,
    load_domain_evaluator,
    save_domain_evaluator,
)
from wkd_hf.metrics.fcn_score import (
    FCNScore,
    SegmentationNet,
    colours_to_classes,
    confusion_matrix,
    derive_palette,
    load_fcn_evaluator,
    save_fcn_evaluator,
    scores_from_confusion,
)

LABEL_COLOURS = np.array([[0, 0, 220], [0, 200, 250], [250, 80, 0]], np.float32)  # sorted
PHOTO_COLOURS = np.array([[40, 40, 40], [120, 110, 100], [230, 230, 200]], np.float32)


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8-valued -> 1 x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(np.asarray(pixels, np.float32)).permute(2, 0, 1)[None] / 127.5 - 1


def region_map(size: int = 16) -> np.ndarray:
    """Class ids: top half 0, bottom-left quarter 1, bottom-right quarter 2."""
    ids = np.zeros((size, size), np.int64)
    ids[size // 2:, : size // 2] = 1
    ids[size // 2:, size // 2:] = 2
    return ids


class ColourSegmenter(nn.Module):
    """A stand-in segmentation net: one-hot logits of each pixel's nearest PHOTO_COLOURS entry."""

    def forward(self, images):
        return nn.functional.one_hot(colours_to_classes(images, torch.from_numpy(PHOTO_COLOURS)),
                                     3).permute(0, 3, 1, 2).float()


# ----------------------------------------------------------------------------- FCN-score
def test_scores_match_a_hand_counted_confusion_matrix():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    predicted = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])  # class 3: predicted, never a label
    confusion = confusion_matrix(predicted, labels, 4)
    assert confusion.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 2, 1], [0, 0, 0, 0]]
    scores = scores_from_confusion(confusion)
    # pixels: 5 of 8 right; classes 0, 1, 2: 2/3, 1/2, 2/3 right; IoU = TP / (row + column - TP):
    # 2/(3+2-2), 1/(2+2-1), 2/(3+3-2) (class 3 is no label class: out of the means, as in
    # pix2pix's FCN-score).
    assert scores["pixel_accuracy"] == pytest.approx(5 / 8)
    assert scores["class_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert scores["miou"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 4) / 3)


def test_the_palette_is_found_in_jpeg_label_maps(tmp_path):
    """Blocks of three known colours, saved as JPEG (noisy, blended edges), then read back."""
    images = []
    for i in range(4):
        ids = np.roll(region_map(64), 8 * i, axis=1)
        Image.fromarray(LABEL_COLOURS[ids].astype(np.uint8)).save(tmp_path / f"{i}.jpg", quality=75)
        images.append(np.asarray(Image.open(tmp_path / f"{i}.jpg").convert("RGB")))
    palette = derive_palette(images, 3)
    np.testing.assert_allclose(palette, LABEL_COLOURS, atol=6)
    ids = colours_to_classes(as_tensor(images[0]), torch.from_numpy(palette))[0]
    inner = (slice(4, 28), slice(20, 44))  # inside the top region, away from the edges
    assert (ids[inner] == 0).all()
    with pytest.raises(ValueError, match="distinct label colours"):
        derive_palette(images, 4)


def test_fcn_score_of_a_synthetic_image_with_known_regions():
    ids = region_map()
    labels, photo = as_tensor(LABEL_COLOURS[ids]), as_tensor(PHOTO_COLOURS[ids])
    score = FCNScore(ColourSegmenter(), torch.from_numpy(LABEL_COLOURS), resolution=16)
    score.update(photo, labels)
    assert score.compute() == {"pixel_accuracy": 1.0, "class_accuracy": 1.0, "miou": 1.0}
    wrong = ids.copy()
    wrong[wrong == 2] = 1  # the generator paints region 2 like region 1
    score.reset()
    score.update(as_tensor(PHOTO_COLOURS[wrong]), labels)
    # 192 of 256 pixels right; classes 1, 1, 0 right; IoU: 1, 64 / 128, 0.
    assert score.compute() == pytest.approx(
        {"pixel_accuracy": 0.75, "class_accuracy": 2 / 3, "miou": 0.5})


def test_a_saved_fcn_evaluator_loads_the_same_network(tmp_path):
    torch.manual_seed(0)
    net = SegmentationNet(3, width=4).eval()
    save_fcn_evaluator(tmp_path, net, LABEL_COLOURS, 16, 4, {"test_scores_on_real_photos": {}})
    loaded = load_fcn_evaluator(tmp_path)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(loaded.net(x), net(x))
    np.testing.assert_allclose(loaded.palette.numpy(), LABEL_COLOURS, atol=1e-3)
    with pytest.raises(WKDError, match="domain_evaluator.safetensors"):
        load_domain_evaluator(tmp_path)


# ----------------------------------------------------------------------------- domain classifier
class MeanColourClassifier(DomainClassifier):
    """Features: the mean colour (3-d); class 1 (target) when the mean red is above 0."""

    def __init__(self):
        super().__init__(width=1)
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-1.0, 0, 0], [1.0, 0, 0]]))
            self.head.bias.zero_()

    def features(self, images):
        return images.mean((2, 3))


def test_target_share_and_classifier_frechet_distance_match_a_hand_computation():
    from scipy import linalg

    gen = torch.Generator().manual_seed(0)
    translated = torch.rand(12, 3, 8, 8, generator=gen) * 2 - 1
    reals = torch.rand(9, 3, 8, 8, generator=gen) * 1.5 - 0.5
    score = DomainScore(MeanColourClassifier(), resolution=8)
    score.update(translated[:5])
    score.update(translated[5:])
    score.update_reals(reals)
    f1, f2 = (x.double().mean((2, 3)).numpy() for x in (translated, reals))
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    by_hand = (((f1.mean(0) - f2.mean(0)) ** 2).sum()
               + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    result = score.compute()
    assert result["classifier_frechet_distance"] == pytest.approx(by_hand, rel=1e-6)
    assert result["target_share"] == pytest.approx((f1[:, 0] > 0).mean())
    assert 0 < result["target_share"] < 1


def test_a_saved_domain_evaluator_loads_the_same_network(tmp_path):
    torch.manual_seed(0)
    net = DomainClassifier(width=2).eval()
    save_domain_evaluator(tmp_path, net, 16, 2, {"test_accuracy": {}})
    loaded = load_domain_evaluator(tmp_path)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(loaded.net(x), net(x))
    assert loaded.resolution == 16
    with pytest.raises(WKDError, match="fcn_evaluator"):
        load_fcn_evaluator(tmp_path)


# ----------------------------------------------------------------------------- training script
def facades_like(root, seed: int = 0, count: int = 6, size: int = 32):
    """train/ (``count``) and test/ (2) side-by-side photo|label images with random regions."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", count), ("test", 2)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            ids = np.roll(region_map(size), int(rng.integers(size)), axis=int(rng.integers(2)))
            pair = np.concatenate([PHOTO_COLOURS[ids], LABEL_COLOURS[ids]], axis=1)
            Image.fromarray(pair.astype(np.uint8)).save(root / split / f"{i}.png")
    return root


def domains_like(root, seed: int = 0):
    """trainA/testA dark noise, trainB/testB bright noise (16 px)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", 6), ("test", 2)):
        for domain, low in (("A", 0), ("B", 128)):
            (root / f"{split}{domain}").mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(low, low + 128, (16, 16, 3)).astype(np.uint8)
                Image.fromarray(pixels).save(root / f"{split}{domain}" / f"{i}.png")
    return root


TINY = ["--resolution", "16", "--steps", "3", "--batch_size", "2", "--width", "4"]


def test_the_evaluators_train_seeded_on_train_images_only(tmp_path):
    script = load_script("train_evaluators")
    data = facades_like(tmp_path / "a")
    script.main(["fcn", "--data_dir", str(data), "--output_dir", str(tmp_path / "fcn1"),
                 "--num_classes", "3", *TINY])
    record = json.loads((tmp_path / "fcn1" / "fcn_evaluator.json").read_text())
    assert record["train_images"] == 6 and record["test_images"] == 2
    assert set(record["test_scores_on_real_photos"]) == {"pixel_accuracy", "class_accuracy", "miou"}
    np.testing.assert_allclose(record["palette"], LABEL_COLOURS, atol=1)
    other_test = facades_like(tmp_path / "b")
    facades_like(tmp_path / "other", seed=5)
    for path in (other_test / "test").glob("*.png"):  # other test images, same train images
        path.write_bytes((tmp_path / "other" / "test" / path.name).read_bytes())
    script.main(["fcn", "--data_dir", str(other_test), "--output_dir", str(tmp_path / "fcn2"),
                 "--num_classes", "3", *TINY])
    first, second = (load_fcn_evaluator(tmp_path / name).net.state_dict()
                     for name in ("fcn1", "fcn2"))
    for key in first:
        torch.testing.assert_close(first[key], second[key])
    domains = domains_like(tmp_path / "h2z")
    script.main(["domain", "--data_dir", str(domains), "--output_dir", str(tmp_path / "dom"),
                 *TINY])
    record = json.loads((tmp_path / "dom" / "domain_evaluator.json").read_text())
    assert set(record["test_accuracy"]) == {"testA", "testB"}
    assert record["train_images"] == {"trainA": 6, "trainB": 6}


def test_a_missing_data_folder_is_one_error_line(tmp_path):
    script = load_script("train_evaluators")
    with pytest.raises(SystemExit, match="error: .*train is not a folder"):
        script.main(["fcn", "--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o")])


# ----------------------------------------------------------------------------- evaluate.py
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluators")
    script = load_script("train_evaluators")
    data = facades_like(root / "facades", size=32)
    script.main(["fcn", "--data_dir", str(data), "--output_dir", str(root / "ev"),
                 "--num_classes", "3", *TINY, "--steps", "80"])  # learns the flat photo colours
    domains = domains_like(root / "h2z")
    script.main(["domain", "--data_dir", str(domains), "--output_dir", str(root / "ev"), *TINY])
    torch.manual_seed(0)
    ResnetGenerator(ngf=4, n_blocks=1).save_pretrained(root / "model")
    return {"root": root, "facades": data, "domains": domains, "evaluators": root / "ev",
            "model": root / "model"}


def images_of(folder, half=None):
    tensors = []
    for path in sorted(folder.glob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"), np.float32)
        if half is not None:
            w = pixels.shape[1] // 2
            pixels = pixels[:, :w] if half == "left" else pixels[:, w:]
        tensors.append(as_tensor(pixels))
    return torch.cat(tensors)


def test_evaluate_reports_the_fcn_score_and_the_real_photo_ceiling(tmp_path, trained):
    out = tmp_path / "eval"
    run_script("evaluate", ["--model", str(trained["model"]), "--train_data_dir",
                            str(trained["facades"]), "--direction", "BtoA", "--resolution", "32",
                            "--metrics", "l1,fcn", "--evaluator_dir", str(trained["evaluators"]),
                            "--latency_repeats", "0", "--output_dir", str(out)])
    results = json.loads((out / "results.json").read_text())
    labels, photos = images_of(trained["facades"] / "test", "right"), images_of(
        trained["facades"] / "test", "left")
    with torch.no_grad():
        generated = ResnetGenerator.from_pretrained(trained["model"]).eval()(labels).clamp(-1, 1)
    expected, ceiling = (load_fcn_evaluator(trained["evaluators"]) for _ in range(2))
    expected.update(generated, labels)
    ceiling.update(photos, labels)
    got = results["models"][0]["metrics"]
    for key, value in expected.compute().items():
        assert got[f"fcn_{key}"] == pytest.approx(value, abs=1e-6)
    assert results["settings"]["fcn_real_photos"] == pytest.approx(ceiling.compute())
    assert results["settings"]["fcn_real_photos"]["pixel_accuracy"] > 0.9
    assert "test_scores_on_real_photos" in results["settings"]["evaluators"]["fcn"]
    assert "FCN mIoU" in (out / "results.md").read_text()


def test_evaluate_reports_the_domain_scores_on_unpaired_data(tmp_path, trained):
    out = tmp_path / "eval"
    run_script("evaluate", ["--model", str(trained["model"]), "--train_data_dir",
                            str(trained["domains"]), "--direction", "AtoB", "--resolution", "16",
                            "--metrics", "domain,fcn", "--evaluator_dir",
                            str(trained["evaluators"]), "--latency_repeats", "0",
                            "--output_dir", str(out)])
    results = json.loads((out / "results.json").read_text())
    sources, reals = (images_of(trained["domains"] / f"test{d}") for d in "AB")
    with torch.no_grad():
        generated = ResnetGenerator.from_pretrained(trained["model"]).eval()(sources).clamp(-1, 1)
    expected = load_domain_evaluator(trained["evaluators"])
    expected.update(generated)
    expected.update_reals(reals)
    got = results["models"][0]["metrics"]
    for key, value in expected.compute().items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-8)
    assert "fcn_miou" not in got  # fcn needs paired data: skipped with a note
    assert results["settings"]["metrics"] == ["domain"]


def test_evaluator_metrics_without_an_evaluator_dir_are_one_error_line(tmp_path, trained):
    import subprocess
    import sys

    from conftest import ROOT

    result = subprocess.run(
        [sys.executable, str(ROOT / "training_scripts" / "evaluate.py"), "--model",
         str(trained["model"]), "--train_data_dir", str(trained["facades"]), "--direction",
         "BtoA", "--resolution", "32", "--metrics", "fcn", "--latency_repeats", "0",
         "--output_dir", str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 1
    assert "error: --metrics fcn needs --evaluator_dir" in result.stderr
    assert "Traceback" not in result.stderr
