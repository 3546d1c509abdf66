"""Model cards of training runs, rendered from ``model_cards/`` with ``huggingface_hub.ModelCard``.

:func:`write_run_card` is what a run calls at export; each claim of the card comes from one small
function here (title, data, method, command, base model), and :func:`applicable_args` is the
``args.json`` written next to the final weights. Heavy imports stay inside functions: ``hub``
re-exports this module and is imported by the model loaders.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from . import __version__, recipes
from .metrics.efficiency import count_macs, count_parameters
from .names import ARGS_FILE, CYCLE_SUBFOLDERS
from .run_record import public_args

logger = logging.getLogger(__name__)

LIBRARY_NAME = "wkd_hf"
WKD_TAG, KD_TAG = "wavelet-knowledge-distillation", "knowledge-distillation"
COMMON_TAGS = ["image-to-image", "gan", LIBRARY_NAME]  # every wkd_hf model, teacher or student
BASE_TAGS = [WKD_TAG, "image-to-image", "gan", KD_TAG, LIBRARY_NAME]  # a WKD student's
DEFAULT_TEMPLATE = "wkd_student.md"
WKD_PAPER = "[Wavelet Knowledge Distillation](https://arxiv.org/abs/2203.06321) (Zhang et al., " \
            "CVPR 2022)"
SPLIT_NAMES = {"train", "training", "test", "testing", "val", "valid", "validation"}
HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
CYCLE_ONLY = ("lambda_cycle", "lambda_identity", "pool_size")
WKD_ONLY = ("wave", "levels", "distance", "lambda_wkd")
FEATURE_KD_ONLY = ("kd_feature_layers",)


# ----------------------------------------------------------------------------- rendering
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


def is_hub_id(name: str | None) -> bool:
    """``user/name`` (or a canonical ``name``) that is not an existing local path."""
    if not name or name.startswith(("/", "./", "../", "~", ".\\")) or os.path.isabs(name):
        return False
    return not os.path.exists(name) and HUB_ID.fullmatch(name) is not None


def build_model_card(*, model_name: str, repo_id: str, class_name: str, task: str,
                     profiles: Sequence[Mapping[str, Any]], resolution: int, command: str,
                     data_description: str, teacher: str | None = None,
                     base_model: str | None = None, intro: str = "",
                     datasets: Sequence[str] = (), wkd_settings: Mapping[str, Any] | None = None,
                     metrics: Mapping[str, Any] | None = None, mode_description: str = "",
                     sample_image: str | None = None, sample_columns: str = "",
                     subfolder: str | None = None, in_channels: int = 3, out_channels: int = 3,
                     discriminator_description: str = "", repo_is_local: bool | None = None,
                     template_path: str | os.PathLike | None = None,
                     tags: Sequence[str] | None = None,
                     extra_tags: Sequence[str] = ()) -> ModelCard:
    """Render the card template with YAML metadata (library, tags, pipeline, base model, data).

    ``profiles`` are ``{"name", "params", "macs"}`` dicts, the teacher (reference) first. Only
    Hub ids become ``base_model`` (``base_model``, else a Hub-id ``teacher``) and ``datasets``;
    ``tags`` default to a WKD student's with a teacher, else the common ones.
    """
    base_model = base_model or (teacher if is_hub_id(teacher) else None)
    tags = list(tags if tags is not None else BASE_TAGS if teacher else COMMON_TAGS)
    card_data = ModelCardData(
        library_name=LIBRARY_NAME, pipeline_tag="image-to-image", license="apache-2.0",
        tags=tags + [t for t in extra_tags if t not in tags], base_model=base_model,
        datasets=[d for d in datasets if is_hub_id(d)] or None, model_name=model_name)
    if repo_is_local is None:
        repo_is_local = not is_hub_id(repo_id) or "/" not in repo_id
    return ModelCard.from_template(
        card_data, template_path=str(template_path or find_template()),
        model_name=model_name, repo_id=repo_id, class_name=class_name, task=task,
        intro=intro or default_intro(task, teacher, base_model),
        mode_description=mode_description,
        efficiency_rows=efficiency_rows(profiles), resolution=resolution,
        wkd_settings=dict(wkd_settings or {}), metrics=dict(metrics or {}),
        sample_image=sample_image, sample_columns=sample_columns, subfolder=subfolder,
        discriminator_description=discriminator_description,
        in_channels=in_channels, out_channels=out_channels, command=command,
        data_description=data_description, library_version=__version__,
        repo_is_local=repo_is_local)


# ----------------------------------------------------------------------------- claims
def teacher_reference(teacher: str, base_model: str | None = None) -> str:
    """A link to a Hub teacher, or a local teacher by its folder name only."""
    if base_model:
        return f"[`{base_model}`](https://huggingface.co/{base_model})"
    path = Path(teacher)
    if path.name in CYCLE_SUBFOLDERS.values() and path.parent.name:  # one direction of a pair
        return f"a local teacher (`{path.parent.name}/{path.name}`)"
    return f"a local teacher (`{path.name}`)"


def default_intro(task: str, teacher: str | None, base_model: str | None = None,
                  family: str = "image-to-image", distilled: bool = True,
                  uses_wkd: bool = True) -> str:
    """The card's first sentence: what the model is and how it was trained, nothing more."""
    if teacher is None:
        return (f"A {family} teacher generator for **{task}**, trained from scratch with "
                f"`{LIBRARY_NAME}` (no distillation); it can serve as the teacher of "
                "`distill.py --teacher_model_name_or_path`.")
    source = teacher_reference(teacher, base_model)
    if not distilled:
        return (f"A {family} student generator for **{task}**, trained with `{LIBRARY_NAME}` "
                f"without any distillation term: the no-distillation baseline for {source}.")
    method = f" using {WKD_PAPER}" if uses_wkd else ""
    return f"A {family} student generator for **{task}**, distilled from {source}{method} with " \
           f"`{LIBRARY_NAME}`."


