"""Model cards (rendered from ``model_cards/``) and uploads of finished output folders.

Uploads never include ``checkpoint-*`` folders, temporary files or logs, and the token is passed
straight to ``huggingface_hub``: it is never logged or written.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from huggingface_hub import ModelCard, ModelCardData, constants

logger = logging.getLogger(__name__)

LIBRARY_NAME = "wkd_hf"
BASE_TAGS = ["wavelet-knowledge-distillation", "image-to-image", "gan", "knowledge-distillation",
             "wkd_hf"]
UPLOAD_IGNORE = ["checkpoint-*", ".checkpoint-*", "*.tmp", "logs/*", "logs/**"]
DEFAULT_TEMPLATE = "wkd_student.md"


class HubUnavailableError(RuntimeError):
    """The Hub cannot be reached (offline mode or no network); the message says what to do."""


def find_template(name: str = DEFAULT_TEMPLATE) -> Path:
    """The card template: ``model_cards/`` of a source checkout, or its installed copy."""
    candidates = [Path(__file__).resolve().parents[1] / "model_cards" / name,
                  Path(sys.prefix) / "share" / LIBRARY_NAME / "model_cards" / name]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"Model card template {name!r} not found in {candidates}.")


def format_count(value: float, unit: str = "") -> str:
    """11378179 -> '11.378M'; 49.55e9 -> '49.55G'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3f}{suffix}{unit}" if suffix == "M" else \
                f"{value / scale:.2f}{suffix}{unit}"
    return f"{value:g}{unit}"


def efficiency_rows(profiles: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Card table rows from ``{"name", "params", "macs"}`` dicts; ratios are against the first."""
    reference = profiles[0]
    rows = []
    for profile in profiles:
        ratio = "1.00x (reference)" if profile is reference else (
            f"{reference['params'] / profile['params']:.2f}x params, "
            f"{reference['macs'] / profile['macs']:.2f}x MACs")
        rows.append({"name": profile["name"], "params": format_count(profile["params"]),
                     "macs": format_count(profile["macs"]), "ratio": ratio})
    return rows


def build_model_card(*, model_name: str, repo_id: str, class_name: str, task: str,
                     profiles: Sequence[Mapping[str, Any]], resolution: int, command: str,
                     data_description: str, teacher: str | None = None,
                     datasets: Sequence[str] = (), wkd_settings: Mapping[str, Any] | None = None,
                     metrics: Mapping[str, Any] | None = None, mode_description: str = "",
                     sample_image: str | None = None, sample_columns: str = "",
                     subfolder: str | None = None, in_channels: int = 3, out_channels: int = 3,
                     discriminator_description: str = "",
                     template_path: str | os.PathLike | None = None,
                     extra_tags: Sequence[str] = ()) -> ModelCard:
    """Render the card template with YAML metadata (library, tags, pipeline, base model, data).

    ``profiles`` are ``{"name", "params", "macs"}`` dicts, the teacher (reference) first.
    """
    from . import __version__

    is_hub_teacher = (teacher is not None and not os.path.exists(teacher)
                      and re.fullmatch(r"[\w.-]+/[\w.-]+", teacher) is not None)
    card_data = ModelCardData(
        library_name=LIBRARY_NAME, pipeline_tag="image-to-image", license="apache-2.0",
        tags=BASE_TAGS + [t for t in extra_tags if t not in BASE_TAGS],
        base_model=teacher if is_hub_teacher else None,
        datasets=list(datasets) or None, model_name=model_name)
    teacher_link = f"https://huggingface.co/{teacher}" if is_hub_teacher else None
    if teacher is not None and not is_hub_teacher:
        teacher = Path(teacher).name  # a local path says nothing to readers of a published card
    return ModelCard.from_template(
        card_data, template_path=str(template_path or find_template()),
        model_name=model_name, repo_id=repo_id, class_name=class_name, task=task,
        role_description="student generator" if teacher else "generator",
        teacher=teacher, teacher_link=teacher_link, mode_description=mode_description,
        efficiency_rows=efficiency_rows(profiles), resolution=resolution,
        wkd_settings=dict(wkd_settings or {}), metrics=dict(metrics or {}),
        sample_image=sample_image, sample_columns=sample_columns, subfolder=subfolder,
        discriminator_description=discriminator_description,
        in_channels=in_channels, out_channels=out_channels, command=command,
        data_description=data_description, library_version=__version__)


def check_hub_reachable(timeout: float = 5.0) -> None:
    """Fail within ``timeout`` seconds, with a clear message, when the Hub cannot be reached."""
    if constants.HF_HUB_OFFLINE:
        raise HubUnavailableError(
            "HF_HUB_OFFLINE=1 is set, so nothing can be uploaded. Unset it, or upload the "
            "finished folder later with `hf upload REPO_ID OUTPUT_DIR`.")
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
    except OSError as error:
        raise HubUnavailableError(
            f"Cannot reach the Hub at {constants.ENDPOINT} ({error}). Check the network (or "
            "HF_ENDPOINT), or upload the finished folder later with "
            "`hf upload REPO_ID OUTPUT_DIR`.") from None


def push_output_dir(output_dir: str | os.PathLike, repo_id: str, token: str | None = None,
                    private: bool = False, commit_message: str = "Upload wkd_hf model") -> str:
    """Upload a finished output folder (never its checkpoints or logs); returns the repo URL."""
    from huggingface_hub import create_repo, upload_folder

    check_hub_reachable()
    url = create_repo(repo_id, token=token, private=private, exist_ok=True)
    upload_folder(repo_id=repo_id, folder_path=str(output_dir), token=token,
                  commit_message=commit_message, ignore_patterns=UPLOAD_IGNORE)
    logger.info("Uploaded %s to %s", output_dir, url)
    return str(url)
