"""Checks on what the pipeline and ``wkd-translate`` are given: image values that clamping would
silently turn white or black, dtype names, and an ``--output`` that would overwrite the inputs."""

from __future__ import annotations

from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
RANGE_HELP = ("cannot translate {}: pass uint8 (0-255), uint16 (0-65535) or float values in "
              "[0, 1] (e.g. array.astype(np.uint8), or divide by 255)")
RANGE_TOLERANCE = 0.01  # float inputs a little outside [0, 1] (resampling overshoot) are clamped


def check_values(tensor: torch.Tensor) -> None:
    """C x H x W floats: refuse an empty image, NaN/Inf, and values far outside [0, 1] (0-255
    values, or [-1, 1]), which clamping would turn into a white or black image."""
    if tensor.numel() == 0:
        raise ValueError(f"an image has no pixels (shape {tuple(tensor.shape)})")
    low, high = float(tensor.min()), float(tensor.max())
    if not (torch.isfinite(torch.tensor([low, high])).all()):
        raise ValueError("an image holds NaN or infinite values")
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(f"float image values must lie in [0, 1]; got [{low:g}, {high:g}] (for "
                         "0-255 values divide by 255 or pass uint8; for [-1, 1], (x + 1) / 2)")


def parse_dtype(torch_dtype: torch.dtype | str | None) -> torch.dtype | None:
    """A torch dtype from ``torch.float16`` or its name (``"float16"``, ``"torch.float16"``)."""
    if not isinstance(torch_dtype, str):
        return torch_dtype
    name = torch_dtype.removeprefix("torch.")
    if name not in DTYPES:
        raise ValueError(f"torch_dtype must be one of {sorted(DTYPES)} (or torch.float16 ...); "
                         f"got {torch_dtype!r}")
    return DTYPES[name]


def check_output_apart(root: Path, output: Path, files: list[Path],
                       names: dict[Path, Path]) -> None:
    """Refuse an ``--output`` that is (or lies inside) the ``--input`` folder, or that would
    replace an input file: the inputs would be overwritten or re-translated on the next run."""
    root_r, out_r = root.resolve(), output.resolve()
    if root.is_dir() and (out_r == root_r or root_r in out_r.parents):
        raise ValueError(f"--output {output} is inside --input {root}: the translations would "
                         "overwrite the inputs or be translated again on the next run; choose a "
                         "folder outside --input")
    inputs = {path.resolve() for path in files}
    clash = next((path for path in files if (out_r / names[path]).resolve() in inputs), None)
    if clash is not None:
        raise ValueError(f"--output {output} would overwrite the input {clash}; choose another "
                         "folder")
