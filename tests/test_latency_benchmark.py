"""Smoke test of benchmarks/latency.py --quick (tiny nets, seconds): the script must not rot."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_latency_quick_writes_json(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("latency", ROOT / "benchmarks" / "latency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "latency.json"
    module.main(["--quick", "--batch_sizes", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "== batch 1 ==" in printed and "best backend" in printed
    result = json.loads(out.read_text())
    assert result["machine"]["threads"] == 1 and result["machine"]["onnxruntime"]
    rows = result["batch_1"]["rows"]
    assert {(r["model"], r["backend"]) for r in rows.values()} == {
        (m, b) for m in ("teacher", "student_a", "student_b", "mobile") for b in ("eager", "ort")}
    for row in rows.values():
        assert len(row["times_ms"]) == 2 and row["ms"]["p10"] <= row["ms"]["median"] <= row["ms"]["p90"]
        assert row["speedup_same_backend"]["median"] > 0
    assert rows["teacher | ort"]["speedup_same_backend"]["median"] == 1.0
    models = result["models"]
    assert models["teacher"]["macs_ratio"] == 1.0 and models["mobile"]["macs_ratio"] > 1
    assert set(result["batch_1"]["best"]) == set(models)
    # the defaults are absolute paths beside the repository; the file shows them relative to it
    assert result["settings"]["photos"] == "../shared/data/horse2zebra/testA"
    assert not [v for v in result["settings"].values() if isinstance(v, str) and Path(v).is_absolute()]


def test_profile_ops_quick_sums_kernel_time_by_op_type(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("profile_ops",
                                                  ROOT / "benchmarks" / "profile_ops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "profile.json"
    # the plain graph (no graph rewrites): the 7x7 head stays a 7x7 conv for the MACs below
    module.main(["--quick", "--json", str(out), "--graph_rewrites"])
    printed = capsys.readouterr().out
    assert "| op type |" in printed and "teacher ms / this ms" in printed
    profiles = json.loads(out.read_text())["batch_1"]
    assert set(profiles) == {"teacher", "student_a", "student_b", "mobile"}
    for profile in profiles.values():
        ops = profile["ops"]
        assert abs(sum(r["share"] for r in ops.values()) - 1) < 1e-6
        assert {"Conv 7x7", "ConvTranspose", "Pad"} <= set(ops)
        assert 0 < profile["kernel_ms"] <= profile["run_ms"] * 1.05
    # executed MACs from the profiler's shapes, 32 x 32 px: the 7x7 stem (3 -> ngf) and head
    # (ngf -> 3) run with their output channels padded to ONNX Runtime's NCHWc block, which
    # depends on the CPU (8 with AVX2, 16 with AVX-512; 1: no padding): derive the block from
    # the teacher's figure and check that the same block explains the student's
    teacher, student = profiles["teacher"]["ops"], profiles["student_a"]["ops"]
    blocks = [b for b in (1, 4, 8, 16, 32) if teacher["Conv 7x7"]["macs"] == _conv7_macs(8, b)]
    assert len(blocks) == 1, teacher["Conv 7x7"]["macs"]
    assert student["Conv 7x7"]["macs"] == _conv7_macs(4, blocks[0])
    assert teacher["ConvTranspose"]["macs"] == 4 * student["ConvTranspose"]["macs"] > 0
    assert "Conv 3x3 depthwise" in profiles["mobile"]["ops"]


def test_latency_quick_reduced_precision_columns(tmp_path, capsys):
    """OpenVINO float32 beside ONNX Runtime, and the reduced-precision backends in their own
    columns with their PSNR against float32."""
    import pytest

    pytest.importorskip("openvino", reason="openvino not installed (pip install 'wkd_hf[deploy]')")
    spec = importlib.util.spec_from_file_location("latency", ROOT / "benchmarks" / "latency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "latency.json"
    module.main(["--quick", "--batch_sizes", "1", "--backends", "ort", "openvino", "--reduced",
                 "--calibration", str(tmp_path / "none"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert "reduced precision vs the model's float32 output" in printed
    result = json.loads(out.read_text())
    best = result["batch_1"]["best"]
    for name, row in best.items():
        assert row["backend"] in ("eager", "ort", "openvino")  # float32 column: float32 only
        assert row["reduced"]["backend"] in module.REDUCED
        assert row["reduced"]["speedup_vs_teacher_best_fp32"]["median"] > 0
    assert best["teacher"]["reduced"]["speedup_vs_teacher_best_reduced"]["median"] == 1.0
    for entries in result["quality"].values():
        assert set(entries) == set(module.REDUCED)
        assert all(25 < q["psnr_db"] < 100 for q in entries.values())
    assert isinstance(result["machine"]["isa"], list)
def _conv7_macs(ngf: int, block: int) -> int:
    """MACs of the 7x7 stem (3 -> ngf) and head (ngf -> 3) at 32 x 32 px, each output padded
    to a multiple of ``block`` channels."""
    pad = lambda channels: -(-channels // block) * block  # noqa: E731
    return 32 * 32 * 49 * (pad(ngf) * 3 + pad(3) * ngf)
