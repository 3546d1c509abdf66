"""evaluate.py times latency as wkd-profile does: all models interleaved in the same rounds, with
the spread reported, a warning when load makes it meaningless, and no such figure in a card.

The clock is the test's: each forward of a generator advances it by a cost proportional to the
model's parameter count, times a load factor that a "burst" raises for a stretch of the timing."""

import json
import types

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image

from conftest import run_script
from wkd_hf import ResnetGenerator
from wkd_hf.metrics import efficiency


class FakeClock:
    """Seconds that advance only when a generator runs; ``burst`` = (first, last) clock reads
    during which a forward costs ``factor`` times more (a busy machine)."""

    def __init__(self, burst=None, factor=50.0):
        self.now, self.reads, self.burst, self.factor = 0.0, 0, burst, factor

    def perf_counter(self):
        self.reads += 1
        return self.now

    def charge(self, model):
        cost = sum(p.numel() for p in model.parameters()) * 1e-8
        busy = self.burst is not None and self.burst[0] <= self.reads <= self.burst[1]
        self.now += cost * (self.factor if busy else 1.0)


@pytest.fixture
def models_and_data(tmp_path):
    torch.manual_seed(0)
    for name, ngf in (("teacher", 8), ("student", 4)):
        ResnetGenerator(ngf=ngf, n_blocks=1).save_pretrained(tmp_path / name)
    folder = tmp_path / "pairs"
    folder.mkdir()
    gen = torch.Generator().manual_seed(1)
    for i in range(2):
        pixels = torch.randint(0, 256, (32, 64, 3), generator=gen, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return tmp_path


def _evaluate(root, clock, monkeypatch):
    monkeypatch.setattr(efficiency, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    forward = ResnetGenerator.forward

    def charged(self, x):
        clock.charge(self)
        return forward(self, x)

    monkeypatch.setattr(ResnetGenerator, "forward", charged)
    out = root / "eval"
    run_script("evaluate", [str(a) for a in (
        "--model", root / "teacher", "--model", root / "student", "--train_data_dir",
        root / "pairs", "--direction", "BtoA", "--output_dir", out, "--metrics", "psnr",
        "--resolution", "32", "--latency_repeats", "10", "--update_card")])
    results = json.loads((out / "results.json").read_text())
    return {r["name"]: r for r in results["models"]}, results["settings"], out


def test_a_load_burst_hits_both_models_and_keeps_latency_out_of_the_cards(
        models_and_data, monkeypatch, capsys):
    # 10 rounds x 2 models = 40 clock reads; the burst covers the last 24 of them. Timed one
    # model after the other, the student would get all of it and look 50x slower than it is.
    records, settings, out = _evaluate(models_and_data, FakeClock(burst=(17, 40)), monkeypatch)
    teacher, student = records["teacher"], records["student"]
    params = teacher["params"] / student["params"]
    assert teacher["latency_ms"] / student["latency_ms"] == pytest.approx(params, rel=1e-6)
    assert student["speedup_vs_first"] == pytest.approx(params, rel=1e-6)
    assert student["latency_spread"] > 0.5 and student["latency_rounds"] == 10
    assert "timings are noisy" in capsys.readouterr().err
    assert "timings are noisy" in settings["latency_warning"]
    assert "not written into any model card" in (out / "results.md").read_text()
    for name, record in records.items():
        card = ModelCard.load(models_and_data / name / "README.md").text
        assert f"{record['latency_ms']:.1f}" not in card
        assert f"| {name} |" in card and " | - | " in card  # the latency cell is empty


def test_a_quiet_clock_writes_median_and_spread_into_the_cards(models_and_data, monkeypatch):
    records, settings, _ = _evaluate(models_and_data, FakeClock(), monkeypatch)
    assert settings["latency_warning"] is None
    for name, record in records.items():
        assert record["latency_spread"] == pytest.approx(0.0, abs=1e-9)
        card = ModelCard.load(models_and_data / name / "README.md").text
        latency = f"{record['latency_ms']:.1f}"
        assert f"{latency} [{latency}-{latency}]" in card
