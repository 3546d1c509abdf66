"""One training run from start to exported folder, shared by ``train_teacher.py`` and
``distill.py``: set-up (checks, accelerator, ``args.json``), data, the resumable loop, export
(``save_pretrained`` folders, validation grid, model card) and the optional Hub upload.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import Accelerator
from accelerate.logging import get_logger
from torch import nn

from . import recipes
from .data import TooManyBadImagesError
from .distillation import WKDConfig
from .hub import HubUnavailableError, build_model_card, push_output_dir
from .metrics.efficiency import count_macs, count_parameters
from .metrics.paired import evaluate_paired
from .script_args import (
    add_data_args,
    add_state_args,
    add_training_args,
    check_args,
    command_line,
    public_args,
    save_args,
)
from .training import (
    GANTrainingSetup,
    LoopState,
    NonFiniteLossError,
    build_accelerator,
    build_adam,
    build_lr_scheduler,
    checkpoint_step,
    resolve_resume_checkpoint,
    run_gan_training,
    steps_for_epochs,
)

logger = get_logger(__name__)

MODE_DESCRIPTIONS = {
    "paired": "Trained on paired data: L1 to the dataset target, a shrunk conditional PatchGAN, "
              "and the wavelet (high-band) distillation term against the teacher.",
    "teacher_target": "Unpaired data, GAN Compression's recipe: the teacher's output is the "
                      "target (L1 + GAN) plus the wavelet distillation term.",
    "cycle": "Unpaired data, the paper's recipe: two students and two shrunk discriminators with "
             "the full CycleGAN objective plus the wavelet distillation term on each direction.",
}


def add_common_args(parser: argparse.ArgumentParser) -> None:
    add_data_args(parser)
    add_training_args(parser)
    add_state_args(parser)


@dataclass
class GANRun:
    """The networks of a run, keyed by direction (``a2b``, and ``b2a`` for CycleGAN)."""

    config: WKDConfig
    generators: dict[str, nn.Module]
    discriminators: dict[str, nn.Module]
    teachers: dict[str, nn.Module] | None = None
    adapters: dict[str, nn.Module] = field(default_factory=dict)

    @property
    def is_cycle(self) -> bool:
        return self.config.mode == "cycle"


@dataclass
class RunSession:
    args: argparse.Namespace
    accelerator: Accelerator
    script: str
    command: str
    state: LoopState = field(default_factory=LoopState)
    distiller: object = None
    validation_batch: dict | None = None

    # ------------------------------------------------------------------ data
    def build_data(self, mode: str) -> recipes.TrainingData:
        """Paired loaders for ``paired``, one domain for ``teacher_target``, both for ``cycle``."""
        with self.accelerator.main_process_first():
            if mode == "paired":
                data = recipes.build_paired_data(self.args)
            elif mode == "cycle":
                data = recipes.build_unpaired_data(self.args, "AB")
            else:
                data = recipes.build_unpaired_data(self.args, self.args.direction[0])
        logger.info(f"Data: {data.description}", main_process_only=True)
        return data

    # ------------------------------------------------------------------ training
    def train(self, run: GANRun, distiller_factory: Callable[[GANRun], object],
              data: recipes.TrainingData) -> None:
        """Prepare, resume if asked, and run the loop to ``max_train_steps``."""
        acc, args = self.accelerator, self.args
        keys = list(run.generators)
        generator_params = itertools.chain(*(m.parameters() for m in run.generators.values()),
                                           *(m.parameters() for m in run.adapters.values()))
        discriminator_params = itertools.chain(*(m.parameters() for m in run.discriminators.values()))
        optimizer_g, optimizer_d = build_adam(generator_params, args), build_adam(
            discriminator_params, args)
        adapter_keys = list(run.adapters)
        prepared = acc.prepare(*run.generators.values(), *run.discriminators.values(),
                               *run.adapters.values(), optimizer_g, optimizer_d, data.train_loader)
        n = len(keys)
        run.generators = dict(zip(keys, prepared[:n]))
        run.discriminators = dict(zip(keys, prepared[n:2 * n]))
        run.adapters = dict(zip(adapter_keys, prepared[2 * n:2 * n + len(adapter_keys)]))
        optimizer_g, optimizer_d, loader = prepared[-3:]
        for teacher in (run.teachers or {}).values():
            teacher.to(acc.device)
        args.max_train_steps = args.max_train_steps or steps_for_epochs(
            args.num_train_epochs, len(loader), args.gradient_accumulation_steps)
        schedulers = [build_lr_scheduler(o, args.lr_scheduler, args.max_train_steps,
                                         args.lr_decay_steps) for o in (optimizer_g, optimizer_d)]
        self.distiller = distiller_factory(run)
        acc.register_for_checkpointing(self.state, *schedulers,
                                       *getattr(self.distiller, "pools", {}).values())
        batch = recipes.first_batch(data.validation_loader)  # before resuming: it draws RNG
        self.validation_batch = recipes.move_batch(batch, acc.device) if batch else None
        self._resume()
        acc.init_trackers(Path(self.script).stem, config=_tracker_config(args))
        modules = [*run.generators.values(), *run.discriminators.values(), *run.adapters.values()]
        setup = GANTrainingSetup(self.distiller, optimizer_g, optimizer_d, schedulers, loader,
                                 modules)
        logger.info(f"Training to step {args.max_train_steps} on {acc.num_processes} process(es)",
                    main_process_only=True)
        run_gan_training(acc, setup, args, self.state, self._validate)

    def _resume(self) -> None:
        path = resolve_resume_checkpoint(self.args.output_dir, self.args.resume_from_checkpoint)
        if path is None:
            return
        self.accelerator.load_state(str(path))
        if self.state.global_step != checkpoint_step(path):
            raise RuntimeError(f"{path} holds step {self.state.global_step}, not "
                               f"{checkpoint_step(path)}: the checkpoint is inconsistent.")
        logger.info(f"Resumed from {path} at step {self.state.global_step}",
                    main_process_only=True)

    def _validate(self, step: int) -> None:
        if self.validation_batch is None or not self.accelerator.is_main_process:
            return
        previews = self.distiller.preview(self.validation_batch)
        recipes.save_previews(previews, Path(self.args.output_dir) / "validation", f"step-{step}")
        recipes.log_previews(self.accelerator, previews, step)

    # ------------------------------------------------------------------ export
    def export(self, run: GANRun, data: recipes.TrainingData, teacher_name: str | None,
               save_method_config: bool = True) -> None:
        """Write the loadable output folder (main process), then upload it if asked."""
        acc, args = self.accelerator, self.args
        acc.wait_for_everyone()
        if acc.is_main_process:
            out = Path(args.output_dir)
            generators = {k: acc.unwrap_model(m) for k, m in run.generators.items()}
            for key, generator in generators.items():
                generator.save_pretrained(_subdir(out, key, run.is_cycle, recipes.CYCLE_SUBFOLDERS))
            for key, discriminator in run.discriminators.items():
                acc.unwrap_model(discriminator).save_pretrained(
                    out / (recipes.CYCLE_DISCRIMINATORS[key] if run.is_cycle else "discriminator"))
            if save_method_config:
                run.config.save(out)
            sample = self._export_samples(out)
            metrics = self._metrics(generators, data) if run.config.mode == "paired" else {}
            self._write_card(run, generators, teacher_name, sample, metrics)
            logger.info(f"Wrote {out}", main_process_only=True)
        acc.wait_for_everyone()
        acc.end_training()
        if args.push_to_hub and acc.is_main_process:
            try:
                push_output_dir(args.output_dir, args.hub_model_id, token=args.hub_token,
                                private=args.hub_private_repo)
            except HubUnavailableError as error:
                raise SystemExit(f"error: {error}\nThe local output in {args.output_dir} is "
                                 "complete.") from None

    def _export_samples(self, out: Path) -> str | None:
        if self.validation_batch is None:
            return None
        previews = self.distiller.preview(self.validation_batch)
        paths = recipes.save_previews(previews, out, "samples")
        self._sample_columns = " | ".join(next(iter(previews.values())))
        return next(iter(paths.values())).name

    def _metrics(self, generators, data) -> dict[str, str]:
        if data.validation_loader is None or self.validation_batch is None:
            return {}  # no readable validation image (already warned)
        scores = evaluate_paired(generators["a2b"], data.validation_loader, self.accelerator.device)
        return {f"validation {k}": f"{v:.4f}" for k, v in scores.items()}

    def _write_card(self, run: GANRun, generators, teacher_name, sample, metrics) -> None:
        args = self.args
        resolution = args.resolution
        profiles = []
        if run.teachers:
            teacher = run.teachers["a2b"]
            profiles.append(_profile(f"teacher ({type(teacher).__name__}, "
                                     f"ngf {teacher.config.ngf})", teacher, resolution))
        student = generators["a2b"]
        profiles.append(_profile(f"{'student' if run.teachers else 'generator'} "
                                 f"({type(student).__name__}, ngf {student.config.ngf})",
                                 student, resolution))
        card = build_model_card(
            model_name=Path(args.output_dir).name, repo_id=args.hub_model_id or
            f"your-username/{Path(args.output_dir).name}", class_name=type(student).__name__,
            task=_task(args), profiles=profiles,
            resolution=resolution, command=self.command, data_description=recipes.describe(args),
            teacher=teacher_name, datasets=[args.dataset_name] if args.dataset_name else [],
            wkd_settings=_method_settings(run.config) if run.teachers else None, metrics=metrics,
            discriminator_description=_discriminator_description(run, self.accelerator),
            mode_description=MODE_DESCRIPTIONS[run.config.mode] if run.teachers else "",
            sample_image=sample, sample_columns=getattr(self, "_sample_columns", ""),
            subfolder=recipes.CYCLE_SUBFOLDERS["a2b"] if run.is_cycle else None,
            extra_tags=[run.config.mode, "pix2pix" if not run.is_cycle else "cyclegan"])
        card.save(Path(args.output_dir) / "README.md")


USER_ERRORS = (ValueError, OSError, NonFiniteLossError, TooManyBadImagesError)


def run_cli(main: Callable[[argparse.Namespace], None],
            parse_args: Callable[[], argparse.Namespace]) -> int:
    """Run a script's ``main``: a mistake in the inputs (bad data, teacher, path, Hub access, a
    NaN loss) ends with one ``error:`` line and exit code 1 instead of a library traceback.
    ``WKD_HF_TRACEBACK=1`` shows the traceback."""
    args = parse_args()
    try:
        main(args)
    except USER_ERRORS as error:
        if os.environ.get("WKD_HF_TRACEBACK"):
            raise
        print(f"error: {error}\n(set WKD_HF_TRACEBACK=1 to see the traceback)", file=sys.stderr)
        return 1
    return 0


def prepare_run(args: argparse.Namespace, script: str, argv: list[str] | None = None
                ) -> RunSession:
    """Check the arguments, build the accelerator, write ``args.json`` (without the token)."""
    check_args(args)
    accelerator = build_accelerator(args)
    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
        save_args(args, args.output_dir)
    logger.info(accelerator.state, main_process_only=True)
    return RunSession(args, accelerator, script, command_line(script, argv))


def _subdir(out: Path, key: str, is_cycle: bool, names: dict[str, str]) -> Path:
    return out / names[key] if is_cycle else out


def _profile(name: str, model: nn.Module, resolution: int) -> dict:
    return {"name": name, "params": count_parameters(model),
            "macs": count_macs(model, resolution)}


CYCLE_ONLY = ("lambda_cycle", "lambda_identity", "pool_size")
FEATURE_KD_ONLY = ("kd_feature_layers",)


def _method_settings(config: WKDConfig) -> dict:
    """The settings that shaped this run (CycleGAN-only or feature-KD-only ones dropped)."""
    settings = config.to_dict()
    drop = (() if config.mode == "cycle" else CYCLE_ONLY) + (
        () if config.kd_feature_weight > 0 else FEATURE_KD_ONLY)
    return {k: v for k, v in settings.items() if k not in drop}


def _discriminator_description(run: GANRun, accelerator: Accelerator) -> str:
    """One line on the discriminator(s) trained with the generator (used in training only)."""
    discriminator = accelerator.unwrap_model(next(iter(run.discriminators.values())))
    count = len(run.discriminators)
    return (f"Trained against {count} PatchGAN discriminator{'s' if count > 1 else ''} with "
            f"ndf {discriminator.config.ndf} ({count_parameters(discriminator) / 1e6:.3f}M "
            "parameters each; used in training only"
            + ("; shrunk with the student as the paper recommends)." if run.teachers else ")."))


def _task(args: argparse.Namespace) -> str:
    data = args.dataset_name or Path(args.train_data_dir.rstrip("/")).parent.name or "custom data"
    return f"{data} ({args.direction})"


def _tracker_config(args: argparse.Namespace) -> dict:
    return {k: v for k, v in public_args(args).items()
            if isinstance(v, (int, float, str, bool)) and v is not None}