def uses_wavelet_term(config) -> bool:
    return config.bands != "none" and config.lambda_wkd > 0


def wavelet_term(config) -> str:
    """Exactly what the wavelet term distils (bands, levels, wave, distance, weight)."""
    if not uses_wavelet_term(config):
        return ""
    dwt = f"{config.levels}-level `{config.wave}` DWT"
    bands = {"high": f"the LH/HL/HH (high-frequency) bands of every level of a {dwt} "
                     "(the paper's method)",
             "low": f"the LL (low-frequency) band of a {dwt} only (an ablation, not the "
                    "paper's method)",
             "all": f"every band of a {dwt}: LL and the LH/HL/HH bands of every level (an "
                    "ablation, not the paper's method)"}[config.bands]
    return (f"the wavelet distillation term: {config.distance.upper()} distance to the "
            f"teacher's output on {bands}, weight {config.lambda_wkd:g}")


def kd_terms(config) -> list[str]:
    """The wavelet term and the output/feature KD baselines that this run used."""
    terms = [wavelet_term(config)] if uses_wavelet_term(config) else []
    if config.kd_output_weight > 0:
        terms.append(f"output KD (L1 to the teacher's output, weight {config.kd_output_weight:g})")
    if config.kd_feature_weight > 0:
        layers = ", ".join(config.kd_feature_layers) or "the generator's default layers"
        terms.append(f"feature KD through 1x1 adapters ({layers}, weight "
                     f"{config.kd_feature_weight:g})")
    return terms


def mode_description(config, student_width: str = "", teacher: bool = True) -> str:
    """The objective of the run, with exactly the distillation terms it used."""
    gan = f"{config.gan_mode} GAN loss"
    if not teacher:
        if config.mode == "cycle":
            return (f"Trained on unpaired data with the CycleGAN objective: two generators and "
                    f"two PatchGAN discriminators ({gan}), cycle-consistency weight "
                    f"{config.lambda_cycle:g}, identity weight {config.lambda_identity:g}.")
        return (f"Trained on paired data with the pix2pix objective: L1 to the target (weight "
                f"{config.lambda_recon:g}) and a conditional PatchGAN ({gan}).")
    terms = kd_terms(config)
    extra = " plus " + "; ".join(terms) if terms else ""
    if config.mode == "teacher_target":
        return (f"Unpaired data, GAN Compression's recipe: the teacher's output is the target "
                f"(L1 weight {config.lambda_recon:g} + {gan}){extra}.")
    if not terms:
        family = "CycleGAN" if config.mode == "cycle" else "pix2pix"
        width = f" ({student_width})" if student_width else ""
        flag = "--wkd_bands none" if config.bands == "none" else "--lambda_wkd 0"
        return (f"No distillation term (`{flag}`): a plain {family} student trained from "
                f"scratch at the student's width{width}.")
    if config.mode == "cycle":
        return (f"Unpaired data, the paper's recipe: two students and two discriminators with "
                f"the full CycleGAN objective (cycle weight {config.lambda_cycle:g}, identity "
                f"{config.lambda_identity:g}){extra}, on each direction.")
    return (f"Trained on paired data: L1 to the dataset target (weight {config.lambda_recon:g}), "
            f"a conditional PatchGAN ({gan}){extra}.")


