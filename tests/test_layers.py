"""The package's shape: every import (function-local ones included) points down the layers below,
and no set of modules imports itself round (no cycles, also within a layer).

``LAYERS`` lists the layers bottom to top; a module belongs to the entry with the longest dotted
prefix of its name (``wkd_hf`` itself, the lazy ``__init__``, covers only itself). A new module
must be placed here: an unplaced one fails the test.
"""

import ast
import graphlib
from pathlib import Path

from conftest import ROOT

LAYERS = [
    # base: on-disk names, errors, file safety, Hub access, the run record; imports nothing above
    ("base", ["wkd_hf", "wkd_hf.errors", "wkd_hf.names", "wkd_hf.safe_files",
              "wkd_hf.input_checks", "wkd_hf.output_folders", "wkd_hf.hub_access",
              "wkd_hf.run_record", "wkd_hf.remote_code", "wkd_hf.grid_labels"]),
    # networks: wavelets, losses, model families, loading, building, checkpoint conversion
    ("networks", ["wkd_hf.wavelets", "wkd_hf.losses", "wkd_hf.models", "wkd_hf.conversion"]),
    ("data", ["wkd_hf.data"]),
    ("metrics", ["wkd_hf.metrics", "wkd_hf.evaluate_modules"]),
    # the method: distillers, their config, students sized to a budget
    ("method", ["wkd_hf.distillation", "wkd_hf.budget"]),
    # the engine: accelerator, the loop, checkpoints, processes
    ("engine", ["wkd_hf.training", "wkd_hf.checkpointing", "wkd_hf.processes",
                "wkd_hf.precision", "wkd_hf.distributed", "wkd_hf.launcher_record"]),
    # runs: the argument schema, the recipes the scripts share, validation and --keep_best
    ("runs", ["wkd_hf.script_args", "wkd_hf.recipes", "wkd_hf.validation"]),
    # deployment: ONNX, OpenVINO, the pipeline, quantization
    ("deployment", ["wkd_hf.graph_rewrites", "wkd_hf.onnx_export", "wkd_hf.openvino_backend",
                    "wkd_hf.pipeline", "wkd_hf.quantize"]),
    # publishing: cards, uploads, the Space
    ("publishing", ["wkd_hf.cards", "wkd_hf.hub", "wkd_hf.space"]),
    # what the scripts run end to end: the training session, the evaluation
    ("session", ["wkd_hf.run", "wkd_hf.evaluation"]),
    ("cli", ["wkd_hf.cli", "wkd_hf.space.__main__"]),
    ("scripts", ["training_scripts"]),
]
PACKAGES = ("wkd_hf", "training_scripts")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    """Index in ``LAYERS`` of the longest prefix of ``module`` listed there."""
    best, found = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "wkd_hf" and module.startswith(prefix + "."))
            if covers and len(prefix) > best:
                best, found = len(prefix), index
    return found


def imported_modules(path: Path, module: str, known: set[str]) -> dict[str, int]:
    """Project modules ``path`` imports anywhere in it (functions too): name -> first line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            target = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                           if ".".join(parts[:n]) in known), None)
            if target and target != module:
                found.setdefault(target, node.lineno)
    return found


def import_graph(root: Path) -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    files = {module_name(p, root): p for package in PACKAGES
             for p in sorted((root / package).rglob("*.py"))}
    known = set(files)
    return {m: imported_modules(p, m, known) for m, p in files.items()}, files


def layer_problems(root: Path) -> list[str]:
    """Unplaced modules, imports that point up a layer, and import cycles, one line each."""
    graph, files = import_graph(root)
    problems = [f"{m}: not in LAYERS (place it)" for m in graph if layer_of(m) is None]
    for module, targets in graph.items():
        for target, line in targets.items():
            low, high = layer_of(module), layer_of(target)
            if low is not None and high is not None and high > low:
                problems.append(f"{files[module].relative_to(root)}:{line}: {module} "
                                f"({LAYERS[low][0]}) imports {target} ({LAYERS[high][0]}), "
                                "a layer above it")
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        problems.append(f"import cycle: {' -> '.join(err.args[1])}")
    return problems


def test_every_import_points_down_and_none_goes_round():
    assert layer_problems(ROOT) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"wkd_hf/__init__.py": "", "training_scripts/x.py": "", **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_an_upward_import_inside_a_function_is_caught(tmp_path):
    root = _tree(tmp_path, {
        "wkd_hf/models/__init__.py": "",
        "wkd_hf/models/loading.py": "def load():\n    from ..run import prepare_run\n",
        "wkd_hf/run.py": "from .models import loading\n"})
    problems = layer_problems(root)
    assert any("wkd_hf.models.loading (networks) imports wkd_hf.run (session)" in p
               and p.startswith("wkd_hf/models/loading.py:2:") for p in problems), problems
    assert any(p.startswith("import cycle:") for p in problems), problems


def test_a_cycle_within_one_layer_and_an_unplaced_module_are_caught(tmp_path):
    root = _tree(tmp_path, {"wkd_hf/hub.py": "from . import cards\n",
                            "wkd_hf/cards.py": "import wkd_hf.hub\n",
                            "wkd_hf/newthing.py": ""})
    problems = layer_problems(root)
    assert "wkd_hf.newthing: not in LAYERS (place it)" in problems
    cycle = next(p for p in problems if p.startswith("import cycle:"))
    assert "wkd_hf.hub" in cycle and "wkd_hf.cards" in cycle
    assert not any("a layer above" in p for p in problems)  # same layer: only the cycle
