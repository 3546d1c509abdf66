"""File operations that never follow a link or block on a FIFO for files the project owns, and
that never leave a half-written file (write beside, then rename)."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path

from .errors import WKDError


def refuse_link(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` unless it is a symbolic link (WKDError naming it): we never write through one."""
    path = Path(path)
    if path.is_symlink():
        raise WKDError(f"{path} is a symbolic link (to {os.readlink(path)}); refusing to write "
                       f"the {what} through it: remove the link or choose another folder.")
    return path


def is_regular_file(path: str | os.PathLike) -> bool:
    """True for a regular file, not following links (False for FIFOs, devices, links, dirs)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def check_regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is a regular file (links are followed); a FIFO, device or folder is a
    WKDError before anything opens it (opening a FIFO blocks)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise WKDError(f"cannot read the {what} {path}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise WKDError(f"{path} is not a regular file (the {what} must be one).")
    return path


def umask_mode(directory: bool = False) -> int:
    """The mode ``open`` / ``mkdir`` give a new file (0o666) or folder (0o777) under the process
    umask: ``mkstemp`` / ``mkdtemp`` make theirs 0o600 / 0o700, which would leave weights, cards
    and results unreadable to anyone else once renamed into place."""
    mask = os.umask(0o022)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def partial_folder_beside(target: Path) -> Path:
    """A new, empty folder ``.<name>.*.partial`` in ``target``'s folder (created if needed), with
    the mode ``mkdir`` would give it: what is written there is renamed to ``target`` when
    complete, on the same file system."""
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    os.chmod(folder, umask_mode(directory=True))  # mkdtemp's 0o700 would hide the folder
    return folder


@contextlib.contextmanager
def write_beside(path: str | os.PathLike, what: str = "file", replace_link: bool = False):
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path`` (a link at
    ``path`` is refused, or with ``replace_link`` replaced itself: never followed); on error it
    is removed and ``path`` is untouched."""
    path = Path(path) if replace_link else refuse_link(path, what)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                         dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    os.chmod(temporary, umask_mode())
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_beside(path: str | os.PathLike, text: str, what: str = "file") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`write_beside`)."""
    with write_beside(path, what) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def finite_or_null(value):
    """``value`` (nested dicts / lists) with NaN and infinite floats replaced by None, so that
    ``json.dumps(..., allow_nan=False)`` writes valid JSON (``NaN`` / ``Infinity`` are not)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def move_into(source: Path, target: Path) -> None:
    """Move the finished folder ``source`` to ``target``: renamed whole when ``target`` is new or
    empty, else entry by entry (an entry of the same name is replaced, a link there is replaced
    itself, never followed; ``target``'s other entries are kept). No file arrives half-written."""
    target = refuse_link(target, "folder")
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(source, target)
        return
    for entry in sorted(source.iterdir()):
        dest = target / entry.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.is_symlink():
            dest.unlink()
        os.replace(entry, dest)
