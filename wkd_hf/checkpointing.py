"""Checkpoints that resume exactly and load safely.

``checkpoint-N/`` holds accelerate's ``save_state`` files (models as safetensors; optimizers and
RNG states as torch pickles) and our own state, which we write as JSON and safetensors:
``training_state.json`` (loop position, LR schedulers, image pool sizes),
``image_pools_<rank>.safetensors`` (CycleGAN's image pools) and ``args.json`` (the run's
arguments, without the token). A checkpoint is written under ``.checkpoint-N.tmp`` and renamed
when complete, so a run killed (or out of disk) mid-save never leaves a ``checkpoint-N`` that
does not load.

Resuming checks the checkpoint before anything reads it: every file that is not JSON or
safetensors must load with ``torch.load(weights_only=True)`` (a pickle carrying code is refused,
naming the file, and its code never runs), and the run's settings must match the current ones.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
import re
import shutil
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from safetensors.torch import load_file, save_file

from .errors import WKDError
from .names import ARGS_FILE, STATE_FILE
from .run_record import public_args, run_settings, save_args
from .safe_files import is_regular_file

logger = get_logger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
SAFE_SUFFIXES = (".json", ".safetensors")  # formats that cannot carry code


@dataclass
class LoopState:
    """Where the loop is; saved in ``training_state.json`` so a resumed run continues exactly."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    skipped_nan_steps: int = 0

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state: Mapping) -> None:
        self.__dict__.update(state)


# ----------------------------------------------------------------------------- finding them
def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete ``checkpoint-N`` folders in ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found)]


def checkpoint_step(path: str | os.PathLike) -> int:
    match = CHECKPOINT_PATTERN.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a checkpoint folder (expected a name like checkpoint-500).")
    return int(match.group(1))


def resolve_resume_checkpoint(output_dir: str, resume_from: str | None) -> Path | None:
    """``latest`` -> the newest complete checkpoint (None when there is none), a path -> itself.

    Resuming from an older checkpoint while ``output_dir`` holds newer ones is refused: pruning
    keeps the highest steps, so the new run's checkpoints would be deleted and ``latest`` would
    point back at the old run.
    """
    if not resume_from:
        return None
    if resume_from == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            logger.warning(f"--resume_from_checkpoint latest: no checkpoint in {output_dir}; "
                           "starting a new run.", main_process_only=True)
            return None
        return checkpoints[-1]
    path = Path(resume_from)
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {resume_from}: no such folder. Pass "
                                "'latest' or a checkpoint-N folder written by this script.")
    step = checkpoint_step(path)
    newer = [c.name for c in list_checkpoints(output_dir) if checkpoint_step(c) > step]
    if newer:
        raise WKDError(
            f"--resume_from_checkpoint {resume_from}: {output_dir} also holds newer checkpoints "
            f"({', '.join(newer)}), which this run would prune, and 'latest' would point back "
            f"at them. Move them out of {output_dir} (e.g. into {output_dir}/set-aside/) first.")
    return path


# ----------------------------------------------------------------------------- several machines
def writes_checkpoints(accelerator: Accelerator) -> bool:
    """Whether this process writes, renames and prunes checkpoint folders: the main process, or
    with ``save_on_each_node`` (machines without a shared disk) the main process of each
    machine, as accelerate's ``save_state`` then writes the weights on each machine."""
    if accelerator.project_configuration.save_on_each_node:
        return accelerator.is_local_main_process
    return accelerator.is_main_process


def agreed_resume_checkpoint(accelerator: Accelerator, output_dir: str,
                             resume_from: str | None) -> Path | None:
    """:func:`resolve_resume_checkpoint` on the main process, the same checkpoint on every rank.

    Every rank must load the checkpoint the main process picked: a machine that would resolve
    ``latest`` on its own disk to nothing (no shared ``--output_dir``) would otherwise keep fresh
    weights and diverge silently. A rank that does not see it stops with one clear error.
    """
    from accelerate.utils import broadcast_object_list

    path = None
    if accelerator.is_main_process:
        path = resolve_resume_checkpoint(output_dir, resume_from)
    if accelerator.num_processes == 1:
        return path
    chosen = broadcast_object_list([None if path is None else str(path)])[0]
    if chosen is None:
        return None
    local = Path(output_dir) / Path(chosen).name if resume_from == "latest" else Path(chosen)
    if not local.is_dir():
        raise WKDError(f"process {accelerator.process_index} has no {local} to resume from (the "
                       "main process resumes from it). On several machines, give them a shared "
                       "--output_dir, or pass --save_on_each_node so that each machine keeps "
                       "its own copy of every checkpoint.")
    return local


