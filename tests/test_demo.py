"""`make demo` in its reduced mode: the real path end to end (data, accelerate launches, table)."""

import importlib.util
import sys

from PIL import Image

from conftest import ROOT
from wkd_hf.grid_labels import LABEL_HEIGHT
from wkd_hf.models import load_pretrained_model


def _demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "examples" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = demo  # its dataclasses look their module up there
    spec.loader.exec_module(demo)
    return demo


def test_quick_demo_runs_end_to_end(tmp_path, capsys):
    demo = _demo()
    rows = demo.main(["--quick", "--output_dir", str(tmp_path)])
    names = [row["network"] for row in rows]
    assert names == ["noisy input", "teacher", "WKD student", "no-KD student"]
    assert rows[2]["params"] == rows[3]["params"] < rows[1]["params"]
    assert all(row["latency_ms"] > 0 and row["psnr"] > 0 for row in rows[1:])
    # The do-nothing row: the noisy input against the clean target (sigma 0.15 -> ~17 dB).
    assert 15 < rows[0]["psnr"] < 20 and 0 < rows[0]["ssim"] < 1
    printed = capsys.readouterr().out
    table = printed[printed.index("network"):]
    assert f"noisy input{'-':>15}" in table and "WKD student" in table
    assert f"{rows[0]['psnr']:.2f}" in table.splitlines()[1]
    assert "Look at" in printed and str(tmp_path / "comparison.png") in printed
    # One row per grid crop (grid_rows_per_photo of each of the 2 test photos), 5 columns.
    side = demo.QUICK.test_resolution
    with Image.open(tmp_path / "comparison.png") as grid:
        assert grid.size == (5 * side + 4 * 2,
                             2 * demo.QUICK.grid_rows_per_photo * side + 2 + LABEL_HEIGHT)
    assert (tmp_path / "results.json").is_file()
    for folder in ("teacher", "student_wkd", "student_nokd"):
        assert (tmp_path / folder / "README.md").is_file()
        load_pretrained_model(str(tmp_path / folder))
    # it ends with the command that serves the student and teacher in a browser, which runs
    command = printed.rstrip().splitlines()[-1].split()
    assert command == ["wkd-space", "--model", str(tmp_path / "student_wkd"), "--teacher",
                       str(tmp_path / "teacher"), "--size_mode", "pad", "--launch"]
    from wkd_hf.cli.space import main as wkd_space

    assert wkd_space([*command[1:-1], "--output_dir", str(tmp_path / "space")]) == 0
    assert (tmp_path / "space" / "examples" / "example_0.png").is_file()  # validation images


def test_demo_sizes_fit_the_unet_and_the_time_budget():
    demo = _demo()
    for settings in (demo.DemoSettings(), demo.QUICK):
        multiple = 2**settings.num_downs  # the U-Net's input-size rule
        assert settings.resolution % multiple == 0 and settings.test_resolution % multiple == 0
    full = demo.DemoSettings()
    assert full.test_resolution >= 128 and full.test_resolution > full.resolution
    assert demo.QUICK.teacher_steps + 2 * demo.QUICK.student_steps <= 10  # a smoke test
