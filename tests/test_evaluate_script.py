"""training_scripts/evaluate.py end to end on tiny generators and a few images made here: the
JSON, the table, the band figure, the model card's model-index, unpaired data, unreadable images,
and the one-line errors (FID without weights, a bad model)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image

from conftest import ROOT, run_script
from wkd_hf import ResnetGenerator

pytest.importorskip("torch_fidelity", reason="FID/KID need the eval extra")
pytest.importorskip("matplotlib", reason="the band figure needs the eval extra")

from inception_fixtures import save_random_inception_weights  # noqa: E402

FAST = ["--resolution", "32", "--band_levels", "2", "--latency_repeats", "1",
        "--kid_subsets", "5", "--batch_size", "4"]


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    return save_random_inception_weights(tmp_path_factory.mktemp("inception") / "random.pth")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A teacher folder (ngf 8), a student folder (ngf 4) and an upstream-style .pth (ngf 4)."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    paths = {}
    for name, ngf in (("teacher", 8), ("student", 4)):
        ResnetGenerator(ngf=ngf, n_blocks=1).save_pretrained(root / name)
        paths[name] = root / name
    paths["pth"] = root / "upstream" / "latest_net_G.pth"
    paths["pth"].parent.mkdir()
    torch.save(ResnetGenerator(ngf=4, n_blocks=1).state_dict(), paths["pth"])
    return paths


@pytest.fixture
def paired_images(tmp_path):
    """Four side-by-side AB images (64x32) made with PIL, plus one unreadable file."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    gen = torch.Generator().manual_seed(1)
    for i in range(4):
        pixels = torch.randint(0, 256, (32, 64, 3), generator=gen, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    return folder


def evaluate(*argv):
    return run_script("evaluate", [str(a) for a in argv])


def test_paired_evaluation_writes_json_table_figure_and_cards(
        tmp_path, tiny_models, paired_images, inception_weights, caplog):
    out = tmp_path / "eval"
    evaluate("--model", tiny_models["teacher"], "--model", tiny_models["student"],
             "--model", tiny_models["pth"], "--teacher", tiny_models["teacher"],
             "--train_data_dir", paired_images, "--direction", "BtoA", "--output_dir", out,
             "--inception_weights", inception_weights, "--real_stats", tmp_path / "real.npz",
             "--update_card", *FAST)
    results = json.loads((out / "results.json").read_text())
    records = results["models"]
    assert [r["name"] for r in records] == ["teacher", "student", "upstream/latest_net_G.pth"]
    assert results["settings"]["num_images"] == 4  # the broken file was skipped ...
    assert "broken.png" in caplog.text  # ... and named
    for record in records:
        assert record["params"] > 0 and record["macs"] > 0 and record["latency_ms"] > 0
        assert {"psnr", "ssim", "l1", "fid", "kid_mean", "kid_std"} <= set(record["metrics"])
        assert {"LL", "LH1", "HH2"} <= set(record["bands"]) <= set(record["teacher_bands"])
    teacher, student = records[0], records[1]
    assert all(v == pytest.approx(0, abs=1e-6) for v in teacher["teacher_bands"].values())
    assert student["teacher_bands"]["HH1"] > 0
    assert teacher["params"] > student["params"]
    table = (out / "results.md").read_text()
    assert "| student |" in table and "FID" in table and "PSNR" in table
    assert (out / "bands.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "real.npz").is_file()
    card = ModelCard.load(tiny_models["student"] / "README.md")
    entries = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert entries["fid"] == pytest.approx(student["metrics"]["fid"], abs=1e-3)
    assert {"psnr", "ssim", "kid"} <= set(entries)
    assert "model-index" in card.content and "## Evaluation" in card.text
    # a second run reads the cached real statistics and replaces (not repeats) the card's results
    evaluate("--model", tiny_models["student"], "--train_data_dir", paired_images,
             "--direction", "BtoA", "--output_dir", out, "--inception_weights", inception_weights,
             "--real_stats", tmp_path / "real.npz", "--update_card", *FAST)
    again = json.loads((out / "results.json").read_text())["models"][0]
    assert again["metrics"]["fid"] == pytest.approx(student["metrics"]["fid"], rel=1e-6)
    card = ModelCard.load(tiny_models["student"] / "README.md")
    assert len(card.data.eval_results) == len(entries)
    assert card.text.count("## Evaluation") == 1


def test_unpaired_evaluation_measures_fid_and_band_energy(tmp_path, tiny_models, photo_domains,
                                                         inception_weights):
    out = tmp_path / "eval"
    evaluate("--model", tiny_models["student"], "--train_data_dir", photo_domains,
             "--output_dir", out, "--inception_weights", inception_weights,
             "--max_eval_samples", "3", *FAST)
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["layout"] == "unpaired" and results["settings"]["split"] == "train"
    record = results["models"][0]
    assert "psnr" not in record["metrics"] and record["metrics"]["fid"] > 0
    assert record["bands"]["LL"] >= 0 and (out / "bands.png").is_file()


def _run_cli(*argv, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, str(ROOT / "training_scripts" / "evaluate.py"),
                           *map(str, argv)], capture_output=True, text=True, env=env,
                          timeout=600)


def test_fid_without_weights_is_one_error_line_and_the_rest_still_runs(
        tmp_path, tiny_models, paired_images):
    out = tmp_path / "eval"
    result = _run_cli("--model", tiny_models["student"], "--train_data_dir", paired_images,
                      "--direction", "BtoA", "--output_dir", out, "--metrics", "psnr,ssim,fid",
                      *FAST, env_extra={"TORCH_HOME": str(tmp_path / "empty_torch_home")})
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(errors) == 1 and "pt_inception-2015-12-05-6726825d.pth" in errors[0]
    assert "--inception_weights" in errors[0]
    metrics = json.loads((out / "results.json").read_text())["models"][0]["metrics"]
    assert "psnr" in metrics and "fid" not in metrics


def test_a_model_that_does_not_load_is_one_error_line(tmp_path, paired_images):
    result = _run_cli("--model", tmp_path / "no_such_model", "--train_data_dir", paired_images,
                      "--output_dir", tmp_path / "eval", "--metrics", "psnr", *FAST)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") or "\nerror:" in result.stderr
