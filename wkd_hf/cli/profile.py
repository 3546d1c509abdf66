"""``wkd-profile``: params, MACs and interleaved latency of models, or the candidate students of
a teacher (``--suggest``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..budget import candidate_students
from ..conversion import convert_pix2pix_checkpoint
from ..metrics.efficiency import (
    EfficiencyProfile,
    bigger_than_reference_note,
    compression_ratios,
    format_profiles,
    profile_models,
    ratio_legend,
    spread_warning,
)
from ..models import load_pretrained_model
from ..models.building import build_student
from ..safe_files import write_text_beside
from . import fail, guarded, parse_device

PROG = "wkd-profile"


def _count(minimum: int):
    """argparse type: an int >= ``minimum`` (a bad value is one ``error:`` line, no traceback)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="Params, MACs and latency of models. --model is the reference: every ratio "
                    "(params x, MACs x, speed-up) is reference / model, so with the teacher as "
                    "--model and students as --compare the teacher shows 1.00x and students > 1. "
                    "Latency: every model is warmed up, then each of --repeats rounds times every "
                    "model once (order rotated per round), so load hits all alike; reported as "
                    "median [p10, p90], speed-up = reference median / model median [p10, p90 of "
                    "the per-round ratios].",
        epilog="example: wkd-profile --model teacher_dir --compare student_dir --resolution 256 "
               "--num_threads 2")
    p.add_argument("--model", required=True,
                   help="The reference (e.g. the teacher): folder or Hub id of a save_pretrained "
                        "model, or a pix2pix / CycleGAN / GAN Compression checkpoint file (.pth, "
                        ".safetensors). Its ratios are 1.00.")
    p.add_argument("--subfolder", default=None, help="Subfolder inside --model and --compare.")
    p.add_argument("--compare", nargs="*", default=[],
                   help="More models (e.g. students), compared with --model: ratio = --model / "
                        "this model (> 1: smaller or faster than the reference).")
    p.add_argument("--resolution", type=_count(1), default=256, help="Square input size (px).")
    p.add_argument("--batch_size", type=_count(1), default=1, help="Images per timed forward.")
    p.add_argument("--num_threads", type=_count(1), default=None,
                   help="torch intra-op threads while timing (default: torch's current setting, "
                        "torch.get_num_threads(); the count used is printed).")
    p.add_argument("--repeats", type=_count(1), default=20,
                   help="Timed rounds; each round times every model once. More rounds narrow "
                        "the range on a busy machine.")
    p.add_argument("--warmup", type=_count(0), default=3,
                   help="Untimed forward passes of every model before the rounds.")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--no_latency", action="store_true", help="Only params and MACs.")
    p.add_argument("--suggest", action="store_true",
                   help="Treat --model as a teacher (the reference) and list candidate students "
                        "(ResNet and mobile ngf 8-48, or U-Nets) with params, MACs and measured "
                        "latency.")
    p.add_argument("--json", default=None, help="Also write the profiles to this JSON file.")
    return p.parse_args(argv)


def _fail(message: str) -> None:
    fail(PROG, message)


def _check_device(device: str) -> None:
    """``--device`` must parse and exist on this machine."""
    try:
        parse_device(device)
    except ValueError as err:
        _fail(str(err))


def _check_json_path(path: str) -> None:
    """Create ``--json``'s folder and check the file can be written, before any profiling."""
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
        _fail(f"--json {path} is a link or not a regular file; give a new file name")
    existed = os.path.exists(path)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as err:
        where = f" ({err.filename})" if err.filename and err.filename != path else ""
        _fail(f"cannot write --json {path}: {err.strerror or err}{where}")
    if not existed:
        os.remove(path)


def _load(name: str, subfolder: str | None) -> nn.Module:
    """Load a saved model, or convert a checkpoint file; a failure exits with a one-line message,
    no traceback."""
    try:
        if os.path.isfile(name):
            return convert_pix2pix_checkpoint(name)
        return load_pretrained_model(name, subfolder=subfolder)
    except Exception as err:  # noqa: BLE001 - any loading failure becomes a CLI error
        where = repr(name) + (f" (subfolder {subfolder!r})" if subfolder else "")
        _fail(f"could not load model {where}: {type(err).__name__}: {err}")