# ----------------------------------------------------------------------------- writing
def save_checkpoint(accelerator: Accelerator, output_dir: str, step: int,
                    total_limit: int | None = None) -> Path:
    """``accelerator.save_state`` into ``.checkpoint-N.tmp``, then an atomic rename to
    ``checkpoint-N``; keeps at most ``total_limit`` checkpoints (None or 0: all). Every rank must
    call it. A failed or interrupted save removes the temporary folder and keeps the others."""
    final = Path(output_dir) / f"checkpoint-{step}"
    temporary = Path(output_dir) / f".checkpoint-{step}.tmp"
    writer = writes_checkpoints(accelerator)
    if writer and temporary.exists():
        shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(temporary))
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, Exception) and is_disk_full(error):
            kept = [c.name for c in list_checkpoints(output_dir)]
            raise WKDError(f"no space left on device while writing {final}; the partial folder "
                           f"was removed and the previous checkpoints ({', '.join(kept) or 'none'})"
                           " are kept. Free some space and resume with "
                           "--resume_from_checkpoint latest.") from error
        raise
    accelerator.wait_for_everyone()
    if writer:
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        if total_limit:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old)
        logger.info(f"Saved {final}")
    accelerator.wait_for_everyone()
    return final


def save_run_state(folder: str | os.PathLike, accelerator: Accelerator, state: LoopState,
                   schedulers: list, pools: Mapping, args) -> None:
    """Write our part of a checkpoint into ``folder`` (a ``save_state`` pre-hook: every rank
    writes its image pools, the main process the JSON files; with ``--save_on_each_node`` the
    main process of each machine)."""
    folder = Path(folder)
    pool_states = {name: pool.state_dict() for name, pool in pools.items()}
    if pool_states:
        images = {name: torch.cat(pool["images"]).contiguous()
                  for name, pool in pool_states.items() if pool["images"]}
        images.update({f"{name}.rng_state": pool["rng_state"]
                       for name, pool in pool_states.items() if "rng_state" in pool})
        save_file(images, folder / f"image_pools_{accelerator.process_index}.safetensors")
    if writes_checkpoints(accelerator):
        saved = {"loop": state.state_dict(),
                 "schedulers": [scheduler.state_dict() for scheduler in schedulers],
                 "pool_sizes": {name: pool["pool_size"] for name, pool in pool_states.items()}}
        (folder / STATE_FILE).write_text(json.dumps(saved, indent=2))
        save_args(args, str(folder))


# ----------------------------------------------------------------------------- reading
def check_resumable(folder: str | os.PathLike, args) -> None:
    """Everything resuming needs to know before accelerate opens a file of ``folder``: that it
    holds no pickle carrying code, that it has our state, and that its settings are ours."""
    folder = Path(folder)
    verify_weights_only(folder)
    for name in (STATE_FILE, ARGS_FILE):
        if not (folder / name).is_file():
            raise WKDError(f"{folder} has no {name}: it was not written by this version of "
                           "wkd_hf (or is damaged), so it cannot be resumed.")
    state = read_json_object(folder / STATE_FILE)
    if not isinstance(state.get("loop"), dict) or not isinstance(state.get("schedulers"), list):
        raise WKDError(f"{folder / STATE_FILE} lacks its 'loop' or 'schedulers' entries (edited "
                       "or damaged); resume from another checkpoint.")
    saved = run_settings(read_json_object(folder / ARGS_FILE))
    now = run_settings(json.loads(json.dumps(public_args(args), default=str)))
    differing = [f"--{key} {saved[key]} (now {now[key]})"
                 for key in sorted(saved.keys() & now.keys()) if saved[key] != now[key]
                 and not (key == "mixed_precision" and saved[key] is None)]  # older: unrecorded
    if differing:
        raise WKDError(f"{folder} was trained with other settings: {', '.join(differing)}. "
                       "Resume with the same settings, or start a new --output_dir.")


