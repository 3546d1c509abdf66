"""Ctrl-C at a terminal sends SIGINT to the whole process group: under ``accelerate launch`` the
trainer gets it, and the launcher, stopping too, then sends the trainer SIGTERM. The run must
still end with exactly one line, saying Ctrl-C, and no traceback (real processes, real signals)."""

import os
import signal
import subprocess
import sys

import pytest

from test_processes import ENV, LAUNCH, STOPPED, _sigint_as_at_a_terminal, long_run, \
    wait_for_checkpoint

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals")


def test_ctrl_c_to_the_launchers_process_group_prints_one_line(tmp_path, photo_pairs,
                                                                pix2pix_teacher):
    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        launcher = subprocess.Popen([*LAUNCH, *long_run(pix2pix_teacher, photo_pairs, out)],
                                    env=ENV, stdout=subprocess.DEVNULL, stderr=stderr,
                                    start_new_session=True, preexec_fn=_sigint_as_at_a_terminal)
        try:
            wait_for_checkpoint(out, launcher)
            os.killpg(launcher.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            launcher.wait(timeout=60)
        finally:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
    err = log.read_text()
    stopped = [line for line in err.splitlines() if STOPPED.search(line)]
    assert len(stopped) == 1 and "(Ctrl-C)" in stopped[0], err[-3000:]
    for noise in ("Traceback", "Exception ignored", "KeyboardInterrupt", "signal SIGTERM"):
        assert noise not in err, err[-3000:]
