"""One training run from start to exported folder, shared by ``train_teacher.py`` and
``distill.py``: set-up (checks, accelerator, output folder lock), data, the resumable loop, export
(``save_pretrained`` folders, validation grid, model card) and the optional Hub upload.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from torch import nn

from . import recipes
from .cards import save_applicable_args, write_run_card
from .checkpointing import (
    LoopState,
    agreed_resume_checkpoint,
    check_resumable,
    checkpoint_step,
    disk_full_as_error,
    list_checkpoints,
    load_run_state,
    save_run_state,
)
from .data import TooManyBadImagesError
from .distillation import WKDConfig
from .distributed import sync_batchnorm
from .errors import WKDError
from .hub import (
    check_hub_reachable,
    prepare_hub_repo,
    push_output_dir,
)
from .hub_access import HubUnreachableError
from .launcher_record import command_with_launcher_settings, record_launcher_settings
from .metrics.paired import evaluate_paired
from .names import CYCLE_DISCRIMINATORS, CYCLE_SUBFOLDERS
from .output_folders import begin_export, check_new_run_output, end_export
from .precision import (
    accelerator_autocast,
    autocast_like_prepared,
    compile_like_prepared,
    cpu_precision_advice,
)
from .processes import (
    lock_output_dir,
    mark_stopping,
    release_output_dirs,
    stop_cause,
    stop_with_launcher,
)
from .run_record import command_line, public_args
from .script_args import (
    add_data_args,
    add_evaluation_args,
    add_state_args,
    add_training_args,
    check_args,
)
from .space.writer import create_space, push_run_space
from .training import (
    GANTrainingSetup,
    NonFiniteLossError,
    build_accelerator,
    build_adam,
    build_lr_scheduler,
    run_gan_training,
    steps_for_epochs,
    stopped_message,
)
from .validation import check_keep_best, keep_best_generator, validation_scores

logger = get_logger(__name__)

def add_common_args(parser: argparse.ArgumentParser) -> None:
    add_data_args(parser)
    add_training_args(parser)
    add_state_args(parser)
    add_evaluation_args(parser)


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
    distiller: nn.Module | None = None
    validation_batch: dict | None = None
    validation_loader: torch.utils.data.DataLoader | None = None

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
        if getattr(args, "sync_batchnorm", False):
            run.generators = sync_batchnorm(run.generators, acc.num_processes, acc.device)
            run.discriminators = sync_batchnorm(run.discriminators, acc.num_processes, acc.device)
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
        args.max_train_steps = args.max_train_steps or steps_for_epochs(
            args.num_train_epochs, len(loader), args.gradient_accumulation_steps)
        schedulers = [build_lr_scheduler(o, args.lr_scheduler, args.max_train_steps,
                                         args.lr_decay_steps, args.lr_warmup_steps)
                      for o in (optimizer_g, optimizer_d)]
        # The distiller holds the teachers and every loss tensor (DWT filters, adapters):
        # moving it puts all of them where the batch lives.
        self.distiller = distiller_factory(run).to(acc.device)
        for teacher in self.distiller._teachers():  # as the students are prepared: autocast
            autocast_like_prepared(teacher, accelerator_autocast(acc))  # with fp32 outputs,
            compile_like_prepared(teacher, acc)  # and torch.compile with --dynamo_backend
        pools = getattr(self.distiller, "pools", {})  # our state: JSON + safetensors, no pickle
        acc.register_save_state_pre_hook(lambda models, weights, folder: save_run_state(
            folder, acc, self.state, schedulers, pools, args))
        batch = recipes.first_batch(data.validation_loader)  # before resuming: it draws RNG
        self.validation_batch = recipes.move_batch(batch, acc.device) if batch else None
        self.validation_loader = data.validation_loader
        check_keep_best(args, self.validation_batch, self.distiller)
        self._resume(schedulers, pools)
        acc.init_trackers(Path(self.script).stem, config=_tracker_config(args))
        modules = [*run.generators.values(), *run.discriminators.values(), *run.adapters.values()]
        setup = GANTrainingSetup(self.distiller, optimizer_g, optimizer_d, schedulers, loader,
                                 modules, discriminators=list(run.discriminators.values()))
        logger.info(f"Training to step {args.max_train_steps} on {acc.num_processes} process(es)",
                    main_process_only=True)
        run_gan_training(acc, setup, args, self.state, self._validate)

    def _resume(self, schedulers: list, pools: dict) -> None:
        path = agreed_resume_checkpoint(self.accelerator, self.args.output_dir,
                                        self.args.resume_from_checkpoint)
        if path is None:
            return
        check_resumable(path, self.args)  # before accelerate opens any of its pickles
        try:
            self.accelerator.load_state(str(path))
        except (RuntimeError, KeyError, ValueError) as error:  # e.g. an edited args.json
            first = (str(error).strip().splitlines() or [type(error).__name__])[-1].strip()
            raise WKDError(f"{path} does not fit this run's models ({first[:200]}): was its "
                           "args.json edited? Resume with the settings it was written with, or "
                           "start a new --output_dir.") from None
        load_run_state(path, self.accelerator, self.state, schedulers, pools)
        if self.state.global_step != checkpoint_step(path):
            raise WKDError(f"{path} holds step {self.state.global_step}, not "
                           f"{checkpoint_step(path)}: the checkpoint is inconsistent.")
        logger.info(f"Resumed from {path} at step {self.state.global_step}",
                    main_process_only=True)

    def _validate(self, step: int) -> None:
        self._validated_step = step
        if self.validation_batch is None or not self.accelerator.is_main_process:
            return
        previews = self.distiller.preview(self.validation_batch)
        recipes.save_previews(previews, Path(self.args.output_dir) / "validation", f"step-{step}")
        recipes.log_previews(self.accelerator, previews, step)
        batches = (self.validation_loader if self.validation_loader is not None
                   else [self.validation_batch])
        with torch.random.fork_rng(devices=[]):  # validation leaves training's RNG untouched
            scores = validation_scores(self.distiller, batches, self.accelerator)
        if scores:
            self.accelerator.log({f"validation/{k}": v for k, v in scores.items()}, step=step)
            logger.info("validation at step %d: %s", step,
                        ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        keep_best_generator(self.args, self.distiller, scores, step, self.accelerator)

    # ------------------------------------------------------------------ export
    def export(self, run: GANRun, data: recipes.TrainingData, teacher_name: str | None,
               save_method_config: bool = True) -> None:
        """Write the loadable output folder (main process), then upload it if asked."""
        acc, args = self.accelerator, self.args
        acc.wait_for_everyone()
        if getattr(self, "_validated_step", None) != self.state.global_step:
            self._validate(self.state.global_step)  # the trackers get the final validation too
        if acc.is_main_process:
            out = Path(args.output_dir)
            kept = ", ".join(c.name for c in list_checkpoints(out)) or "none"
            with disk_full_as_error(f"the final model into {out}", f" The checkpoints ({kept}) "
                                    "are intact: free some space and resume with "
                                    "--resume_from_checkpoint latest."):
                generators = {k: acc.unwrap_model(m) for k, m in run.generators.items()}
                begin_export(out)  # until end_export, loading the folder is refused
                for key, generator in generators.items():
                    generator.save_pretrained(
                        _subdir(out, key, run.is_cycle, CYCLE_SUBFOLDERS))
                for key, discriminator in run.discriminators.items():
                    acc.unwrap_model(discriminator).save_pretrained(
                        out / (CYCLE_DISCRIMINATORS[key] if run.is_cycle
                               else "discriminator"))
                if save_method_config:
                    run.config.save(out)
                sample = self._export_samples(out)
                metrics = (self._metrics(generators, data) if run.config.mode == "paired"
                           else self._teacher_distances())
                write_run_card(out, run, args, generators, self.command,
                               teacher_name=teacher_name, sample=sample, metrics=metrics,
                               sample_columns=getattr(self, "_sample_columns", ""),
                               unwrap=acc.unwrap_model)
                # last: it describes the weights written above (only the arguments that applied)
                save_applicable_args(args, run.config, generators["a2b"], out)
                end_export(out)
            logger.info(f"Wrote {out}", main_process_only=True)
        acc.wait_for_everyone()
        acc.end_training()
        if args.push_to_hub and acc.is_main_process:
            try:
                push_output_dir(args.output_dir, args.hub_model_id, token=args.hub_token,
                                private=args.hub_private_repo)
                if getattr(args, "hub_space_id", None):
                    url = push_run_space(args.output_dir, args, self.validation_batch)
                    logger.info(f"Wrote the Space {url}", main_process_only=True)
            except HubUnreachableError as error:
                raise SystemExit(f"error: {error}\nThe local output in {args.output_dir} is "
                                 "complete.") from None

    def _export_samples(self, out: Path) -> str | None:
        if self.validation_batch is None:
            return None
        previews = self.distiller.preview(self.validation_batch)
        paths = recipes.save_previews(previews, out, "samples")
        self._sample_columns = " | ".join(next(iter(previews.values())))
        return next(iter(paths.values())).name

    def _teacher_distances(self) -> dict[str, str]:
        """Unpaired runs: the (a2b) student's L1 and band distances to its teacher on the
        validation images ({} for a teacher: no target to compare with)."""
        if self.validation_batch is None:
            return {}
        batches = (self.validation_loader if self.validation_loader is not None
                   else [self.validation_batch])
        with torch.random.fork_rng(devices=[]):
            scores = validation_scores(self.distiller, batches, self.accelerator)
        return {f"validation {k} (A -> B)": f"{v:.4f}" for k, v in scores.items()}

    def _metrics(self, generators, data) -> dict[str, str]:
        if data.validation_loader is None or self.validation_batch is None:
            if getattr(self.args, "keep_best", None):
                logger.warning("--keep_best %s: no validation images, so no best/ model was "
                               "kept", self.args.keep_best, main_process_only=True)
            return {}  # no readable validation image (already warned)
        scores = evaluate_paired(generators["a2b"], data.validation_loader, self.accelerator.device)
        keep_best_generator(self.args, self.distiller, scores, self.state.global_step,
                            self.accelerator)
        return {f"validation {k}": f"{v:.4f}" for k, v in scores.items()}


USER_ERRORS = (ValueError, OSError, WKDError, NonFiniteLossError, TooManyBadImagesError)
_session: RunSession | None = None  # the run in progress, for run_cli's "stopped at step N"


PEER_GONE_SIGNS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe")


def peer_gone(error: BaseException) -> bool:
    """True when a collective failed because another rank exited (its own error said why)."""
    import torch.distributed as dist

    distributed = isinstance(error, getattr(dist, "DistError", ())) or "gloo" in str(error)
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 and (
        distributed or any(sign in str(error) for sign in PEER_GONE_SIGNS))


def run_cli(main: Callable[[argparse.Namespace], None],
            parse_args: Callable[[], argparse.Namespace]) -> int:
    """Run a script's ``main``: a mistake in the inputs (bad data, teacher, path, Hub access, a
    NaN loss) ends with one ``error:`` line and exit code 1 instead of a library traceback.
    ``WKD_HF_TRACEBACK=1`` shows the traceback. Ctrl-C, SIGTERM or the death of the
    ``accelerate launch`` process stop the run with one line and exit code 130."""
    args = parse_args()
    stop_with_launcher()
    stopped: KeyboardInterrupt | None = None
    try:
        main(args)
    except KeyboardInterrupt as interrupt:
        if os.environ.get("WKD_HF_TRACEBACK"):
            raise
        stopped = interrupt  # said below, once the loop's progress bar is gone with the traceback
    except USER_ERRORS as error:
        mark_stopping()
        if os.environ.get("WKD_HF_TRACEBACK"):
            raise
        print(f"error: {error}\n(set WKD_HF_TRACEBACK=1 to see the traceback)", file=sys.stderr)
        return 1
    except RuntimeError as error:  # torch.distributed's DistError and gloo's errors among them
        mark_stopping()
        if os.environ.get("WKD_HF_TRACEBACK") or not peer_gone(error):
            raise
        print(f"error: process {os.environ.get('RANK', '?')} stopped because another process of "
              "this run ended: its error line is above.", file=sys.stderr)
        return 1
    finally:
        release_output_dirs()
    if stopped:
        step = _session.state.global_step if _session else 0
        output_dir = _session.args.output_dir if _session else None
        print("\n" + stopped_message(output_dir, step, stop_cause(stopped)), file=sys.stderr)
        return 130
    return 0


def prepare_run(args: argparse.Namespace, script: str, argv: list[str] | None = None
                ) -> RunSession:
    """Check the arguments, build the accelerator, lock ``output_dir`` for this run (main
    process). ``args.json`` is written into each checkpoint and, at export, next to the final
    weights, so the folder's ``args.json`` always describes the weights beside it."""
    global _session
    check_args(args)
    accelerator = build_accelerator(args)
    record_launcher_settings(args, accelerator)
    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
        lock_output_dir(args.output_dir)
        _check_fresh_output_dir(args)
        if args.push_to_hub:
            _prepare_hub_repo(args)
        if args.hub_token:
            logger.warning(TOKEN_WARNING)
    logger.info(accelerator.state, main_process_only=True)
    if advice := cpu_precision_advice(accelerator):
        logger.warning(advice, main_process_only=True)
    _session = RunSession(args, accelerator, script, command_with_launcher_settings(
        command_line(script, argv, secrets=[args.hub_token]), args))
    return _session


