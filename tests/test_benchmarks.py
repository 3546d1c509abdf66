"""Smoke test of benchmarks/distill_step.py, so the benchmark does not rot (tiny nets, ~5 s)."""

import importlib.util
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("distill_step", ROOT / "benchmarks" / "distill_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive_finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_distill_step_quick_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    _load_benchmark().main(["--quick", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "Table 1" in printed and "Table 2" in printed and "NOT measured here" in printed
    result = json.loads(out.read_text())
    assert result["machine"]["threads"] == 1 and result["machine"]["torch"]  # quick: 1 thread

    wkd = result["wkd"]["configs"]
    assert set(wkd) == {"no_kd", "wkd_high", "output_kd", "wkd_loss_only", "l1_loss_only"}
    for name, row in wkd.items():
        assert len(row["times"]) == 2, name
        for key in ("median", "p10", "p90"):
            assert _positive_finite(row[key]), (name, key)
        assert row["p10"] <= row["median"] <= row["p90"]
        assert _positive_finite(row["vs_no_kd"]["median"]) and _positive_finite(row["vs_output_kd"]["median"])
    assert wkd["no_kd"]["vs_no_kd"]["median"] == 1.0
    assert _positive_finite(result["wkd"]["share"]["wkd_loss_over_wkd_step"]["median"])
    assert math.isfinite(result["wkd"]["share"]["wkd_minus_output_kd_over_wkd_step"]["median"])

    cycle = result["cycle"]["configs"]
    assert set(cycle) == {"paper_mode", "ours_default", "teacher_32px", "paper_mode_bf16"}
    for name, row in cycle.items():
        assert _positive_finite(row["median"]) and _positive_finite(row["vs_paper_mode"]["median"]), name
    assert cycle["paper_mode"]["vs_paper_mode"]["median"] == 1.0

    precision = result["precision"]["configs"]
    assert set(precision) == {"fp32", "bf16_students", "bf16", "bf16_batch4"}  # no --channels_last
    assert precision["fp32"]["vs_fp32"]["median"] == 1.0
    assert precision["bf16_batch4"]["batch_size"] == 4
    # the same weights and batch at the first step: bf16 changes the losses by rounding only
    assert precision["fp32"]["first_step_rel_diff"]["wkd"] == 0
    assert 0 < precision["bf16"]["first_step_rel_diff"]["wkd"] < 0.05


def test_distill_step_only_and_teacher_resolutions(tmp_path):
    out = tmp_path / "cycle.json"
    result = _load_benchmark().main(["--quick", "--only", "cycle", "--repeats", "1", "--warmup", "0",
                                     "--teacher_resolution", "32", "48", "--json", str(out)])
    assert "wkd" not in result
    assert set(result["cycle"]["configs"]) == {"paper_mode", "ours_default", "teacher_32px",
                                               "paper_mode_bf16",
                                               "teacher_48px"}
    assert result["cycle"]["configs"]["teacher_48px"]["resolution"] == 48
    assert json.loads(out.read_text())["cycle"]["configs"]["teacher_48px"]["median"] > 0
