"""What the launcher decided, recorded where a reader looks: ``accelerate launch
--mixed_precision bf16`` (or an ``accelerate config`` file) trains in bf16 though the script's own
``--mixed_precision`` was left unset. The run's ``args`` (hence ``args.json`` and the card) get the
precision and the process count accelerate actually used, and the card's command spells them out,
so re-running the card trains the same way."""

from __future__ import annotations

import argparse
import shlex

LAUNCHER_ARGS = ("mixed_precision", "num_processes")  # args set from the accelerator's state


def record_launcher_settings(args: argparse.Namespace, accelerator) -> None:
    """Set ``args.mixed_precision`` ("no", "fp16", "bf16"; the script flag, else the launcher's
    choice) and ``args.num_processes`` from ``accelerator``."""
    args.mixed_precision = str(accelerator.mixed_precision)
    args.num_processes = int(accelerator.num_processes)


def command_with_launcher_settings(command: str, args: argparse.Namespace) -> str:
    """``command`` ("accelerate launch training_scripts/x.py ...") with ``--multi_gpu
    --num_processes N`` for several processes and ``--mixed_precision P`` unless it says so."""
    words = shlex.split(command)
    script = next(i for i, word in enumerate(words) if word.startswith("training_scripts/"))
    flags = words[script + 1:]
    spelled = any(w == "--mixed_precision" or w.startswith("--mixed_precision=") for w in flags)
    if not spelled and getattr(args, "mixed_precision", None) not in (None, "no"):
        flags += ["--mixed_precision", args.mixed_precision]
    launcher = words[:script]
    if getattr(args, "num_processes", 1) > 1 and "--num_processes" not in launcher:
        launcher += ["--multi_gpu", "--num_processes", str(args.num_processes)]
    return " ".join(shlex.quote(w) for w in [*launcher, words[script], *flags])
