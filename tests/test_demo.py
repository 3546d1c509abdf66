"""`make demo` in its reduced mode: the real path end to end (data, accelerate launches, table)."""

import importlib.util
import sys

from conftest import ROOT
from wkd_hf.models import load_pretrained_model


def test_quick_demo_runs_end_to_end(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("demo", ROOT / "examples" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = demo  # its dataclasses look their module up there
    spec.loader.exec_module(demo)
    rows = demo.main(["--quick", "--output_dir", str(tmp_path)])
    names = [row["network"] for row in rows]
    assert names == ["input (bicubic)", "teacher", "WKD student", "no-KD student"]
    assert rows[2]["params"] == rows[3]["params"] < rows[1]["params"]
    assert all(row["latency_ms"] > 0 and row["psnr"] > 0 for row in rows[1:])
    printed = capsys.readouterr().out
    assert "WKD student" in printed and "comparison.png" in printed
    assert (tmp_path / "comparison.png").is_file() and (tmp_path / "results.json").is_file()
    for folder in ("teacher", "student_wkd", "student_nokd"):
        assert (tmp_path / folder / "README.md").is_file()
        load_pretrained_model(str(tmp_path / folder))