def method_settings(config) -> dict:
    """The ``wkd_config.json`` settings that shaped this run (the others dropped)."""
    drop = (("lambda_recon",) if config.mode == "cycle" else CYCLE_ONLY) + (
        () if uses_wavelet_term(config) else WKD_ONLY) + (
        () if config.kd_feature_weight > 0 else FEATURE_KD_ONLY)
    return {k: v for k, v in config.to_dict().items() if k not in drop}


def card_tags(config, distilling: bool) -> list[str]:
    """Common tags, the family and mode, and distillation tags only for what was distilled."""
    tags = list(COMMON_TAGS) + ["cyclegan" if config.mode == "cycle" else "pix2pix", config.mode]
    if distilling and config.uses_teacher:
        tags.append(KD_TAG)
    if distilling and uses_wavelet_term(config):
        tags.append(WKD_TAG)
    return tags


# ----------------------------------------------------------------------------- data and title
def dataset_folder(path: str | os.PathLike) -> Path:
    """The folder that names a local dataset: ``facades/train`` -> ``facades``."""
    folder = Path(path).expanduser().resolve()
    return folder.parent if folder.name.lower() in SPLIT_NAMES and folder.parent.name else folder


GENERIC_FOLDERS = frozenset({"data", "dataset", "datasets", "images", "imgs", "pairs", "input",
                             "inputs", "files", "tmp", "out", "output"})  # name no dataset


def dataset_title(args: argparse.Namespace) -> str:
    """The dataset's Hub id, or the local dataset folder's own name; "custom data" when that
    name says nothing (``data``, ``images``, ...)."""
    name = args.dataset_name
    if name and is_hub_id(name):
        return name
    folder = dataset_folder(name or args.train_data_dir).name
    return "custom data" if not folder or folder.lower() in GENERIC_FOLDERS else folder


def direction_text(mode: str, direction: str) -> str:
    """``A -> B`` / ``B -> A``; cycle mode trains both: ``A <-> B``."""
    if mode == "cycle":
        return "A <-> B"
    return "A -> B" if direction == "AtoB" else "B -> A"


def task_title(args: argparse.Namespace, mode: str) -> str:
    return f"{dataset_title(args)} ({direction_text(mode, args.direction)})"


def hub_datasets(args: argparse.Namespace) -> list[str]:
    """``datasets:`` metadata: a Hub dataset id, never a local path."""
    return [args.dataset_name] if is_hub_id(args.dataset_name) else []


def data_description(args: argparse.Namespace, mode: str) -> str:
    """Where the data came from (a Hub link, or a local folder by name) and how it was used."""
    if is_hub_id(args.dataset_name):
        config = f" (config `{args.dataset_config_name}`)" if args.dataset_config_name else ""
        source = (f"the Hub dataset [`{args.dataset_name}`](https://huggingface.co/datasets/"
                  f"{args.dataset_name}){config}")
    else:
        source = f"a local folder `{dataset_folder(args.dataset_name or args.train_data_dir).name}`"
    streamed = " (streamed)" if getattr(args, "streaming", False) else ""
    way = ("both directions (A <-> B)" if mode == "cycle"
           else f"direction {direction_text(mode, args.direction)}")
    return f"{source}, {args.resolution}x{args.resolution} crops{streamed}, {way}"


# ----------------------------------------------------------------------------- command
DROPPED_OPTIONS = {"--resume_from_checkpoint": True, "--hub_token": True,  # True: takes a value
                   "--overwrite_output_dir": False}


def path_placeholder(path: str) -> str:
    """``/abs/facades/train`` -> ``<path to facades>/train``; a file -> ``<path to x.pth>``."""
    folder = Path(path).expanduser()
    if folder.name.lower() in SPLIT_NAMES and folder.parent.name:
        return f"<path to {folder.parent.name}>/{folder.name}"
    return f"<path to {folder.name or 'data'}>"


