"""The example scripts end a failure with one `error:` line, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script, argv", [
    ("translate_folder.py", ["--model", "{missing}", "--input", "{missing}", "--output", "{out}"]),
    ("compare_teacher_student.py", ["--teacher", "t", "--student", "s", "--image", "{missing}"]),
    ("export_onnx.py", ["--model", "{missing}"]),
])
def test_an_example_fails_with_one_error_line(tmp_path, script, argv):
    argv = [a.format(missing=tmp_path / "missing", out=tmp_path / "out") for a in argv]
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent), "HF_HUB_OFFLINE": "1"}
    env.pop("WKD_HF_TRACEBACK", None)
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *argv], env=env,
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[-1].startswith(f"{script}: error: ") and "missing" in lines[-1]