def _unique(names: Sequence[str]) -> list[str]:
    """``names`` with repeats suffixed ``#2``, ``#3``... (the same model may be listed twice)."""
    out: list[str] = []
    for name in names:
        label, n = name, 1
        while label in out:
            n += 1
            label = f"{name}#{n}"
        out.append(label)
    return out


def _loaded_models(names: Sequence[str], args: argparse.Namespace) -> dict[str, nn.Module]:
    """Name -> model on ``--device``, in order; a resolution a model cannot take exits cleanly."""
    models = {}
    for label, name in zip(_unique(names), names):
        model = _load(name, args.subfolder)
        check = getattr(model, "check_input_size", None)
        if callable(check):
            try:
                check(args.resolution, args.resolution)
            except ValueError as err:
                _fail(f"--resolution {args.resolution} does not fit {name}: {err}")
        models[label] = model.to(args.device)
    return models


def _suggested_models(args: argparse.Namespace) -> dict[str, nn.Module]:
    """The teacher (--model) then the candidate students of ``wkd_hf.budget`` (fresh weights)."""
    teacher = _loaded_models([args.model], args)[args.model]
    models = {"teacher": teacher}
    try:
        for label, ngf, kind in candidate_students(teacher, args.resolution):
            models[label] = build_student(teacher, ngf, kind).to(args.device)
    except ValueError as err:
        _fail(f"--suggest for {args.model}: {err}")
    return models


def _report(profiles: list[EfficiencyProfile], args: argparse.Namespace) -> dict:
    """The JSON report: settings, profiles, ratios vs the reference and the spread warning."""
    latency = profiles[0].latency
    return {
        "reference": profiles[0].name,
        "speedup_definition": "reference median latency / model median latency; speedup_p10 / "
                              "speedup_p90: p10 / p90 of the per-round ratios",
        "num_threads": latency.num_threads if latency else None,
        "rounds": None if args.no_latency else args.repeats,
        "warmup": None if args.no_latency else args.warmup,
        "order": None if args.no_latency else "interleaved, rotated each round",
        "warning": spread_warning(profiles),
        "profiles": [p.to_dict() for p in profiles],
        "ratios_vs_reference": [compression_ratios(profiles[0], p) for p in profiles],
    }


def _header(profiles: list[EfficiencyProfile], args: argparse.Namespace) -> str:
    line = f"resolution {args.resolution}x{args.resolution}, device {args.device}"
    latency = profiles[0].latency
    if latency is None:
        return line + ", batch 1"
    return (line + f", batch {args.batch_size}, torch threads {latency.num_threads} "
            f"(torch.get_num_threads; set with --num_threads), {args.repeats} interleaved rounds "
            f"after {args.warmup} warm-up")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wkd-profile`` console script; prints a table, optionally writes JSON.
    Bad arguments, devices, output paths, models or resolutions exit with one ``error:`` line."""
    args = _parse_args(argv)
    return guarded(PROG, lambda: _profile(args))


def _profile(args: argparse.Namespace) -> int:
    _check_device(args.device)
    if args.json:
        _check_json_path(args.json)
    models = _suggested_models(args) if args.suggest else \
        _loaded_models([args.model, *args.compare], args)
    timing = {"num_threads": args.num_threads, "warmup": args.warmup, "repeats": args.repeats,
              "batch_size": args.batch_size, "device": args.device}
    try:
        if args.no_latency:
            profiles = profile_models(models, args.resolution, latency=False)
        else:
            profiles = profile_models(models, args.resolution, **timing)
    except (MemoryError, RuntimeError) as err:  # torch.OutOfMemoryError is a RuntimeError
        message = str(err)
        if not isinstance(err, (MemoryError, torch.OutOfMemoryError)) and \
                "alloc" not in message.lower():
            raise
        first = (message.strip().splitlines() or [type(err).__name__])[0][:200]
        _fail(f"--resolution {args.resolution} needs more memory than {args.device} has "
              f"({first}); use a smaller --resolution or --batch_size")
    report = _report(profiles, args)
    print(_header(profiles, args))
    print(format_profiles(profiles))
    for line in (ratio_legend(profiles), bigger_than_reference_note(profiles), report["warning"]):
        if line:
            print(line)
    if args.json:
        write_text_beside(args.json, json.dumps(report, indent=2), "--json report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
