"""The accelerator as a diffusers user expects it: `accelerate launch --mixed_precision` is obeyed,
INFO logs reach the screen on the main process, and --cpu forces the CPU."""

import subprocess
import sys
import textwrap

from conftest import ROOT

PROBE = textwrap.dedent("""
    import logging, sys
    sys.path.insert(0, {root!r})
    from conftest import load_script
    from wkd_hf.training import build_accelerator
    args = load_script("distill").parse_args(sys.argv[1:])
    accelerator = build_accelerator(args)
    logging.getLogger("wkd_hf.probe").info("probe-info-line")
    print("mixed_precision=" + accelerator.mixed_precision, "device=" + str(accelerator.device))
""")


def _launch(tmp_path, launcher_flags, script_flags=()):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE.format(root=str(ROOT / "tests")))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
               *launcher_flags, str(probe), "--teacher_model_name_or_path", "t",
               "--train_data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"),
               "--report_to", "none", *script_flags]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_launcher_mixed_precision_is_obeyed_and_info_logs_reach_the_screen(tmp_path):
    result = _launch(tmp_path, ["--mixed_precision", "bf16"])  # the script's default defers
    assert "mixed_precision=bf16" in result.stdout
    assert "probe-info-line" in result.stderr


def test_explicit_flags_win_over_the_launcher(tmp_path):
    result = _launch(tmp_path, ["--mixed_precision", "bf16"], ["--mixed_precision", "no", "--cpu"])
    assert "mixed_precision=no" in result.stdout and "device=cpu" in result.stdout
