"""Students sized to a compute budget: the widest student of a teacher's family whose MACs fit.

    from wkd_hf.budget import pick_student

    choice = pick_student(teacher, macs_budget="3.5G", resolution=256)     # or speedup=10
    student = choice.build()          # ResnetGenerator(ngf=choice.ngf, ...), freshly initialised
    print(choice.summary())

MACs are ``wkd_hf.metrics.efficiency.count_macs`` (FlopCounterMode / 2), counted on the ``meta``
device (no memory, no compute), so a search over every width takes well under a second per
candidate family. MACs grow monotonically with the width, so the widest fitting width is found by
bisection.
"""

from __future__ import annotations

import dataclasses
import re

import torch
from torch import nn

from .metrics.efficiency import count_macs, count_parameters, profile_model
from .models import UnetGenerator
from .models.building import build_student

BLOCK_CHOICES = ("resnet", "mobile", "auto")
_SUFFIXES = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def parse_macs(value: str | float | int) -> int:
    """``"3.5G"`` / ``"800M"`` / ``"3.5e9"`` / ``3_500_000_000`` -> MACs as an int (> 0)."""
    if isinstance(value, bool):
        raise ValueError(f"a MACs budget must be a number such as 3.5G; got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)"
                             r"(?:MACs?|macs?)?\s*", str(value))
        if not match:
            raise ValueError(f"a MACs budget must look like 3.5G, 800M or 3.5e9; got {value!r}")
        number = float(match.group(1)) * _SUFFIXES[match.group(2).upper()]
    if not number > 0 or number != number or number == float("inf"):
        raise ValueError(f"a MACs budget must be > 0; got {value!r}")
    return int(number)


def _macs_text(macs: float) -> str:
    """``3.5e9`` -> ``"3.5G"``, ``8e8`` -> ``"800M"``, ``3.5`` -> ``"3.5"``."""
    for suffix in ("T", "G", "M", "K"):
        if macs >= _SUFFIXES[suffix]:
            return f"{macs / _SUFFIXES[suffix]:.3g}{suffix}"
    return f"{macs:.3g}"


@dataclasses.dataclass
class StudentChoice:
    """The picked student: its width and block type, its MACs and parameters, and the budget."""

    ngf: int
    block_type: str | None  # None for U-Nets
    n_blocks: int | None
    macs: int
    params: int
    teacher_macs: int
    teacher_params: int
    macs_budget: int
    resolution: int
    requested: str  # what was asked: "macs_budget=3.5G" or "speedup=10"
    teacher: nn.Module | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def macs_ratio(self) -> float:
        return self.teacher_macs / self.macs

    @property
    def params_ratio(self) -> float:
        return self.teacher_params / self.params

    def build(self) -> nn.Module:
        """A freshly initialised student (``wkd_hf.recipes.build_student``)."""
        if self.teacher is None:
            raise ValueError("this StudentChoice has no teacher to build from")
        return build_student(self.teacher, self.ngf, self.block_type, self.n_blocks)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "teacher"}
        d.update(macs_ratio=round(self.macs_ratio, 3), params_ratio=round(self.params_ratio, 3))
        return d

    def summary(self) -> str:
        kind = f"{self.block_type} " if self.block_type else ""
        return (f"student {kind}ngf {self.ngf}: {self.macs / 1e9:.2f}G MACs at "
                f"{self.resolution}px ({self.macs_ratio:.2f}x fewer than the teacher's "
                f"{self.teacher_macs / 1e9:.2f}G; budget {self.macs_budget / 1e9:.2f}G from "
                f"{self.requested}), {self.params / 1e6:.3f}M params "
                f"({self.params_ratio:.2f}x fewer)")


def _count(model_fn, resolution: int) -> tuple[int, int]:
    """(MACs per image, params) of the model ``model_fn()`` builds, on the meta device."""
    with torch.device("meta"):
        model = model_fn()
    return count_macs(model, resolution), count_parameters(model)


def student_macs(teacher: nn.Module, ngf: int, block_type: str | None = None,
                 n_blocks: int | None = None, resolution: int = 256) -> tuple[int, int]:
    """(MACs, params) of ``build_student(teacher, ngf, block_type, n_blocks)`` at ``resolution``."""
    return _count(lambda: build_student(teacher, ngf, block_type, n_blocks), resolution)


def _block_types(teacher: nn.Module, block_type: str | None) -> list[str | None]:
    if block_type not in (None, *BLOCK_CHOICES):
        raise ValueError(f"block_type must be one of {BLOCK_CHOICES} or None; got {block_type!r}")
    if isinstance(teacher, UnetGenerator):
        if block_type not in (None, "resnet", "auto"):
            raise ValueError(f"--student_block_type {block_type} applies to ResNet teachers only; "
                             "this teacher is a U-Net (leave --student_block_type out)")
        return [None]
    if block_type == "auto":
        return ["resnet", "mobile"]
    return [block_type or "resnet"]


