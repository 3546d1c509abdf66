"""Evaluator networks on disk: ``<name>.safetensors`` (weights, nothing executable) and
``<name>.json`` beside it (the architecture's settings and the evaluator's own test accuracy)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch import nn

from ..errors import WKDError


def save_evaluator(folder: str | Path, name: str, net: nn.Module, config: dict,
                   record: dict) -> Path:
    """Write the weights and ``{**config, **record}`` (each beside, then renamed)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights, meta = folder / f"{name}.safetensors", folder / f"{name}.json"
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(weights) + ".tmp")
    os.replace(str(weights) + ".tmp", weights)
    meta.with_suffix(".json.tmp").write_text(json.dumps({**config, **record}, indent=1) + "\n")
    os.replace(meta.with_suffix(".json.tmp"), meta)
    return weights


def load_evaluator(folder: str | Path, name: str, kind: str) -> tuple[dict, dict]:
    """``(state_dict, config)`` of the evaluator ``name`` in ``folder``; a clear error when the
    folder holds none or another kind."""
    from safetensors.torch import load_file

    folder = Path(folder)
    weights, meta = folder / f"{name}.safetensors", folder / f"{name}.json"
    if not weights.is_file() or not meta.is_file():
        raise WKDError(f"{folder} holds no {name}.safetensors + {name}.json; train one with "
                       f"training_scripts/train_evaluators.py {kind.split('_')[0]} "
                       f"--output_dir {folder}.")
    config = json.loads(meta.read_text())
    if config.get("kind") != kind:
        raise WKDError(f"{meta} is a {config.get('kind')!r} evaluator, not {kind!r}.")
    return load_file(str(weights)), config
