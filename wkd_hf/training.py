"""What every training script shares: the accelerator, checkpoints, schedules, the GAN step loop.

Checkpoints are accelerate's own ``save_state`` folders (models, optimizers, RNG states, and
every object registered with ``register_for_checkpointing``), written under a temporary name and
renamed when complete, so a run killed mid-save never leaves a ``checkpoint-N`` that does not load.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from torch import Tensor, nn
from tqdm.auto import tqdm

logger = get_logger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; the message names the loss, the step and the last checkpoint."""


def build_accelerator(args) -> Accelerator:
    """An Accelerator from the shared run arguments; seeds every RNG with ``args.seed``.

    CPU-only machines get ``cpu=True``, so ``accelerate launch --multi_gpu --num_processes 2``
    runs real two-process DDP over gloo.
    """
    report_to = None if args.report_to == "none" else args.report_to
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=report_to,
        project_config=ProjectConfiguration(
            project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        cpu=args.cpu or not torch.cuda.is_available(),
    )
    set_seed(args.seed, device_specific=True)
    return accelerator


# ----------------------------------------------------------------------------- schedules
def build_lr_scheduler(optimizer: torch.optim.Optimizer, name: str, max_steps: int,
                       decay_steps: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """``constant``, or pix2pix's ``linear``: constant, then linear decay to 0 over the last
    ``decay_steps`` steps (default: half the run, as pix2pix's 100 + 100 epochs)."""
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    if name != "linear":
        raise ValueError(f"lr_scheduler={name!r} must be 'constant' or 'linear'.")
    decay = max_steps // 2 if decay_steps is None else decay_steps
    if not 0 <= decay <= max_steps:
        raise ValueError(f"lr_decay_steps={decay} must lie in [0, max_train_steps={max_steps}].")
    constant = max_steps - decay
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 1.0 - max(0, step - constant) / float(decay + 1))


def build_adam(parameters: Iterable[nn.Parameter], args) -> torch.optim.Adam:
    """pix2pix's Adam (lr 2e-4, betas (0.5, 0.999)) from the run arguments."""
    return torch.optim.Adam(parameters, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2))


# ----------------------------------------------------------------------------- checkpoints
def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete ``checkpoint-N`` folders in ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found)]


def checkpoint_step(path: str | os.PathLike) -> int:
    match = CHECKPOINT_PATTERN.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a checkpoint folder (expected a name like checkpoint-500).")
    return int(match.group(1))


def resolve_resume_checkpoint(output_dir: str, resume_from: str | None) -> Path | None:
    """``latest`` -> the newest complete checkpoint (None when there is none), a path -> itself."""
    if not resume_from:
        return None
    if resume_from == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            logger.warning(f"--resume_from_checkpoint latest: no checkpoint in {output_dir}; "
                           "starting a new run.", main_process_only=True)
            return None
        return checkpoints[-1]
    path = Path(resume_from)
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {resume_from}: no such folder. Pass "
                                "'latest' or a checkpoint-N folder written by this script.")
    checkpoint_step(path)
    return path


def save_checkpoint(accelerator: Accelerator, output_dir: str, step: int,
                    total_limit: int | None = None) -> Path:
    """``accelerator.save_state`` into ``.checkpoint-N.tmp``, then an atomic rename to
    ``checkpoint-N``; keeps at most ``total_limit`` checkpoints. Every rank must call it."""
    final = Path(output_dir) / f"checkpoint-{step}"
    temporary = Path(output_dir) / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process and temporary.exists():
        shutil.rmtree(temporary)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        if total_limit is not None and total_limit > 0:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old)
        logger.info(f"Saved {final}")
    accelerator.wait_for_everyone()
    return final