def pick_student(teacher: nn.Module, macs_budget: str | float | int | None = None,
                 speedup: float | None = None, resolution: int = 256,
                 block_type: str | None = None, n_blocks: int | None = None,
                 max_ngf: int | None = None, ngf_step: int = 1) -> StudentChoice:
    """The widest student of ``teacher``'s family whose MACs at ``resolution`` fit the budget.

    Args:
        teacher: a wkd_hf generator (ResNet, GAN Compression's SubMobileResNet, U-Net).
        macs_budget: MACs per image (``"3.5G"``, ``"800M"``, ``3.5e9``). Exactly one of
            ``macs_budget`` and ``speedup`` is required.
        speedup: MACs reduction wanted: budget = teacher MACs / speedup (> 1).
        resolution: input side used for counting (MACs scale with height x width).
        block_type: ResNet students: ``"resnet"`` (default), ``"mobile"`` or ``"auto"`` (both are
            sized; the one whose MACs come closest to the budget wins, ``"resnet"`` on a tie).
        n_blocks: ResNet students' residual blocks (default: the teacher's).
        max_ngf: widest width considered (default: the teacher's ``ngf``, or 4x it for mobile
            students, whose blocks cost ~1/8 of a ResNet block's).
        ngf_step: only widths that are multiples of this (e.g. 8 for SIMD-friendly widths).

    Raises:
        ValueError: no width fits (the budget is below the narrowest student's MACs), or bad
        arguments.
    """
    if (macs_budget is None) == (speedup is None):
        raise ValueError("pass exactly one of macs_budget (e.g. '3.5G') and speedup (e.g. 10)")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive int; got {resolution!r}")
    if isinstance(ngf_step, bool) or not isinstance(ngf_step, int) or ngf_step < 1:
        raise ValueError(f"ngf_step must be a positive int; got {ngf_step!r}")
    check = getattr(teacher, "check_input_size", None)
    if callable(check):
        check(resolution, resolution)
    config = teacher.config
    teacher_macs, teacher_params = _count(lambda: type(teacher).from_config(config), resolution)
    if speedup is not None:
        if isinstance(speedup, bool) or not isinstance(speedup, (int, float)) or not speedup > 1:
            raise ValueError(f"speedup must be a number > 1; got {speedup!r}")
        budget, requested = int(teacher_macs / speedup), f"speedup={speedup:g}"
    else:
        budget, requested = parse_macs(macs_budget), f"macs_budget={macs_budget}"
    teacher_ngf = int(getattr(config, "ngf", 0) or max(getattr(config, "channels", [64])))

    best: StudentChoice | None = None
    for kind in _block_types(teacher, block_type):
        ceiling = max_ngf or teacher_ngf * (4 if kind == "mobile" else 1)
        widths = list(range(ngf_step, ceiling + 1, ngf_step))
        if not widths:
            continue

        def cost(ngf: int, kind=kind) -> tuple[int, int]:
            return student_macs(teacher, ngf, kind, n_blocks, resolution)

        if cost(widths[0])[0] > budget:
            continue
        low, high = 0, len(widths) - 1  # widths[low] fits; find the last that fits
        while low < high:
            mid = (low + high + 1) // 2
            if cost(widths[mid])[0] <= budget:
                low = mid
            else:
                high = mid - 1
        macs, params = cost(widths[low])
        candidate = StudentChoice(
            ngf=widths[low], block_type=kind,
            n_blocks=(n_blocks or getattr(config, "n_blocks", None)) if kind else None,
            macs=macs, params=params, teacher_macs=teacher_macs, teacher_params=teacher_params,
            macs_budget=budget, resolution=resolution, requested=requested, teacher=teacher)
        if best is None or candidate.macs > best.macs:
            best = candidate
    if best is None:
        narrowest = min(student_macs(teacher, ngf_step, kind, n_blocks, resolution)[0]
                        for kind in _block_types(teacher, block_type))
        unit = (f"; a number without a unit counts MACs: did you mean {macs_budget}G?"
                if macs_budget is not None and budget < 1e6 else "")  # a forgotten unit
        raise ValueError(
            f"no student fits a budget of {_macs_text(budget)} MACs ({requested}) at "
            f"{resolution}px: the narrowest (ngf {ngf_step}) needs {_macs_text(narrowest)}; "
            f"raise the budget, lower the speed-up, or use fewer blocks{unit}")
    return best


def candidate_students(teacher: nn.Module, resolution: int = 256,
                       widths: tuple[int, ...] = (8, 16, 24, 32, 48),
                       block_types: tuple[str, ...] = ("resnet", "mobile")
                       ) -> list[tuple[str, int, str | None]]:
    """(label, ngf, block_type) of the usual student sizes narrower than the teacher, for
    ``wkd-profile --suggest``."""
    teacher_ngf = int(getattr(teacher.config, "ngf", 0) or 64)
    kinds: tuple[str | None, ...] = (None,) if isinstance(teacher, UnetGenerator) else block_types
    out = []
    for kind in kinds:
        for ngf in widths:
            if ngf < teacher_ngf or (kind == "mobile" and ngf <= teacher_ngf):
                label = f"{kind + ' ' if kind else ''}ngf {ngf}"
                out.append((label, ngf, kind))
    return out


def suggest_students(teacher: nn.Module, resolution: int = 256, latency: bool = True,
                     device: str = "cpu", **latency_kwargs) -> list:
    """``EfficiencyProfile`` of the teacher, then of each of :func:`candidate_students` (fresh
    weights: latency does not depend on them), for ``wkd-profile --suggest``."""
    rows = [("teacher", teacher)]
    rows += [(label, build_student(teacher, ngf, kind))
             for label, ngf, kind in candidate_students(teacher, resolution)]
    profiles = []
    for name, model in rows:
        model = model.to(device).eval()
        kwargs = {"device": device, **latency_kwargs} if latency else {}
        profiles.append(profile_model(model, resolution, latency=latency, name=name, **kwargs))
    return profiles
