"""One process per study part: a second ``study.py`` (``--follow`` beside the first, say) skips a
part that another live process is running, so two processes never train the same runs.

The lock is an OS file lock (``fcntl.flock``) on ``<work_dir>/locks/<part>.lock``: it goes with
its process, so a killed run never leaves a stale lock behind. Without ``fcntl`` (Windows) there
is no lock: give each process its own parts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


@contextlib.contextmanager
def part_lock(folder: Path, part: str) -> Iterator[str | None]:
    """Hold ``part``'s lock for the ``with`` block: yields None when this process holds it, else
    the pid recorded by the process that does (the part must then be skipped)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{part.replace('/', '__')}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            yield handle.read().strip() or "?"
            return
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
