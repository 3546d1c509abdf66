"""Every console script of ``setup.cfg`` lives here, one module each: ``wkd-profile``
(:mod:`.profile`), ``wkd-convert`` (:mod:`.convert`), ``wkd-translate`` (:mod:`.translate`),
``wkd-export-onnx`` (:mod:`.export_onnx`), ``wkd-quantize`` (:mod:`.quantize`) and ``wkd-space``
(:mod:`.space`). The training scripts' shared ``run_cli`` is :func:`wkd_hf.run.run_cli`.

One error convention: a bad argument is argparse's usage line and exit code 2; any other problem
is ONE line ``PROG: error: ...`` on stderr and exit code 1 (``WKD_HF_TRACEBACK=1`` re-raises to
show the traceback); Ctrl-C exits 130. The library below raises; only this package prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

import torch

from ..errors import WKDError
from ..hub_access import HubUnreachableError

# errors whose message already says what is wrong: printed without their class name
PLAIN_ERRORS = (WKDError, HubUnreachableError, ValueError)


MAX_ERROR_CHARS = 1000  # one line, long enough for our longest message (the layouts, ~400)


def error_line(prog: str, err: BaseException, plain: tuple[type, ...] = ()) -> str:
    """``PROG: error: Kind: message`` as one line (no class name for ``plain``): a multi-line
    message's lines are joined with `` | `` (torch's "size mismatch for ..." and the Hub's
    "Repository Not Found" come after a first line that says little), cut at
    :data:`MAX_ERROR_CHARS`."""
    kind = "" if isinstance(err, plain) else f"{type(err).__name__}: "
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    line = f"{prog}: error: {kind}" + " | ".join(lines)
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS - 3] + "..."


def guarded(prog: str, body: Callable[[], int], plain: tuple[type, ...] = ()) -> int:
    """``body()``'s exit code, or 1 after one :func:`error_line` when it raises (130 on
    Ctrl-C; ``WKD_HF_TRACEBACK=1`` re-raises)."""
    try:
        return body()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every failure is one line for the shell
        if os.environ.get("WKD_HF_TRACEBACK"):
            raise
        print(error_line(prog, err, plain), file=sys.stderr)
        return 1


def one_line_errors(prog: str) -> None:
    """For flat scripts (``examples/``): an uncaught exception prints one :func:`error_line`
    instead of a traceback (exit code 1; ``WKD_HF_TRACEBACK=1`` keeps the traceback)."""
    if os.environ.get("WKD_HF_TRACEBACK"):
        return

    def hook(kind, err, traceback):
        if issubclass(kind, KeyboardInterrupt):
            print(f"{prog}: interrupted", file=sys.stderr)
        else:
            print(error_line(prog, err, PLAIN_ERRORS), file=sys.stderr)

    sys.excepthook = hook


def fail(prog: str, message: str) -> NoReturn:
    """Stop now with ``PROG: error: message`` and exit code 1."""
    raise SystemExit(f"{prog}: error: {message}")


def parse_device(device: str) -> torch.device:
    """``--device`` parsed and present on this machine (cpu, mps, cuda, cuda:N); ValueError with
    the fix otherwise."""
    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"--device {device!r} is not a device ({err}); use cpu, cuda or "
                         "cuda:<index>") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device} but CUDA is not available on this machine; use "
                             "--device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"--device {device} but this machine has {count} CUDA device(s) "
                             f"(0..{count - 1})")
    elif parsed.type not in ("cpu", "mps"):
        raise ValueError(f"--device {device}: use cpu, cuda or cuda:<index>")
    return parsed
