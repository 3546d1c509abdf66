"""One run per output folder, and a trainer that stops with its launcher.

- ``lock_output_dir``: ``<output_dir>/.wkd_hf.lock`` holds the owner's pid for the whole run (an
  ``flock``, which the kernel drops when the process dies). A second run on the folder stops with
  the owner's pid; a lock left by a dead run is taken over with a warning.
- ``stop_with_launcher``: under ``accelerate launch``, the trainer gets SIGTERM when the launcher
  dies (Linux ``PR_SET_PDEATHSIG``; elsewhere a thread watching the parent pid), and SIGTERM
  stops it like Ctrl-C (``KeyboardInterrupt``): a checkpoint being written is dropped, never
  left half-written. Stop signals after the first are ignored while the run stops.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

from accelerate.logging import get_logger

from .errors import WKDError

try:
    import fcntl
except ImportError:  # Windows: no lock
    fcntl = None

logger = get_logger(__name__)

LOCK_FILE = ".wkd_hf.lock"
PR_SET_PDEATHSIG = 1
_held: dict[Path, int] = {}  # lock path -> open file descriptor, for this process


def lock_output_dir(output_dir: str | os.PathLike) -> None:
    """Take ``output_dir`` for this process until :func:`release_output_dirs` (or exit).

    Raises WKDError naming the pid of a live run that holds it. Taking a folder this process
    already holds is a no-op (several runs one after the other in one Python process)."""
    path = Path(output_dir).resolve() / LOCK_FILE  # the lock itself is never resolved
    if fcntl is None or path in _held:
        return
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WKDError(f"{output_dir} is in use by another run (pid {owner}); two runs on one "
                           "--output_dir would delete each other's checkpoints. Wait for it to "
                           "end, stop it, or pick another --output_dir.") from None
        if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
            break  # not a file that its owner removed while we waited
        os.close(fd)
    stale = os.read(fd, 64).decode(errors="replace").strip()
    if stale:
        logger.warning(f"Taking over {path}: the run that held it (pid {stale}) is gone.")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[path] = fd
    atexit.register(release_output_dirs)


def _open_lock(path: Path) -> int:
    """Open (create) the lock file without following a link; anything but a regular file (a
    symlink, a FIFO, a folder) is refused, so the lock never empties or deletes another file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as error:
        kind = "a symbolic link" if path.is_symlink() else f"unusable ({error.strerror})"
        raise WKDError(f"{path} is {kind}; the run's lock file must be a regular file it "
                       "creates: remove it and run again.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise WKDError(f"{path} is not a regular file; the run's lock file must be one it "
                       "creates: remove it and run again.")
    return fd


def release_output_dirs() -> None:
    """Remove this process's lock files (at the end of the run)."""
    for path, fd in list(_held.items()):
        path.unlink(missing_ok=True)
        os.close(fd)
        del _held[path]


def stop_with_launcher() -> None:
    """SIGTERM stops the run like Ctrl-C; under ``accelerate launch`` (or torchrun) the trainer
    also gets SIGTERM when its launcher dies, so no orphan keeps training and writing."""
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not an inherited ignore
        signal.signal(signal.SIGINT, _interrupt)
    if not {"ACCELERATE_MIXED_PRECISION", "TORCHELASTIC_RUN_ID"} & os.environ.keys():
        return  # started by hand (maybe under nohup): the parent is a shell, not a launcher
    launcher = os.getppid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != launcher:  # it died before prctl
            os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


STOP_GRACE_S = 30.0  # after a stop signal, further ones are ignored this long (the clean-up)
_stop_signals: list[int] = []  # the stop signals this process got, in order
_stopping_since: list[float] = []  # monotonic time of the stop signal that raised


def _interrupt(signum, frame) -> None:
    """A stop signal raises ``KeyboardInterrupt``; more within ``STOP_GRACE_S`` are noted and
    ignored: the run is already stopping (Ctrl-C reaches the whole process group, and
    ``accelerate launch``, stopping too, then sends its trainer SIGTERM, which must not break the
    clean-up)."""
    _stop_signals.append(signum)
    if _stopping_since and time.monotonic() - _stopping_since[-1] < STOP_GRACE_S:
        return
    _stopping_since.append(time.monotonic())
    raise KeyboardInterrupt("" if signum == signal.SIGINT
                            else f"signal {signal.Signals(signum).name}")


def mark_stopping() -> None:
    """The run is ending on its own (an error on this rank or a peer's): stop signals from now on
    are noted and ignored for ``STOP_GRACE_S``, so the launcher's SIGTERM, sent once another rank
    exited, cannot interrupt the error line or the clean-up with a traceback."""
    _stopping_since.append(time.monotonic())


def stop_cause(interrupt: BaseException) -> KeyboardInterrupt:
    """What stopped the run, for its one line: Ctrl-C if SIGINT came at all (the launcher's
    SIGTERM follows a terminal's Ctrl-C, sometimes first), else ``interrupt``."""
    if signal.SIGINT in _stop_signals:
        return KeyboardInterrupt("")
    return interrupt if isinstance(interrupt, KeyboardInterrupt) else KeyboardInterrupt("")
