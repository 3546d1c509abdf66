"""The Space folder: ``app.py``, ``requirements.txt``, ``README.md`` (the Space's front matter),
``space_config.json`` and ``examples/``; and its upload (``create_repo(repo_type="space")`` +
``upload_folder``). The token goes straight to ``huggingface_hub``: never logged or written."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import PIL.Image

from .. import __version__, recipes
from ..cards import base_model_for, is_hub_id
from ..hub import EVAL_SECTION_END, EVAL_SECTION_START, check_hub_reachable
from ..names import ARGS_FILE
from ..safe_files import partial_folder_beside

CONFIG_FILE = "space_config.json"
MAX_EXAMPLES = 4
PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16")  # saved as they are
CARD_SECTIONS = ("Evaluation", "Validation metrics")  # the card's tables the page shows
APP = '''"""Gradio Space written by `wkd-space` (wkd_hf): teacher vs student, side by side."""

import json
from pathlib import Path

from wkd_hf.space.app import build_demo

HERE = Path(__file__).resolve().parent
demo = build_demo(json.loads((HERE / "{config}").read_text(encoding="utf-8")), HERE)

if __name__ == "__main__":
    demo.launch()
'''


def card_tables(card_text: str) -> str:
    """The card's evaluation sections (``## Evaluation ...``, ``## Validation metrics ...``) as
    Markdown, one heading level down; empty when it has none."""
    text = card_text.replace(EVAL_SECTION_START, "").replace(EVAL_SECTION_END, "")
    sections = re.split(r"(?m)^(?=## )", text)
    kept = [s.strip() for s in sections if s.startswith(tuple(f"## {h}" for h in CARD_SECTIONS))]
    return "\n\n".join("#" + s for s in kept)


def read_card(source: str) -> str:
    """``source``'s README.md (a local folder's, or the Hub repo's when reachable), or ''."""
    path = Path(source) / "README.md"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    if not is_hub_id(source):
        return ""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(source, "README.md")).read_text(encoding="utf-8")
    except Exception:  # noqa: BLE001 - no card (offline, missing): the page shows no table
        return ""


def validation_images(run_folder: str | os.PathLike, limit: int = MAX_EXAMPLES
                      ) -> list[PIL.Image.Image]:
    """The run's fixed validation images (its first validation batch, rebuilt from ``args.json``
    as training built it); CycleGAN runs give domain A's then domain B's. Raises when the run's
    data cannot be read here (moved, offline)."""
    # args.json keeps the arguments that applied; these shape only the (unused) training loader
    defaults = {"shuffle_buffer_size": 1000, "domain_a_column": None, "domain_b_column": None,
                "streaming": False, "cache_dir": None, "max_train_samples": None,
                "direction": "AtoB"}
    saved = json.loads((Path(run_folder) / ARGS_FILE).read_text("utf-8"))
    args = argparse.Namespace(**{**defaults, **saved})
    args.num_validation_images = min(limit, args.num_validation_images)
    args.dataloader_num_workers = 0
    if getattr(args, "mode", "paired") == "cycle":
        batch = recipes.first_batch(recipes.build_unpaired_data(args).validation_loader)
        keys = ("A", "B")
    else:
        batch = recipes.first_batch(recipes.build_paired_data(args).validation_loader)
        keys = ("source",)
    if batch is None:
        raise ValueError(f"the run in {run_folder} has no validation images")
    return [image for key in keys for image in recipes.to_pil(batch[key])]


def _space_readme(title: str, models: Sequence[str], version: str, has_teacher: bool) -> str:
    import gradio

    lines = ["---", f"title: {json.dumps(title)}", "emoji: 🌊", "colorFrom: blue",
             "colorTo: indigo", "sdk: gradio", f"sdk_version: {gradio.__version__}",
             "app_file: app.py", "pinned: false", "license: apache-2.0"]
    if models:
        lines += ["models:"] + [f"  - {model}" for model in models]
    lines += ["tags:", "  - wkd_hf", "  - image-to-image", "  - knowledge-distillation", "---", "",
              f"# {title}", ""]
    shown = "the student beside its teacher" if has_teacher else "the model"
    return "\n".join(lines) + "\n" + (
        f"A wkd_hf {version} image-to-image GAN ({', '.join(models) or 'local folders'}): upload "
        f"an image to see {shown}, each output with its latency measured on this Space's "
        "hardware, its parameters and MACs.\n")


