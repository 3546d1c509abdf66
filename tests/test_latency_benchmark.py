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