TOKEN_WARNING = ("--hub_token on the command line stays in your shell history, and "
                 "`accelerate launch` (without --quiet) prints its whole command, token included, "
                 "when the run fails: log in once with `hf auth login` or set HF_TOKEN instead.")


def _check_fresh_output_dir(args: argparse.Namespace) -> None:
    """A new run (no --resume_from_checkpoint) in a folder holding an earlier run's checkpoints
    would overwrite some of them and leave ``latest`` pointing at the others: refuse, unless
    ``--overwrite_output_dir`` asks to delete them."""
    old = list_checkpoints(args.output_dir)
    if args.resume_from_checkpoint:
        return
    if not old:
        check_new_run_output(args.output_dir, getattr(args, "teacher_model_name_or_path", None),
                             getattr(args, "overwrite_output_dir", False))
        return
    names = ", ".join(path.name for path in old)
    if not getattr(args, "overwrite_output_dir", False):
        raise WKDError(f"--output_dir {args.output_dir} holds checkpoints of an earlier run "
                       f"({names}). Resume it with --resume_from_checkpoint latest, choose another "
                       "--output_dir, or pass --overwrite_output_dir to delete them.")
    logger.warning(f"--overwrite_output_dir: deleting the earlier run's {names}",
                   main_process_only=True)
    for path in old:
        shutil.rmtree(path)