def _is_local_path(word: str) -> bool:
    return word.startswith("~") or os.path.isabs(word)


def recipe_command(command: str, replacements: Mapping[str, str] | None = None) -> str:
    """A command to re-run the recipe elsewhere: no resume, overwrite or token option, absolute
    paths as ``<path to NAME>`` (``replacements``: option -> value to show instead)."""
    replacements = dict(replacements or {})
    words, out = shlex.split(command), []
    skip_value = False
    for word in words:
        if skip_value:
            skip_value = False
            continue
        option, has_value, value = word.partition("=")
        if option in DROPPED_OPTIONS:
            skip_value = DROPPED_OPTIONS[option] and not has_value
            continue
        previous = out[-1] if out else ""
        if has_value and option.startswith("--"):
            out.append(f"{option}={_recipe_value(option, value, replacements)}")
        elif previous.startswith("--") and "=" not in previous and not word.startswith("--"):
            out.append(_recipe_value(previous, word, replacements))
        else:
            out.append(_recipe_value("", word, replacements))
    return " ".join(shlex.quote(word) for word in out)


def _recipe_value(option: str, value: str, replacements: Mapping[str, str]) -> str:
    if option in replacements:
        return replacements[option]
    return path_placeholder(value) if _is_local_path(value) else value


def command_replacements(args: argparse.Namespace, base_model: str | None) -> dict[str, str]:
    """The output folder by its name (as the usage snippet), a local teacher by its Hub id."""
    replacements = {"--output_dir": Path(args.output_dir).name}
    teacher = getattr(args, "teacher_model_name_or_path", None)
    if base_model and teacher and not is_hub_id(teacher):
        replacements["--teacher_model_name_or_path"] = base_model
    return replacements


def base_model_for(args: argparse.Namespace) -> str | None:
    """``--teacher_hub_id`` when given, else a Hub-id teacher; a local path never."""
    hub_id = getattr(args, "teacher_hub_id", None)
    if hub_id and HUB_ID.fullmatch(hub_id):
        return hub_id
    if hub_id:  # the weights are saved by now: a typo costs the metadata, not the run
        logger.warning("--teacher_hub_id %r is not a Hub id (user-or-org/name): the card names "
                       "no base_model.", hub_id)
        return None
    teacher = getattr(args, "teacher_model_name_or_path", None)
    return teacher if is_hub_id(teacher) else None


# ----------------------------------------------------------------------------- networks
def generator_width(generator) -> str:
    """``ngf 24``, or a compressed generator's per-stage widths (``channels 16_16_32_...``)."""
    config = generator.config
    if config.get("ngf") is not None:
        return f"ngf {config['ngf']}"
    return "channels " + "_".join(str(c) for c in config.get("channels", ()))


def profile(name: str, model, resolution: int) -> dict:
    return {"name": name, "params": count_parameters(model),
            "macs": count_macs(model, resolution)}


def discriminator_description(run, args, unwrap: Callable = lambda module: module) -> str:
    """One line on the discriminator(s) trained with the generator (used in training only); it
    says "shrunk" only when they are narrower than the teacher's (or, when the teacher's is
    unknown, than the reference PatchGAN's ndf 64)."""
    discriminator = unwrap(next(iter(run.discriminators.values())))
    count, ndf = len(run.discriminators), discriminator.config.ndf
    line = (f"Trained against {count} PatchGAN discriminator{'s' if count > 1 else ''} with "
            f"ndf {ndf} ({count_parameters(discriminator) / 1e6:.3f}M parameters each; used in "
            "training only")
    if not run.teachers:
        return line + ")."
    teacher_ndf = recipes.teacher_discriminator_ndf(
        getattr(args, "teacher_discriminator_path", None) or args.teacher_model_name_or_path)
    reference = (f"the teacher's ndf {teacher_ndf}" if teacher_ndf is not None
                 else "the reference PatchGAN's ndf 64")
    if ndf < (teacher_ndf or 64):
        return line + f"; narrower than {reference}: shrunk with the student, as the paper " \
                      "recommends)."
    return line + f"; as wide as or wider than {reference}: not shrunk)."