@dataclass
class LoopState:
    """Where the loop is: registered for checkpointing so a resumed run continues exactly."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    skipped_nan_steps: int = 0

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state: Mapping) -> None:
        self.__dict__.update(state)


# ----------------------------------------------------------------------------- the loop
@dataclass
class GANTrainingSetup:
    """The pieces of one GAN training run that the loop drives (all already ``prepare``d)."""

    distiller: object
    generator_optimizer: torch.optim.Optimizer
    discriminator_optimizer: torch.optim.Optimizer
    schedulers: list
    dataloader: torch.utils.data.DataLoader
    trained_modules: list[nn.Module]


def _first_non_finite(loss: Tensor, logs: Mapping[str, Tensor], name: str) -> str | None:
    if torch.isfinite(loss).all():
        return None
    bad = [key for key, value in logs.items() if not torch.isfinite(value).all()]
    return ", ".join(bad) if bad else name


def _check_finite(accelerator: Accelerator, loss: Tensor, logs: Mapping[str, Tensor],
                  name: str) -> str | None:
    """The names of non-finite loss parts, agreed across ranks (None when all are finite)."""
    bad = _first_non_finite(loss, logs, name)
    if accelerator.num_processes > 1:
        flag = torch.tensor([0.0 if bad is None else 1.0], device=accelerator.device)
        if accelerator.reduce(flag, reduction="sum").item() > 0 and bad is None:
            bad = f"{name} (on another process)"
    return bad


def _mean_logs(logs: Mapping[str, Tensor]) -> dict[str, float]:
    return {key: float(value.float().mean()) for key, value in logs.items()}


def run_gan_training(accelerator: Accelerator, setup: GANTrainingSetup, args,
                     state: LoopState, on_validation: Callable[[int], None] | None = None) -> None:
    """Alternate discriminator and generator updates until ``args.max_train_steps``.

    Per batch: one generator pass (students, and the teacher once without grad), a discriminator
    update on detached fakes, then a generator update. Checkpoints every
    ``args.checkpointing_steps``; ``on_validation(step)`` every ``args.validation_steps`` (all
    ranks call it; it writes on the main process only). A NaN/Inf loss stops the run with
    :class:`NonFiniteLossError` unless ``args.skip_nan_steps`` allows skipping that batch.
    """
    loader = setup.dataloader
    progress = tqdm(total=args.max_train_steps, initial=state.global_step, desc="steps",
                    disable=not accelerator.is_local_main_process)
    while state.global_step < args.max_train_steps:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(state.epoch)
        batches = loader
        if state.batches_in_epoch:
            batches = accelerator.skip_first_batches(loader, state.batches_in_epoch)
        for batch in batches:
            state.batches_in_epoch += 1
            if batch is None:  # every sample of the batch was unreadable (already warned)
                continue
            logs = _train_step(accelerator, setup, batch, args, state)
            if not accelerator.sync_gradients or logs is None:
                continue
            for scheduler in setup.schedulers:
                scheduler.step()
            state.global_step += 1
            progress.update(1)
            logs["lr"] = setup.schedulers[0].get_last_lr()[0]
            progress.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]})
            accelerator.log(logs, step=state.global_step)
            _periodic(accelerator, args, state, on_validation)
            if state.global_step >= args.max_train_steps:
                break
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
            if state.global_step == 0 and state.epoch > 1:
                raise RuntimeError("The training data yielded no usable batch in a whole epoch; "
                                   "check --train_batch_size against the number of images.")
    progress.close()


def _periodic(accelerator: Accelerator, args, state: LoopState,
              on_validation: Callable[[int], None] | None) -> None:
    step = state.global_step
    if on_validation is not None and args.validation_steps and step % args.validation_steps == 0:
        on_validation(step)
    if args.checkpointing_steps and step % args.checkpointing_steps == 0:
        save_checkpoint(accelerator, args.output_dir, step, args.checkpoints_total_limit)


def _train_step(accelerator: Accelerator, setup: GANTrainingSetup, batch, args,
                state: LoopState) -> dict[str, float] | None:
    """One discriminator update, then one generator update against the updated discriminator
    (pix2pix's order); None when a non-finite loss was skipped."""
    distiller = setup.distiller
    with accelerator.accumulate(*setup.trained_modules):
        outputs = distiller.generate(batch)
        d_loss, d_logs = distiller.discriminator_loss(batch, outputs)
        if not _update(accelerator, setup, args, state, d_loss, d_logs, "d_loss",
                       setup.discriminator_optimizer):
            return None
        g_loss, g_logs = distiller.generator_loss(batch, outputs)
        if not _update(accelerator, setup, args, state, g_loss, g_logs, "g_loss",
                       setup.generator_optimizer):
            return None
    return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()),
            **_mean_logs(d_logs), **_mean_logs(g_logs)}


def _update(accelerator: Accelerator, setup: GANTrainingSetup, args, state: LoopState,
            loss: Tensor, logs: Mapping[str, Tensor], name: str,
            optimizer: torch.optim.Optimizer) -> bool:
    """Backward and step ``optimizer`` on a finite ``loss``; False when the batch was skipped."""
    if _skip_if_non_finite(accelerator, setup, args, state, loss, logs, name):
        return False
    accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return True


def _skip_if_non_finite(accelerator: Accelerator, setup: GANTrainingSetup, args, state: LoopState,
                        loss: Tensor, logs: Mapping[str, Tensor], name: str) -> bool:
    bad = _check_finite(accelerator, loss, logs, name)
    if bad is None:
        return False
    step = state.global_step + 1
    if state.skipped_nan_steps < args.skip_nan_steps:
        state.skipped_nan_steps += 1
        setup.generator_optimizer.zero_grad(set_to_none=True)
        setup.discriminator_optimizer.zero_grad(set_to_none=True)
        logger.warning(f"Non-finite loss ({bad}) at step {step}; skipping the batch "
                       f"({state.skipped_nan_steps}/{args.skip_nan_steps} allowed).")
        return True
    checkpoints = list_checkpoints(args.output_dir)
    last = str(checkpoints[-1]) if checkpoints else "none yet"
    raise NonFiniteLossError(
        f"Loss {bad} became non-finite (NaN/Inf) at step {step}. Nothing was updated with it; "
        f"the last good checkpoint is {last}. Try a lower --learning_rate, "
        f"--mixed_precision no, or --skip_nan_steps N to skip such batches.")


def steps_for_epochs(num_epochs: int, batches_per_epoch: int, accumulation: int) -> int:
    """Optimizer steps in ``num_epochs`` epochs of ``batches_per_epoch`` batches."""
    return num_epochs * math.ceil(batches_per_epoch / accumulation)