def read_json_object(path: Path) -> dict:
    """A checkpoint's JSON file as a dict; WKDError naming the file otherwise."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise WKDError(f"{path} is not valid JSON ({error}); resume from another "
                       "checkpoint.") from None
    if not isinstance(value, dict):
        raise WKDError(f"{path} holds a JSON {type(value).__name__}, not an object (edited or "
                       "damaged); resume from another checkpoint.")
    return value


def verify_weights_only(folder: Path) -> None:
    """Load every file of ``folder`` that is not JSON or safetensors with
    ``torch.load(weights_only=True)``; a file that needs more (code) is refused, never run.
    Anything but folders and regular files (a FIFO would block the resume, a link could point
    anywhere) is refused before it is opened."""
    for path in sorted(folder.rglob("*")):
        if not path.is_symlink() and path.is_dir():
            continue
        if not is_regular_file(path):
            raise WKDError(f"refusing to resume from {folder}: {path.relative_to(folder)} is not "
                           "a regular file (a link, FIFO or device); checkpoints hold plain "
                           "files only.")
        if path.suffix in SAFE_SUFFIXES:
            continue
        try:
            torch.serialization.add_safe_globals(_rng_state_globals())  # plain data types
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            lines = [line for line in str(error).splitlines() if line.strip()] or [repr(error)]
            detail = next((line for line in lines if "GLOBAL" in line), lines[0])
            raise WKDError(f"refusing to resume from {folder}: {path.name} is not a plain "
                           f"tensor/number file and was not loaded ({detail.strip()}). Only "
                           "resume from checkpoints you wrote yourself.") from None


def _rng_state_globals() -> list:
    """What accelerate's ``random_states_*.pkl`` (numpy's RNG state) needs: arrays, dtypes."""
    core = np._core if hasattr(np, "_core") else np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType,
            codecs.encode]


def load_run_state(folder: str | os.PathLike, accelerator: Accelerator, state: LoopState,
                   schedulers: list, pools: Mapping) -> None:
    """Read back what :func:`save_run_state` wrote (after :func:`check_resumable`)."""
    folder = Path(folder)
    saved = json.loads((folder / STATE_FILE).read_text())
    state.load_state_dict(saved["loop"])
    if len(saved["schedulers"]) != len(schedulers):
        raise WKDError(f"{folder} holds {len(saved['schedulers'])} LR schedulers, this run "
                       f"has {len(schedulers)}.")
    for scheduler, scheduler_state in zip(schedulers, saved["schedulers"]):
        scheduler.load_state_dict(scheduler_state)
    if not pools:
        return
    path = folder / f"image_pools_{accelerator.process_index}.safetensors"
    if not path.is_file():  # resumed on more processes than it was saved with
        path = folder / "image_pools_0.safetensors"
    images = load_file(path)  # on the CPU (safetensors refuses "cpu:0"); pools follow the batch
    for name, pool in pools.items():
        stacked = images.get(name)
        pool.load_state_dict({"pool_size": saved["pool_sizes"][name],
                              "images": list(stacked.split(1)) if stacked is not None else [],
                              "rng_state": images.get(f"{name}.rng_state")})


# ----------------------------------------------------------------------------- full disks
DISK_FULL_SIGNS = ("No space left on device", "os error 28", "StorageFull",
                   "PytorchStreamWriter failed writing", "file write failed")


def is_disk_full(error: BaseException) -> bool:
    """ENOSPC, as an OSError, torch's ``inline_container.cc`` RuntimeError or a SafetensorError."""
    return getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or any(
        sign in str(error) for sign in DISK_FULL_SIGNS)


@contextmanager
def disk_full_as_error(what: str, advice: str = ""):
    """Turn a full-disk error inside the block into one line naming ``what`` was being written."""
    try:
        yield
    except Exception as error:
        if not is_disk_full(error):
            raise
        raise WKDError(f"no space left on device while writing {what}.{advice}") from error
