"""The seeded study's bookkeeping: resume, chunked curves, stop rule, portable results."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]

study = load_benchmark("study")


def _write(folder: Path, part: str, runs: list[dict]) -> None:
    path = folder / f"{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"part": part, "runs": runs, "settings": {"resolution": 64}, "wall_seconds": 60,
              "evaluation": {"num_images": 106}, "machine": {"cpus": 2, "threads": 2}}
    path.write_text(json.dumps(record))


def test_results_never_hold_this_machines_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(study, "RESULTS", tmp_path)
    record = {"command": f"evaluate.py --train_data_dir {study.SHARED}/facades "
                         f"--teacher {study.ROOT}/study_work/facades/teacher"}
    path = study.write_result("facades/teacher", record)
    text = path.read_text()
    assert str(study.ROOT) not in text and str(study.SHARED) not in text
    assert "--train_data_dir ../shared/data/facades --teacher ./study_work/facades/teacher" in text


def test_a_chunk_resumes_its_run_and_a_reached_step_is_skipped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(study, "launch", lambda script, flags, args: calls.append(flags))
    folder = tmp_path / "run"
    assert study.train_to("distill.py", folder, {"seed": 1}, 500, None) >= 0
    assert "resume_from_checkpoint" not in calls[-1] and "overwrite_output_dir" not in calls[-1]
    assert calls[-1]["max_train_steps"] == calls[-1]["checkpointing_steps"] == 500
    (folder / "checkpoint-500").mkdir(parents=True)
    study.train_to("distill.py", folder, {"seed": 1}, 1000, None)
    assert calls[-1]["resume_from_checkpoint"] == "latest" and calls[-1]["max_train_steps"] == 1000
    study.train_to("distill.py", folder, {"seed": 1}, 500, None)  # step 500 is reached: no run
    assert len(calls) == 2


def test_done_parts_are_not_rerun(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(study, "RESULTS_ROOT", tmp_path)
    monkeypatch.setattr(study, "SHARED", tmp_path)
    (tmp_path / "facades").mkdir()
    _write(tmp_path / "cpu", "facades/no_kd", [])
    ran = []
    monkeypatch.setattr(study, "run_part", lambda part, s, args: ran.append(part) or {"runs": []})
    study.main(["--parts", "facades/no_kd", "efficiency", "--work_dir", str(tmp_path / "work")])
    assert ran == ["efficiency"]
    assert "facades/no_kd: done" in capsys.readouterr().out
    assert json.loads((tmp_path / "cpu" / "efficiency.json").read_text())["part"] == "efficiency"


def test_a_part_another_process_runs_is_skipped_and_its_lock_dies_with_it(tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.setattr(study, "RESULTS_ROOT", tmp_path)
    monkeypatch.setattr(study, "SHARED", tmp_path)
    (tmp_path / "facades").mkdir()
    locks = tmp_path / "work" / "locks"
    holder = subprocess.Popen(  # another study process: holds the part's lock until stdin closes
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from study_lock import part_lock\n"
         "with part_lock(__import__('pathlib').Path(sys.argv[2]), 'h2z/wkd_low'):\n"
         "    print('held', flush=True); sys.stdin.read()",
         str(ROOT / "benchmarks"), str(locks)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        ran = []
        monkeypatch.setattr(study, "run_part", lambda part, s, args: ran.append(part) or {})
        study.main(["--parts", "h2z/wkd_low", "h2z/output_kd", "--work_dir", str(tmp_path / "work")])
        assert ran == ["h2z/output_kd"]
        assert f"h2z/wkd_low: process {holder.pid} runs it, skipped" in capsys.readouterr().out
    finally:
        holder.kill()  # killed, not released: the OS drops its lock
        holder.wait()
    study.main(["--parts", "h2z/wkd_low", "--work_dir", str(tmp_path / "work")])
    assert ran == ["h2z/output_kd", "h2z/wkd_low"]


def test_every_variant_differs_from_the_method_in_one_setting():
    cpu = study.SCALES["cpu"]
    flags = {name: study.student_flags(v, cpu, "facades")
             for name, v in study.FACADES_VARIANTS.items()}
    base = {"student_ngf": cpu["student_ngf"], "discriminator_ndf": cpu["shrunk_ndf"]}
    assert flags["wkd_high"] == {**base, "wkd_bands": "high", "lambda_wkd": 10.0}
    assert flags["no_kd"] == {**base, "wkd_bands": "none"}
    assert flags["wkd_low"] == {**flags["wkd_high"], "wkd_bands": "low"}
    assert flags["output_kd"] == {**base, "wkd_bands": "none", "kd_output_weight": 10.0}
    assert flags["wkd_high_teacher_D"] == {**flags["wkd_high"],
                                           "discriminator_ndf": cpu["teacher_ndf"]}
    small = {"student_ngf": cpu["small_ngf"], "discriminator_ndf": cpu["small_ndf"]}
    assert flags["small_no_kd"] == {**flags["no_kd"], **small}
    assert flags["small_wkd_high"] == {**flags["wkd_high"], **small}
    assert flags["small_wkd_high_teacher_D"] == {**flags["small_wkd_high"],
                                                 "discriminator_ndf": cpu["teacher_ndf"]}
    h2z = {name: study.student_flags(v, cpu, "h2z") for name, v in study.H2Z_VARIANTS.items()}
    assert h2z["wkd_high"] == {"student_ngf": cpu["h2z_student_ngf"], "student_block_type": "mobile",
                               "discriminator_ndf": cpu["shrunk_ndf"], "wkd_bands": "high",
                               "lambda_wkd": 10.0, "mixed_precision": "bf16"}
    assert h2z["small_wkd_high"]["student_ngf"] == cpu["h2z_small_ngf"] < cpu["h2z_student_ngf"]
    assert h2z["wkd_high_teacher_D"]["discriminator_ndf"] == cpu["teacher_ndf"]
    assert statistics.fmean(cpu["seeds"]) == 1 and len(cpu["seeds"]) >= 3


def test_a_curve_flattens_by_the_rule():
    curves = importlib.import_module("study_curves")
    # best of the last 2 points vs the best before them, relative gain < 2 %
    assert not curves.flattened([0.1, 0.2, 0.3], True, 2, 0.02)  # too few points
    assert not curves.flattened([0.1, 0.2, 0.3, 0.35], True, 2, 0.02)  # 0.35 vs 0.2: +75 %
    assert curves.flattened([0.1, 0.3, 0.29, 0.305], True, 2, 0.02)  # +1.7 %
    assert not curves.flattened([0.1, 0.3, 0.29, 0.307], True, 2, 0.02)  # +2.3 %
    assert curves.flattened([50.0, 40.0, 40.5, 39.5], False, 2, 0.02)  # lower is better: -1.25 %
    assert curves.flattened([0.1, 0.3, 0.2, 0.303, 0.302], True, 2, 0.02)  # vs the best before
    runs = [[{"step": 1, "metrics": {"m": 1.0}}, {"step": 2, "metrics": {"m": 3.0}}],
            [{"step": 1, "metrics": {"m": 2.0}}]]
    assert curves.mean_curve(runs, "m") == [1.5]


def test_curves_run_in_chunks_until_no_kd_flattens_and_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(study, "RESULTS", tmp_path / "results")
    trained, evaluated = [], []
    # seed means 0.11 ... : the best of points 4-5 (0.312) gains 0.6 % on the best before (0.31)
    miou = [0.10, 0.20, 0.30, 0.302, 0.301, 0.50]

    def fake_train(script, folder, flags, step, args):
        trained.append((folder.name, step))
        return 1.0

    def fake_evaluate(models, data, out, metrics, args, **kwargs):
        evaluated.append(len(models))
        step = len(study.read_curve(models[0]))
        return {"models": [{"metrics": {"fcn_miou": miou[step] + 0.01 * i}}
                           for i, _ in enumerate(models)]}

    monkeypatch.setattr(study, "train_to", fake_train)
    monkeypatch.setattr(study, "evaluate", fake_evaluate)
    args = argparse.Namespace(work_dir=tmp_path / "work", commit=False)
    s = study.SCALES["cpu"]
    done = study.run_curves("facades", "no_kd", s, args)
    assert done["steps"] == 2500 and done["flattened"]
    steps = (500, 1000, 1500, 2000, 2500)
    assert trained == [(f"seed{seed}", step) for step in steps for seed in (0, 1, 2)]
    assert evaluated == [3] * 5  # all seeds of a chunk in one evaluate.py call
    progress = json.loads((tmp_path / "results" / "facades" / "no_kd.progress.json").read_text())
    assert [p["step"] for p in progress["curves"][2]] == list(steps)
    trained.clear()
    again = study.run_curves("facades", "no_kd", s, args)  # resumed: nothing left to train
    assert trained == [] and again["steps"] == 2500
    study.write_result("facades/no_kd", {"chosen_steps": 1000})
    for seed in (0, 1, 2):  # a student variant runs to the chosen steps, whatever its curve
        (args.work_dir / "facades" / "wkd_high" / f"seed{seed}").mkdir(parents=True)
    assert study.run_curves("facades", "wkd_high", s, args)["steps"] == 1000


def test_a_follower_never_trains_ahead_of_no_kd(tmp_path, monkeypatch):
    """--follow: WKD high trains beside no-KD, chunk by chunk behind its curve, and stops at the
    step count no-KD chooses (here 2000, while the follower could have gone on)."""
    monkeypatch.setattr(study, "RESULTS", tmp_path / "results")
    s = {**study.SCALES["cpu"], "h2z_curve_every": 1000}
    progress = tmp_path / "results" / "h2z" / "no_kd.progress.json"
    progress.parent.mkdir(parents=True)
    no_kd_at = iter([1000, 2000, 2000, "done"])  # no-KD's state at each wait
    trained, waits = [], []

    def no_kd_moves(seconds):
        waits.append(seconds)
        state = next(no_kd_at)
        if state == "done":
            study.write_result("h2z/no_kd", {"chosen_steps": 2000})
        else:
            point = {"step": state, "metrics": {}}
            progress.write_text(json.dumps({"curves": [[point]] * 3}))

    monkeypatch.setattr(study.time, "sleep", no_kd_moves)
    monkeypatch.setattr(study, "train_to", lambda script, folder, flags, step, args:
                        trained.append((folder.name, step)) or 0.0)
    monkeypatch.setattr(study, "evaluate", lambda models, *a, **k: {
        "models": [{"metrics": {"classifier_frechet_distance": 50.0}} for _ in models]})
    args = argparse.Namespace(work_dir=tmp_path / "work", commit=False, follow=True,
                              follow_poll_seconds=7)
    done = study.run_curves("h2z", "wkd_high", s, args)
    assert done["steps"] == 2000
    assert trained == [(f"seed{seed}", step) for step in (1000, 2000) for seed in (0, 1, 2)]
    assert waits == [7] * 4
    args.follow = False  # without --follow a student needs no-KD's result first
    progress.unlink()
    (tmp_path / "results" / "h2z" / "no_kd.json").unlink()
    with pytest.raises(SystemExit, match="run the part h2z/no_kd first"):
        study.run_curves("h2z", "output_kd", s, args)


def test_the_validation_split_is_carved_from_train(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    for split, count in (("train", 30), ("test", 3)):
        (shared / "facades" / split).mkdir(parents=True)
        for i in range(1, count + 1):
            (shared / "facades" / split / f"{i}.jpg").write_text(str(i))
    for folder in ("trainA", "trainB", "testA", "testB"):
        (shared / "horse2zebra" / folder).mkdir(parents=True)
        for i in range(70):
            (shared / "horse2zebra" / folder / f"{folder}_{i:03d}.jpg").write_text("x")
    monkeypatch.setattr(study, "SHARED", shared)
    args = argparse.Namespace(work_dir=tmp_path / "work")
    study.prepare_data(args)
    data = args.work_dir / "data"
    names = {split: sorted(p.name for p in (data / "facades" / split).iterdir())
             for split in ("train", "validation", "test")}
    assert names["validation"] == ["10.jpg", "20.jpg", "30.jpg"]
    assert len(names["train"]) == 27 and not set(names["train"]) & set(names["validation"])
    assert names["test"] == ["1.jpg", "2.jpg", "3.jpg"]
    horses = [p.name for p in (data / "h2z" / "validationA").iterdir()]
    assert len(horses) == 60
    assert not set(horses) & {p.name for p in (data / "h2z" / "trainA").iterdir()}
    assert len(list((data / "h2z" / "testB").iterdir())) == 70


@pytest.mark.parametrize("scale", sorted(study.SCALES))
def test_every_scale_names_the_same_settings(scale):
    assert study.SCALES[scale].keys() == study.SCALES["cpu"].keys()


def test_curve_band_is_the_mean_and_std_over_seeds():
    figures = importlib.import_module("study_figures")
    runs = [[{"step": 500, "metrics": {"m": 1.0}}, {"step": 1000, "metrics": {"m": 3.0}}],
            [{"step": 500, "metrics": {"m": 2.0}}, {"step": 1000, "metrics": {"m": 5.0}},
             {"step": 1500, "metrics": {"m": 9.0}}]]  # a seed ahead: its extra point waits
    steps, mean, std = figures.curve_band(runs, "m")
    assert steps == [500, 1000] and mean == [1.5, 4.0]
    assert std == pytest.approx([math.sqrt(0.5), math.sqrt(2.0)])
    finished = {"runs": [{"curve": runs[0]}]}
    progress = {"curves": runs}
    assert figures.part_curves({"a": finished, "b": progress}) == {"a": [runs[0]], "b": runs}


def test_a_curve_flat_from_the_start_runs_to_the_minimum_steps(tmp_path, monkeypatch):
    """A GAN's curve can sit still early and rise later: no stop before min_steps."""
    monkeypatch.setattr(study, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(study, "train_to", lambda script, folder, flags, step, args: 0.0)
    monkeypatch.setattr(study, "evaluate", lambda models, *a, **k: {
        "models": [{"metrics": {"classifier_frechet_distance": 50.0}} for _ in models]})
    args = argparse.Namespace(work_dir=tmp_path / "work", commit=False)
    s = {**study.SCALES["cpu"], "h2z_min_steps": 3000, "h2z_curve_every": 500}
    done = study.run_curves("h2z", "no_kd", s, args)
    assert done["steps"] == 3000 and done["flattened"]


def test_efficiency_part_measures_a_saved_generator(tmp_path):
    from wkd_hf.models.resnet_generator import ResnetGenerator

    efficiency = load_benchmark("study_efficiency")
    net = ResnetGenerator(ngf=4, n_blocks=1)
    net.save_pretrained(tmp_path / "tiny")
    record = efficiency.measure({"tiny": (tmp_path / "tiny", 32)}, rounds=2)
    row = record["models"]["tiny"]
    assert row["params"] == sum(p.numel() for p in net.parameters())
    # the first conv alone (7x7, 3 -> 4 channels at 32 x 32) costs 32*32*4*3*49 multiply-adds
    assert row["macs"] > 32 * 32 * 4 * 3 * 49 > row["params"]
    assert row["latency_ms_p10"] <= row["latency_ms_median"] <= row["latency_ms_p90"]
    assert record["rounds"] == 2 and record["batch_size"] == 1
    assert len(row["latency_ms_rounds"]) == 2 and record["missing"] == []


def test_efficiency_part_lists_a_network_not_trained_yet(tmp_path):
    from wkd_hf.models.resnet_generator import ResnetGenerator

    efficiency = load_benchmark("study_efficiency")
    ResnetGenerator(ngf=4, n_blocks=1).save_pretrained(tmp_path / "tiny")
    record = efficiency.measure({"tiny": (tmp_path / "tiny", 32),
                                 "small": (tmp_path / "not_trained", 32)}, rounds=2)
    assert list(record["models"]) == ["tiny"] and record["missing"] == ["small"]


def test_a_runs_training_time_counts_every_sitting():
    """The curve keeps each chunk's seconds, whichever sitting trained it; a resumed part's
    record sums them all (it once counted only the last sitting's chunks)."""
    curve = [{"step": 1000, "chunk_train_seconds": 1700.04}, {"step": 2000},
             {"step": 3000, "chunk_train_seconds": 100.0}]
    assert load_benchmark("study_curves").train_seconds(curve) == 1800.0