# ----------------------------------------------------------------------------- the run's card
def run_card(run, args: argparse.Namespace, generators: Mapping[str, Any], command: str, *,
             teacher_name: str | None = None, sample: str | None = None,
             sample_columns: str = "", metrics: Mapping[str, Any] | None = None,
             unwrap: Callable = lambda module: module) -> ModelCard:
    """The card of a finished run (``run``: a :class:`wkd_hf.run.GANRun`)."""
    config, student, is_cycle = run.config, generators["a2b"], run.config.mode == "cycle"
    distilling = bool(run.teachers)
    family = "CycleGAN" if is_cycle else "pix2pix"
    profiles = []
    if distilling:
        teacher = run.teachers["a2b"]
        profiles.append(profile(f"teacher ({type(teacher).__name__}, "
                                f"{generator_width(teacher)})", teacher, args.resolution))
    profiles.append(profile(f"{'student' if distilling else 'generator'} "
                            f"({type(student).__name__}, {generator_width(student)})",
                            student, args.resolution))
    base_model = base_model_for(args) if distilling else None
    task = task_title(args, config.mode)
    name = Path(args.output_dir).name
    return build_model_card(
        model_name=name, repo_id=args.hub_model_id or f"./{name}",
        repo_is_local=not args.hub_model_id, class_name=type(student).__name__, task=task,
        intro=default_intro(task, teacher_name if distilling else None, base_model, family,
                            config.uses_teacher, uses_wavelet_term(config)),
        profiles=profiles, resolution=args.resolution,
        command=recipe_command(command, command_replacements(args, base_model)),
        data_description=data_description(args, config.mode), teacher=teacher_name,
        base_model=base_model, datasets=hub_datasets(args),
        wkd_settings=method_settings(config) if distilling else None, metrics=metrics,
        discriminator_description=discriminator_description(run, args, unwrap),
        mode_description=mode_description(config, generator_width(student), distilling),
        sample_image=sample, sample_columns=sample_columns,
        subfolder=CYCLE_SUBFOLDERS["a2b"] if is_cycle else None,
        tags=card_tags(config, distilling))


def write_run_card(output_dir: str | os.PathLike, run, args: argparse.Namespace,
                   generators: Mapping[str, Any], command: str, **kwargs) -> Path:
    """Write the run's ``README.md`` (see :func:`run_card`); returns its path."""
    path = Path(output_dir) / "README.md"
    run_card(run, args, generators, command, **kwargs).save(path)
    return path


# ----------------------------------------------------------------------------- args.json
def inapplicable_args(args: argparse.Namespace, config, generator) -> set[str]:
    """Arguments that did not shape this run (its mode, architecture, losses, schedule)."""
    get = vars(args).get
    drop = set()
    if config.mode == "cycle":
        drop |= {"direction", "lambda_recon", "source_column", "target_column"}
    else:
        drop |= set(CYCLE_ONLY)
        drop |= {"source_column", "target_column"} if config.mode != "paired" else \
            {"domain_a_column", "domain_b_column"}
    if "num_downs" in generator.config:  # a U-Net
        drop |= {"n_blocks", "block_type", "student_n_blocks", "student_block_type"}
    else:
        drop.add("num_downs")
    if not uses_wavelet_term(config):
        drop |= {"wkd_wave", "wkd_levels", "wkd_distance", "lambda_wkd"}
    if config.kd_feature_weight <= 0:
        drop.add("kd_feature_layers")
    drop.add("lr_decay_steps" if get("lr_scheduler") != "pix2pix_linear" else "lr_warmup_steps")
    if not get("streaming"):
        drop.add("shuffle_buffer_size")
    if not get("push_to_hub"):
        drop |= {"hub_private_repo", "train_if_hub_unreachable"}
    if get("student_macs_budget") is None and get("student_speedup") is None:
        drop |= {"student_macs_budget", "student_speedup"}
    return drop


def applicable_args(args: argparse.Namespace, config, generator) -> dict[str, Any]:
    """``public_args`` (no token) without the arguments that did not apply to this run."""
    drop = inapplicable_args(args, config, generator)
    return {k: v for k, v in public_args(args).items() if k not in drop}


def save_applicable_args(args: argparse.Namespace, config, generator,
                         output_dir: str | os.PathLike) -> Path:
    """Write the final folder's ``args.json`` (checkpoints keep every argument, for resuming)."""
    path = Path(output_dir) / ARGS_FILE
    path.write_text(json.dumps(applicable_args(args, config, generator), indent=2,
                               sort_keys=True, default=str))
    return path