def _save_example(example: PIL.Image.Image | str | os.PathLike, path: Path) -> None:
    """One example image as a PNG; modes PNG cannot hold (CMYK, YCbCr, LAB, F, ...) as RGB (RGBA
    with transparency). A file that is not a readable image is a ValueError naming it."""
    try:
        image = example if isinstance(example, PIL.Image.Image) else PIL.Image.open(example)
        image.load()
    except Exception as err:  # noqa: BLE001 - PIL raises many types for a broken file
        raise ValueError(f"the example {example} is not a readable image ({type(err).__name__}: "
                         f"{err}); pass another file to --examples") from None
    if image.mode not in PNG_MODES:
        alpha = image.mode.endswith("A") or "transparency" in image.info  # not LAB
        image = image.convert("RGBA" if alpha else "RGB")
    image.save(path, format="PNG")


def write_space(output_dir: str | os.PathLike, student: str, teacher: str | None = None, *,
                student_hub_id: str | None = None, teacher_hub_id: str | None = None,
                examples: Sequence[PIL.Image.Image | str | os.PathLike] = (),
                title: str | None = None, requirement: str | None = None,
                max_side: int | None = None, card_text: str | None = None,
                size_mode: str | None = None) -> Path:
    """Write the Space folder (into a sibling temporary folder, then renamed into place).

    ``student``/``teacher``: what the app loads (folders or Hub ids); the ``*_hub_id`` names go in
    the front matter's ``models:`` (default: the source itself when it is a Hub id); ``card_text``:
    the student's card (default: read from ``student``). A non-empty ``output_dir`` that is not an
    earlier Space folder is refused."""
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()) and not (out / CONFIG_FILE).is_file():
        raise FileExistsError(f"--output_dir {out} holds other files; choose a new or empty folder")
    student_hub_id = student_hub_id or (student if is_hub_id(student) else None)
    teacher_hub_id = teacher_hub_id or (teacher if teacher and is_hub_id(teacher) else None)
    title = title or (f"{Path(student_hub_id or student).name}: wkd_hf student"
                      + (" vs teacher" if teacher else ""))
    tmp = partial_folder_beside(out)
    try:
        (tmp / "examples").mkdir()
        names = []
        for index, example in enumerate(list(examples)):
            names.append(f"example_{index}.png")
            _save_example(example, tmp / "examples" / names[-1])
        config = {"title": title, "student": student, "teacher": teacher, "examples": names,
                  "card_markdown": card_tables(
                      read_card(student) if card_text is None else card_text),
                  "max_side": max_side, "size_mode": size_mode}
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (tmp / "app.py").write_text(APP.format(config=CONFIG_FILE), encoding="utf-8")
        (tmp / "requirements.txt").write_text(
            f"{requirement or f'wkd_hf=={__version__}'}\n# gradio: the Space's sdk_version\n",
            encoding="utf-8")
        models = [m for m in (student_hub_id, teacher_hub_id) if m]
        (tmp / "README.md").write_text(
            _space_readme(title, models, __version__, teacher is not None), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def create_space(space_id: str, token: str | None = None, private: bool = False):
    """Create (or open) the Gradio Space ``space_id``; returns ``(HfApi, its URL)``."""
    from huggingface_hub import HfApi

    check_hub_reachable()
    api = HfApi(token=token)
    return api, str(api.create_repo(space_id, repo_type="space", space_sdk="gradio",
                                    private=private, exist_ok=True))


def push_space(folder: str | os.PathLike, space_id: str, token: str | None = None,
               private: bool = False) -> str:
    """Create (or open) the Gradio Space ``space_id`` and upload ``folder``; returns its URL."""
    api, url = create_space(space_id, token, private)
    api.upload_folder(repo_id=space_id, repo_type="space", folder_path=str(folder),
                      commit_message="Upload wkd_hf Space")
    return url


def batch_examples(batch, limit: int = MAX_EXAMPLES) -> list[PIL.Image.Image]:
    """A run's validation batch (``source``, or CycleGAN's ``A`` and ``B``; N x C x H x W in
    [-1, 1]) as PIL examples."""
    keys = [key for key in ("source", "A", "B") if key in (batch or {})]
    return [image for key in keys for image in recipes.to_pil(batch[key][:limit])]


def push_run_space(output_dir: str | os.PathLike, args, batch=None) -> str:
    """``--push_to_hub --hub_space_id``: the Space of a just-uploaded run (the student is
    ``--hub_model_id``; the teacher its Hub id when known); returns the Space's URL."""
    with tempfile.TemporaryDirectory() as tmp:
        card = Path(output_dir) / "README.md"
        folder = write_space(
            Path(tmp) / "space", args.hub_model_id, base_model_for(args),
            examples=batch_examples(batch),
            card_text=card.read_text(encoding="utf-8") if card.is_file() else "")
        return push_space(folder, args.hub_space_id, args.hub_token, args.hub_private_repo)
