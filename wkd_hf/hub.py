"""Uploads of finished output folders and evaluation results in model cards (the cards
themselves: :mod:`wkd_hf.cards`; reaching the Hub: :mod:`wkd_hf.hub_access`).

Uploads never include ``checkpoint-*`` folders, temporary files or logs, and the token is passed
straight to ``huggingface_hub``: it is never logged or written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import ModelCard, ModelCardData

from .cards import COMMON_TAGS, LIBRARY_NAME, recipe_command
from .errors import WKDError
from .hub_access import HubUnreachableError, hub_advice, hub_unreachable_reason
from .safe_files import check_regular_file, refuse_link, write_text_beside

logger = logging.getLogger(__name__)

UPLOAD_IGNORE = ["checkpoint-*", ".checkpoint-*", "*.tmp", "logs/*", "logs/**", ".wkd_hf.lock"]


def check_hub_reachable() -> None:
    """Fail within seconds, with a clear message, when nothing can be uploaded."""
    why = hub_unreachable_reason()
    if why is not None:
        raise HubUnreachableError(
            f"Cannot upload: {why}. " + hub_advice(
                "upload the finished folder later with `hf upload REPO_ID OUTPUT_DIR`",
                cache=False))


def prepare_hub_repo(repo_id: str, token: str | None = None, private: bool = False) -> str:
    """At start-up, as the diffusers scripts do: reach the Hub and create ``repo_id`` (or find
    it), so a bad token or repo name fails before training, not after. Returns the repo URL."""
    from huggingface_hub import create_repo
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    check_hub_reachable()
    try:
        return str(create_repo(repo_id, token=token, private=private, exist_ok=True))
    except (HfHubHTTPError, HFValidationError, ValueError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise HubUnreachableError(
            f"Cannot create or open the Hub repo {repo_id!r} ({detail}). Check --hub_model_id "
            "(user-or-org/name) and your token (`hf auth login`, HF_TOKEN or --hub_token).") from None


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


EVAL_SECTION_START = "<!-- wkd_hf evaluation: start -->"
EVAL_SECTION_END = "<!-- wkd_hf evaluation: end -->"
# metric key in results.json -> (model-index metric type, display name)
EVAL_METRIC_NAMES = {"fid": ("fid", "FID"), "kid_mean": ("kid", "KID"),
                     "psnr": ("psnr", "PSNR (dB)"), "ssim": ("ssim", "SSIM"),
                     "l1": ("l1", "L1")}


def write_evaluation_results(model_dir: str | os.PathLike, record: Mapping[str, Any], *,
                             dataset_name: str, dataset_type: str, dataset_split: str,
                             task_name: str, table: str, command: str = "") -> Path:
    """Put one model's evaluation into ``model_dir/README.md``: model-index entries
    (``huggingface_hub.EvalResult`` in the card's ``eval_results``; earlier entries on the same
    dataset and split are replaced) and an "Evaluation" section with ``table`` (replaced on
    re-runs; ``command`` with local paths masked, as the Training section's). A folder without a
    card gets a minimal one. Returns the card's path."""
    from huggingface_hub import EvalResult

    path = refuse_link(Path(model_dir) / "README.md", "model card")
    if path.exists():
        check_regular_file(path, "model card")
        try:
            card = ModelCard.load(path)
        except (ValueError, yaml.YAMLError, UnicodeDecodeError) as error:
            first = " ".join(str(error).split())[:200] or type(error).__name__
            raise WKDError(f"{path}: its YAML front matter is invalid ({first}); fix or remove "
                           "the block between the '---' lines, then evaluate again.") from None
    else:
        data = ModelCardData(library_name=LIBRARY_NAME, pipeline_tag="image-to-image",
                             tags=list(COMMON_TAGS))
        card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n# {record['name']}\n")
    card.data.model_name = card.data.model_name or str(record["name"])
    metrics = record.get("metrics", {})
    fresh = [EvalResult(task_type="image-to-image", task_name=task_name, dataset_type=dataset_type,
                        dataset_name=dataset_name, dataset_split=dataset_split,
                        metric_type=kind, metric_name=label, metric_value=round(float(value), 4))
             for key, (kind, label) in EVAL_METRIC_NAMES.items()
             if (value := metrics.get(key)) is not None]
    kept = [r for r in (card.data.eval_results or [])
            if (r.dataset_type, r.dataset_split) != (dataset_type, dataset_split)]
    card.data.eval_results = kept + fresh or None
    section = (f"{EVAL_SECTION_START}\n## Evaluation ({dataset_name}, split {dataset_split})\n\n"
               f"{table}\n")
    if command:
        section += f"\nMeasured with:\n\n```bash\n{recipe_command(command)}\n```\n"
    section += f"{EVAL_SECTION_END}"
    text = card.text
    if EVAL_SECTION_START in text and EVAL_SECTION_END in text:
        head, rest = text.split(EVAL_SECTION_START, 1)
        text = head + section + rest.split(EVAL_SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    card.text = text
    write_text_beside(path, str(card), "model card")
    return path