def _prepare_hub_repo(args: argparse.Namespace) -> None:
    """Create (or open) the Hub repo before training. An unreachable Hub stops the run unless
    ``--train_if_hub_unreachable``; a bad token or repo name always stops it."""
    try:
        check_hub_reachable()
    except HubUnreachableError as error:
        if not args.train_if_hub_unreachable:
            raise HubUnreachableError(f"{error} Checked before training: pass "
                                      "--train_if_hub_unreachable to train anyway.") from None
        logger.warning(f"{error} Training anyway (--train_if_hub_unreachable).")
        return
    url = prepare_hub_repo(args.hub_model_id, token=args.hub_token, private=args.hub_private_repo)
    logger.info(f"Will upload to {url}", main_process_only=True)
    if getattr(args, "hub_space_id", None):  # a bad Space name or token fails before training too
        _, url = create_space(args.hub_space_id, args.hub_token, args.hub_private_repo)
        logger.info(f"Will write the Space {url}", main_process_only=True)


def _subdir(out: Path, key: str, is_cycle: bool, names: dict[str, str]) -> Path:
    return out / names[key] if is_cycle else out


def _tracker_config(args: argparse.Namespace) -> dict:
    return {k: v for k, v in public_args(args).items()
            if isinstance(v, (int, float, str, bool)) and v is not None}
