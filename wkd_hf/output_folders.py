"""What may be written where: a run never replaces its teacher or a finished model unasked, a
converted model goes into a new folder as one unit, and a final export is marked incomplete until
its last file (``args.json``) is written, so a killed export is never taken for a model."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .errors import WKDError
from .names import ARGS_FILE, CARD_FILE, WKD_CONFIG_NAME
from .safe_files import partial_folder_beside

INCOMPLETE_MARKER = ".wkd_hf.export_incomplete"
EXPORT_METADATA = (ARGS_FILE, CARD_FILE, WKD_CONFIG_NAME)
MODEL_FILES = ("config.json", "diffusion_pytorch_model.safetensors", "best_metric.json")


def finished_model_files(folder: str | os.PathLike) -> list[str]:
    """The exported-model files in ``folder`` (root or one level down, checkpoints aside)."""
    folder = Path(folder)
    found = [name for name in ("config.json", ARGS_FILE) if (folder / name).is_file()]
    if folder.is_dir():
        found += sorted(f"{p.parent.name}/{p.name}" for p in folder.glob("*/config.json")
                        if not p.parent.name.startswith("checkpoint-"))
    return found


def check_new_run_output(output_dir: str | os.PathLike, teacher: str | None,
                         overwrite: bool) -> None:
    """Refuse ``--output_dir`` equal to the teacher's folder (always: the run would replace the
    teacher it learns from), or holding a finished model (unless ``--overwrite_output_dir``)."""
    out = Path(output_dir).resolve()
    if teacher and os.path.isdir(teacher) and Path(teacher).resolve() == out:
        raise WKDError(f"--output_dir {output_dir} is the teacher's folder: the run would "
                       "replace the teacher it learns from. Choose another --output_dir.")
    found = finished_model_files(out)
    if found and not overwrite:
        raise WKDError(f"--output_dir {output_dir} holds a finished model ({', '.join(found)}); "
                       "a new run would replace it at export. Choose another --output_dir, or "
                       "pass --overwrite_output_dir to replace it.")


def begin_export(out: Path) -> None:
    """Mark ``out`` incomplete and drop the previous export's metadata, so a kill during the
    export leaves no card or ``args.json`` describing other weights."""
    out.mkdir(parents=True, exist_ok=True)
    (out / INCOMPLETE_MARKER).write_text("the final export of this folder did not finish\n")
    for name in EXPORT_METADATA:
        path = out / name
        if path.is_symlink() or path.is_file():
            path.unlink()
    drop_links(out)


def drop_links(folder: Path) -> None:
    """Remove links where ``save_pretrained`` will write (``folder`` and its subfolders, the
    checkpoints aside): it opens its files for writing and would follow them."""
    for sub in [folder, *(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()
                          and not p.name.startswith("checkpoint-"))]:
        for name in MODEL_FILES:
            if (sub / name).is_symlink():
                (sub / name).unlink()


def end_export(out: Path) -> None:
    (out / INCOMPLETE_MARKER).unlink(missing_ok=True)


def check_export_complete(folder: str | os.PathLike) -> None:
    """WKDError when ``folder`` (or its parent, for a subfolder) holds an unfinished export."""
    folder = Path(folder)
    for candidate in (folder, folder.parent):
        if (candidate / INCOMPLETE_MARKER).is_file():
            raise WKDError(f"{candidate} holds an unfinished export (the run was stopped while "
                           "writing its final model): resume the run with "
                           "--resume_from_checkpoint latest to write it again.")


def check_new_folder(folder: str | os.PathLike) -> Path:
    """``folder`` if it does not exist or is an empty folder (else WKDError)."""
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and (not folder.is_dir() or any(folder.iterdir()))):
        raise WKDError(f"{folder} already exists and is not an empty folder; choose a new "
                       "--output_dir (files of an earlier model would be mixed with the new one).")
    return folder


def write_new_folder(folder: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """``write(temporary)`` into a new folder beside ``folder``, then rename it to ``folder``,
    which must not exist or be empty (a model folder is never overwritten file by file)."""
    folder = check_new_folder(folder)
    temporary = partial_folder_beside(folder)
    try:
        write(temporary)
        os.replace(temporary, folder)  # also over an empty folder
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return folder
