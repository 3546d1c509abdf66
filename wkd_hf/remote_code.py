"""The small files that let ``diffusers.DiffusionPipeline.from_pretrained(folder,
trust_remote_code=True)`` load a saved ``ImageTranslationPipeline`` in a process that imported
nothing of ours.

diffusers imports a component's class only from its own libraries (diffusers, transformers, ...),
from a module the caller already imported, or, with ``trust_remote_code=True``, from a file in the
component's own folder: ``model_index.json``'s ``"generator": ["wkd_generator", "UnetGenerator"]``
makes it load ``generator/wkd_generator.py``. That file only re-exports the class from the
installed ``wkd_hf`` package, as the pipeline's ``wkd_pipeline.py`` does for the pipeline.
"""

from __future__ import annotations

from pathlib import Path

COMPONENT_MODULE = "wkd_generator"  # generator/wkd_generator.py


def write_component_code(save_directory: str | Path, component: str, cls: type) -> list[str] | None:
    """Write ``<component>/wkd_generator.py`` re-exporting ``cls`` (a ``wkd_hf`` class); returns
    the ``model_index.json`` entry that points diffusers to it, or None for other classes."""
    if not cls.__module__.startswith("wkd_hf."):
        return None
    code = (f'"""Lets diffusers load ``{component}/`` with ``trust_remote_code=True``: the class '
            'lives in the\ninstalled ``wkd_hf`` package (pip install wkd_hf)."""\n\n'
            f"from {cls.__module__} import {cls.__name__}  # noqa: F401\n")
    path = Path(save_directory) / component / f"{COMPONENT_MODULE}.py"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(code, encoding="utf-8")
    partial.replace(path)
    return [COMPONENT_MODULE, cls.__name__]
