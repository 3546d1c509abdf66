"""The converged study's report: its arithmetic, tables and verdicts against hand computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import load_benchmark
from PIL import Image

from wkd_hf.grid_labels import LABEL_HEIGHT

verdicts = load_benchmark("study_verdicts")
report = load_benchmark("study_report")


def _run(seed, share, fd, teacher_ll=0.5, teacher_high=1.0, ll=0.1, high=0.3):
    return {"seed": seed, "steps": 6000, "params": 150_000, "macs": 200_000_000,
            "metrics": {"target_share": share, "classifier_frechet_distance": fd},
            "bands": {"LL": ll, "LH1": high, "HL1": high, "HH1": high},
            "teacher_bands": {"LL": teacher_ll, "LH1": teacher_high, "HL1": teacher_high,
                              "HH1": teacher_high}}


def _write(folder: Path, part: str, runs: list[dict]) -> None:
    path = folder / f"{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"part": part, "runs": runs, "wall_seconds": 3600,
                                "evaluation": {"num_images": 120, "resolution": 128},
                                "machine": {"cpus": 2, "threads": 1}}))


def _variant(folder, name, shares, fds, **bands):
    _write(folder, f"h2z/{name}", [_run(i, s, f, **bands) for i, (s, f) in enumerate(zip(shares, fds))])


def _h2z(folder: Path, output_kd=(0.28, 0.30, 0.32), wkd_low=(0.10, 0.12, 0.14)) -> None:
    teacher = _run(None, 0.8, 27.0, ll=0.09, high=0.20)
    del teacher["teacher_bands"]
    _write(folder, "h2z/teacher", [teacher])
    _variant(folder, "no_kd", (0.10, 0.12, 0.14), (50.0, 51.0, 52.0))
    _variant(folder, "wkd_high", (0.30, 0.32, 0.34), (40.0, 41.0, 42.0))
    _variant(folder, "output_kd", output_kd, (41.0, 42.0, 43.0))
    _variant(folder, "wkd_low", wkd_low, (50.0, 51.0, 52.0))
    _variant(folder, "wkd_high_teacher_D", (0.30, 0.32, 0.34), (40.0, 41.0, 42.0))
    (folder / "baselines.json").write_text(json.dumps(
        {"h2z_untranslated_horses": {"target_share": 0.033, "classifier_frechet_distance": 62.9}}))


def test_spread_rule_and_comparisons_match_a_hand_computation():
    a, b = [20.0, 21.0, 22.0], [18.0, 18.5, 19.0]
    assert verdicts.mean_std(a) == (21.0, 1.0)
    # |21 - 18.5| = 2.5 > 2 * sqrt(1/3 + 0.25/3) = 1.29
    assert math.isclose(2 * math.sqrt(1 / 3 + 0.25 / 3), 1.2910, rel_tol=1e-4)
    assert verdicts.exceeds_spread(a, b)
    assert not verdicts.exceeds_spread(a, [19.5, 20.0, 20.5])  # 1.0 < 1.29 (but > one s.e.)
    assert verdicts.compare(a, b, higher=True) == "better"
    assert verdicts.compare(a, b, higher=False) == "worse"  # e.g. a Frechet distance
    assert verdicts.compare(a, [19.5, 20.0, 20.5], higher=True) == "within"
    assert verdicts.verdict(["better", "better"]) == "supported"
    assert verdicts.verdict(["better", "within"]) == "inconclusive at this scale"
    assert verdicts.verdict(["better", "worse"]) == "not supported"


def test_h2z_tables_and_verdicts(tmp_path):
    _h2z(tmp_path)
    text = report.report(tmp_path)
    assert "| untranslated horses (do nothing) | - | - | - | - | 0.033 | 62.9 | - | - |" in text
    assert ("| WKD high bands | 3 | 6000 | 150,000 | 200M | 0.320 ± 0.020 | 41.0 ± 1.0 | "
            "0.500 ± 0.000 | 1.000 ± 0.000 |") in text
    # vs no KD: share +0.2 (spread 2*sqrt(2*0.0004/3) = 0.033), FD -10 (spread 1.63)
    assert "| WKD high bands | +0.200 * | -10.000 * |" in text
    assert "| output KD | +0.180 * | -9.000 * |" in text
    # vs WKD high: output KD -0.02 share, +1 FD: both inside the spread
    assert "| output KD | -0.020 | +1.000 |" in text
    assert "The teacher is clearly better than the undistilled student" in text
    assert "**Claim 2 (distil the high bands only): inconclusive at this scale.**" in text
    assert "zebra share 0.320 ± 0.020 (wkd_high) vs 0.300 ± 0.020 (output_kd): within" in text
    assert "**Claim 3 (shrink the discriminator with the generator): inconclusive at this scale.**" in text
    # teacher_bands LL 0.5 < high 1.0 on every seed; band gap above the teacher's:
    # high 0.3 - 0.2 = 0.1 > LL 0.1 - 0.09 = 0.01
    assert "**Claim 1 (small GANs fail mostly in the high bands): supported.**" in text


def test_claim_two_is_decided_by_each_alternative(tmp_path):
    _h2z(tmp_path, output_kd=(0.10, 0.12, 0.14))
    records = report.study_records(report.load(tmp_path), "h2z")
    records["output_kd"]["runs"] = [
        {**r, "metrics": {"target_share": r["metrics"]["target_share"],
                          "classifier_frechet_distance": 55.0 + r["seed"]}}
        for r in records["output_kd"]["runs"]]
    assert verdicts.claim_high_bands(records, "h2z")[0] == "supported"
    records["wkd_low"]["runs"] = [{**r, "metrics": {"target_share": 0.6 + r["seed"] / 100,
                                                    "classifier_frechet_distance": 41.0}}
                                  for r in records["wkd_low"]["runs"]]
    assert verdicts.claim_high_bands(records, "h2z")[0] == "not supported"


def test_claim_one_fails_when_the_student_falls_behind_in_ll(tmp_path):
    _write(tmp_path, "h2z/no_kd", [_run(i, 0.1, 50.0, teacher_ll=1.2, teacher_high=1.0)
                                   for i in range(3)])
    records = report.study_records(report.load(tmp_path), "h2z")
    verdict, reasons = verdicts.claim_bands(records, None)
    assert verdict == "not supported" and "high not > LL on every seed" in reasons[0]
    # the band gap to the real images: LL 0.5 - 0.09 = 0.41 above the teacher's, high only 0.01
    _write(tmp_path, "h2z/no_kd", [_run(i, 0.1, 50.0, ll=0.5, high=0.21) for i in range(3)])
    records = report.study_records(report.load(tmp_path), "h2z")
    teacher = _run(None, 0.8, 27.0, ll=0.09, high=0.20)
    verdict, reasons = verdicts.claim_bands(records, teacher)
    assert verdict == "not supported"
    assert "band gap to the real images above the teacher's, LL 0.410 ± 0.000, high 0.010" in reasons[1]


def test_a_teacher_no_better_than_its_students_is_called_out(tmp_path):
    _h2z(tmp_path)
    records = report.study_records(report.load(tmp_path), "h2z")
    records["teacher"]["runs"][0]["metrics"]["target_share"] = 0.13  # inside the students' spread
    assert "is NOT clearly better" in report.teacher_check("h2z", records)
    records["teacher"]["runs"][0]["metrics"]["target_share"] = 0.01  # far below them
    assert "is NOT clearly better" in report.teacher_check("h2z", records)


def test_evaluators_and_figures_are_reported(tmp_path):
    pytest.importorskip("matplotlib")
    _h2z(tmp_path)
    (tmp_path / "evaluators.json").write_text(json.dumps({"evaluators": {"domain": {
        "resolution": 128, "steps": 1500, "train_images": {"trainA": 1007, "trainB": 1274},
        "test_accuracy": {"testA": 0.967, "testB": 0.936}}}}))
    point = [{"step": 1000, "metrics": {"classifier_frechet_distance": 50.0, "target_share": 0.1}},
             {"step": 2000, "metrics": {"classifier_frechet_distance": 45.0, "target_share": 0.2}}]
    (tmp_path / "h2z" / "small_no_kd.progress.json").write_text(json.dumps({"curves": [point]}))
    for name in ("input", "teacher", "no_kd", "wkd_high"):
        Image.new("RGB", (40, 32), "gray").save(tmp_path / "h2z" / f"{name}.png")
    text = report.report(tmp_path)
    assert "test accuracy horses 0.967, zebras 0.936" in text
    assert "![h2z learning curves](h2z_curves.png)" in text
    assert Image.open(tmp_path / "h2z_curves.png").width > 0
    grid = Image.open(tmp_path / "h2z_grid.png")
    assert grid.size == (4 * 40 + 3 * 4, 32 + LABEL_HEIGHT)
    strip = np.asarray(grid.convert("L"))[:LABEL_HEIGHT]
    assert (strip < 128).any()  # the column names are drawn above the pictures


def test_latency_table_gives_per_round_speedups_over_each_studys_teacher(tmp_path):
    _h2z(tmp_path)
    rows = {"h2z teacher (GAN Compression)": [10.0, 12.0, 30.0], "h2z student": [2.0, 4.0, 5.0],
            "facades teacher": [8.0, 8.0, 8.0], "facades student": [1.0, 2.0, 4.0]}
    (tmp_path / "efficiency.json").write_text(json.dumps({
        "rounds": 3, "threads": 1, "missing": ["h2z small student"],
        "models": {name: {"resolution": 128, "params": 1000, "macs": 2_000_000,
                          "latency_ms_median": sorted(times)[1],
                          "latency_ms_p10": min(times), "latency_ms_p90": max(times),
                          "latency_ms_rounds": times} for name, times in rows.items()}}))
    text = report.report(tmp_path)
    # h2z: ratio of medians 12 / 4 = 3; per-round ratios 5, 3, 6 -> deciles 3 + 0.2 * 2 and 5 + 0.8 * 1
    assert "| h2z student | 128 | 1,000 | 2M | 4.00 [2.00, 5.00] | 3.00x [3.40, 5.80] |" in text
    # facades: its own teacher (8 / 2 = 4; per-round 8, 4, 2 -> deciles 2 + 0.2 * 2 and 4 + 0.8 * 4), not h2z's
    assert "| facades student | 128 | 1,000 | 2M | 2.00 [1.00, 4.00] | 4.00x [2.40, 7.20] |" in text
    assert "| h2z teacher (GAN Compression) | 128 | 1,000 | 2M | 12.00 [10.00, 30.00] | - |" in text
    assert "Not trained yet, so not timed: h2z small student." in text


def test_the_grid_caption_names_the_columns_drawn(tmp_path):
    _h2z(tmp_path)
    for name in ("input", "teacher", "wkd_low", "small_wkd_high"):
        Image.new("RGB", (40, 32), "gray").save(tmp_path / "h2z" / f"{name}.png")
    text = report.report(tmp_path)
    assert "columns: input, teacher, wkd_low, small_wkd_high." in text
    assert Image.open(tmp_path / "h2z_grid.png").width == 4 * 40 + 3 * 4


def test_compute_counts_every_chunk_of_a_part_resumed_over_sittings(tmp_path):
    _h2z(tmp_path)  # five variants x 3 seeds, no curves: their train_seconds (0 here) count
    runs = [{**_run(i, 0.3, 40.0), "train_seconds": 100.0,  # the last sitting's chunk only
             "curve": [{"step": step, "chunk_train_seconds": seconds, "metrics": {
                 "classifier_frechet_distance": 40.0, "target_share": 0.3}}
                       for step, seconds in ((1000, 1700.0), (2000, 100.0))]} for i in range(3)]
    _write(tmp_path, "h2z/small_wkd_high", runs)
    text = report.report(tmp_path)
    assert "Compute: 1.50 h of training" in text  # 3 x (1700 + 100) s, not 3 x 100 s
