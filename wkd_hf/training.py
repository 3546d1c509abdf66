"""What every training script shares: the accelerator, checkpoints, schedules, the GAN step loop.

Checkpoints (wkd_hf/checkpointing.py) are accelerate's ``save_state`` folders plus our own state
as JSON and safetensors, written under a temporary name and renamed when complete, and checked
weights-only before a resume loads them.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checkpointing import LoopState, checkpoint_step, list_checkpoints, save_checkpoint
from .errors import WKDError
from .names import DIFFUSERS_SCHEDULERS, LR_SCHEDULERS, PIX2PIX_SCHEDULER

logger = get_logger(__name__)


class NonFiniteLossError(WKDError):
    """A loss became NaN or Inf; the message names the loss, the step and the last checkpoint."""


def build_accelerator(args) -> Accelerator:
    """An Accelerator from the shared run arguments; seeds every RNG with ``args.seed``.

    ``--mixed_precision`` None leaves the choice to ``accelerate config`` / ``accelerate launch
    --mixed_precision``. The device is accelerate's choice (CUDA, MPS, XPU, ...) unless ``--cpu``;
    a machine with no accelerator at all gets ``cpu=True``, so ``accelerate launch --multi_gpu
    --num_processes 2`` runs real two-process DDP over gloo there.
    """
    report_to = None if args.report_to == "none" else args.report_to
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=report_to,
        project_config=ProjectConfiguration(
            project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, "logs"),
            save_on_each_node=getattr(args, "save_on_each_node", False)),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True,
                                                  non_blocking=pins_memory(args)),
        cpu=args.cpu or not has_accelerator_device(),
    )
    configure_logging(accelerator)
    set_seed(args.seed, device_specific=True)
    return accelerator


def pins_memory(args) -> bool:
    """Pinned training batches and non-blocking copies to the device: when training on CUDA."""
    return torch.cuda.is_available() and not getattr(args, "cpu", False)


def has_accelerator_device() -> bool:
    """Whether torch sees a CUDA, MPS or XPU device."""
    mps = getattr(torch.backends, "mps", None)
    xpu = getattr(torch, "xpu", None)
    return (torch.cuda.is_available() or bool(mps and mps.is_available())
            or bool(xpu and xpu.is_available()))


def configure_logging(accelerator: Accelerator) -> None:
    """Logs on screen as in the diffusers example scripts: INFO on the local main process,
    WARNING on the others; datasets at WARNING and diffusers at INFO there (ERROR elsewhere)."""
    import datasets
    import diffusers

    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
                        datefmt="%m/%d/%Y %H:%M:%S", level=logging.INFO)
    main = accelerator.is_local_main_process
    logging.getLogger("wkd_hf").setLevel(logging.INFO if main else logging.WARNING)
    if main:
        datasets.utils.logging.set_verbosity_warning()
        diffusers.utils.logging.set_verbosity_info()
    else:
        datasets.utils.logging.set_verbosity_error()
        diffusers.utils.logging.set_verbosity_error()


# ----------------------------------------------------------------------------- schedules


def build_lr_scheduler(optimizer: torch.optim.Optimizer, name: str, max_steps: int,
                       decay_steps: int | None = None, warmup_steps: int = 0
                       ) -> torch.optim.lr_scheduler.LambdaLR:
    """``pix2pix_linear``: pix2pix's constant rate, then linear decay to 0 over the last
    ``decay_steps`` steps (default: half the run, as pix2pix's 100 + 100 epochs). Any other name
    is diffusers' (``diffusers.optimization.get_scheduler``: ``linear`` decays from the end of
    ``warmup_steps``, ``cosine``, ``constant``, ...)."""
    if name in DIFFUSERS_SCHEDULERS:
        from diffusers.optimization import get_scheduler

        return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps,
                             num_training_steps=max_steps)
    if name != PIX2PIX_SCHEDULER:
        raise ValueError(f"--lr_scheduler {name!r} is not one of {list(LR_SCHEDULERS)}.")
    decay = max_steps // 2 if decay_steps is None else decay_steps
    if not 0 <= decay <= max_steps:
        raise ValueError(f"--lr_decay_steps {decay} must lie in [0, --max_train_steps "
                         f"{max_steps}].")
    constant = max_steps - decay
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 1.0 - max(0, step - constant) / float(decay + 1))


def build_adam(parameters: Iterable[nn.Parameter], args) -> torch.optim.Adam:
    """pix2pix's Adam (lr 2e-4, betas (0.5, 0.999)) from the run arguments."""
    return torch.optim.Adam(parameters, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2))


# ----------------------------------------------------------------------------- the loop
@dataclass
class GANTrainingSetup:
    """The pieces of one GAN training run that the loop drives (all already ``prepare``d)."""

    distiller: nn.Module
    generator_optimizer: torch.optim.Optimizer
    discriminator_optimizer: torch.optim.Optimizer
    schedulers: list
    dataloader: torch.utils.data.DataLoader
    trained_modules: list[nn.Module]
    discriminators: list[nn.Module] = field(default_factory=list)


def _first_non_finite(loss: Tensor, logs: Mapping[str, Tensor], name: str) -> str | None:
    if torch.isfinite(loss).all():
        return None
    bad = [key for key, value in logs.items() if not torch.isfinite(value).all()]
    return ", ".join(bad) if bad else name


def _check_finite(accelerator: Accelerator, loss: Tensor, logs: Mapping[str, Tensor],
                  name: str) -> str | None:
    """The names of non-finite loss parts, agreed across ranks (None when all are finite). One
    read on the host per call (a GPU sync), the cross-rank sum included."""
    if accelerator.num_processes > 1:
        here = (~torch.isfinite(loss.detach()).all()).float().reshape(1)
        if accelerator.reduce(here, reduction="sum").item() == 0:
            return None
        return _first_non_finite(loss, logs, name) or f"{name} (on another process)"
    return _first_non_finite(loss, logs, name)


def _mean_logs(logs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {key: value.detach().float().mean() for key, value in logs.items()}


def to_floats(logs: Mapping[str, Tensor]) -> dict[str, float]:
    """Scalar tensors -> floats in one device-to-host copy (one sync, not one per value)."""
    if not logs:
        return {}
    return dict(zip(logs, torch.stack(list(logs.values())).tolist()))


def _is_logging_step(args, step: int) -> bool:
    """Log (trackers, progress bar) every ``--logging_steps`` steps, at step 1 and at the end."""
    every = getattr(args, "logging_steps", 1) or 1
    return step % every == 0 or step == 1 or step >= args.max_train_steps


def run_gan_training(accelerator: Accelerator, setup: GANTrainingSetup, args,
                     state: LoopState, on_validation: Callable[[int], None] | None = None) -> None:
    """Alternate discriminator and generator updates until ``args.max_train_steps``.

    Per batch: one generator pass (students, and the teacher once without grad), then the two
    updates in ``distiller.update_order`` (see :func:`_train_step`). Checkpoints every
    ``args.checkpointing_steps``; ``on_validation(step)`` every ``args.validation_steps`` (all
    ranks call it; it writes on the main process only). A NaN/Inf loss stops the run with
    :class:`NonFiniteLossError` unless ``args.skip_nan_steps`` allows skipping that batch.
    """
    progress = tqdm(total=args.max_train_steps, initial=state.global_step, desc="steps",
                    disable=not accelerator.is_local_main_process)
    try:
        _run_loop(accelerator, setup, args, state, on_validation, progress)
    finally:  # a Ctrl-C's one line then starts on a line of its own
        progress.close()


def _run_loop(accelerator: Accelerator, setup: GANTrainingSetup, args, state: LoopState,
              on_validation: Callable[[int], None] | None, progress: tqdm) -> None:
    loader = setup.dataloader
    while state.global_step < args.max_train_steps:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(state.epoch)
        batches = loader
        if state.batches_in_epoch:
            batches = accelerator.skip_first_batches(loader, state.batches_in_epoch)
        for batch in _batches_or_explain(batches):
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
            if _is_logging_step(args, state.global_step):
                values = {**to_floats(logs), "lr": setup.schedulers[0].get_last_lr()[0]}
                progress.set_postfix({k: f"{v:.3g}" for k, v in list(values.items())[:4]})
                accelerator.log(values, step=state.global_step)
            _periodic(accelerator, args, state, on_validation)
            if state.global_step >= args.max_train_steps:
                break
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
            if state.global_step == 0 and state.epoch > 1:
                raise WKDError(NO_BATCH_MESSAGE)


def stopped_message(output_dir: str | os.PathLike | None, step: int,
                    interrupt: BaseException | None = None) -> str:
    """The one line a stopped run (Ctrl-C, or SIGTERM: ``interrupt``'s text) ends with: where it
    stopped and what ``--resume_from_checkpoint latest`` would continue from. No checkpoint is
    saved on the way out: the ranks of a multi-process run stop at different points."""
    cause = str(interrupt) if interrupt is not None and str(interrupt) else "Ctrl-C"
    checkpoints = list_checkpoints(output_dir) if output_dir else []
    if not checkpoints:
        return (f"Stopped at step {step} ({cause}). No checkpoint was saved yet "
                "(--checkpointing_steps), so --resume_from_checkpoint latest starts over.")
    latest = checkpoints[-1]
    return (f"Stopped at step {step} ({cause}). Resume with --resume_from_checkpoint latest "
            f"(from {latest.name}, step {checkpoint_step(latest)}).")


NO_BATCH_MESSAGE = ("The training data yielded no usable batch; check that the training split "
                    "keeps rows after --validation_split and --max_train_samples, that its "
                    "images are readable, and --train_batch_size against their number.")


def _batches_or_explain(batches):
    """The loader's batches; accelerate's error for an iterable that yields nothing at all
    ("Batch does not contain any data") becomes one clear :class:`WKDError`."""
    try:
        yield from batches
    except ValueError as error:
        if "does not contain any data" not in str(error):
            raise
        raise WKDError(NO_BATCH_MESSAGE) from None


def _periodic(accelerator: Accelerator, args, state: LoopState,
              on_validation: Callable[[int], None] | None) -> None:
    step = state.global_step
    if on_validation is not None and args.validation_steps and step % args.validation_steps == 0:
        on_validation(step)
    if args.checkpointing_steps and step % args.checkpointing_steps == 0:
        save_checkpoint(accelerator, args.output_dir, step, args.checkpoints_total_limit)


def _train_step(accelerator: Accelerator, setup: GANTrainingSetup, batch, args,
                state: LoopState) -> dict[str, Tensor] | None:
    """One generator pass and both updates, in ``setup.distiller.update_order``; the losses as
    detached scalar tensors (read on the host only at logging steps), or None when the batch was
    skipped for a non-finite loss.

    - ``("discriminator", "generator")`` (pix2pix): D steps on detached fakes, then G against
      the updated D.
    - ``("generator", "discriminator")`` (CycleGAN, the WKD authors): G steps with D frozen, then
      D on pooled fakes. Both losses are computed before either step (the D loss only sees
      detached fakes and D's own parameters, which the G step leaves unchanged), so both are
      checked before anything is updated.

    A skipped batch updates nothing: in pix2pix's order a generator loss that turns non-finite
    after the discriminator step restores the discriminators and their optimizer. (Batch-norm
    running statistics of the generators still saw the batch.)
    """
    distiller = setup.distiller
    with accelerator.accumulate(*setup.trained_modules), one_scaler_update(accelerator):
        outputs = distiller.generate(batch)
        if tuple(distiller.update_order) == ("generator", "discriminator"):
            losses = _generator_first(accelerator, setup, batch, args, state, outputs)
        else:
            losses = _discriminator_first(accelerator, setup, batch, args, state, outputs)
    if losses is None:
        return None
    (d_loss, d_logs), (g_loss, g_logs) = losses
    return _mean_logs({"d_loss": d_loss, "g_loss": g_loss, **d_logs, **g_logs})


def _discriminator_first(accelerator, setup, batch, args, state, outputs):
    distiller = setup.distiller
    d_loss, d_logs = distiller.discriminator_loss(batch, outputs)
    if _skip_if_non_finite(accelerator, setup, args, state, d_loss, d_logs, "d_loss"):
        return None
    undo = _discriminator_snapshot(setup) if state.skipped_nan_steps < args.skip_nan_steps else None
    _step(accelerator, d_loss, setup.discriminator_optimizer)
    g_loss, g_logs = distiller.generator_loss(batch, outputs)
    if _skip_if_non_finite(accelerator, setup, args, state, g_loss, g_logs, "g_loss",
                           discriminator_updated=True):
        undo()
        return None
    _step(accelerator, g_loss, setup.generator_optimizer)
    return (d_loss, d_logs), (g_loss, g_logs)


def _generator_first(accelerator, setup, batch, args, state, outputs):
    distiller = setup.distiller
    g_loss, g_logs = distiller.generator_loss(batch, outputs)
    if _skip_if_non_finite(accelerator, setup, args, state, g_loss, g_logs, "g_loss"):
        return None
    pools = {name: pool.snapshot() for name, pool in distiller.pools.items()}
    d_loss, d_logs = distiller.discriminator_loss(batch, outputs)
    if _skip_if_non_finite(accelerator, setup, args, state, d_loss, d_logs, "d_loss"):
        for name, images in pools.items():
            distiller.pools[name].restore(images)
        return None
    _step(accelerator, g_loss, setup.generator_optimizer)
    _step(accelerator, d_loss, setup.discriminator_optimizer)
    return (d_loss, d_logs), (g_loss, g_logs)


@contextlib.contextmanager
def one_scaler_update(accelerator: Accelerator):
    """One ``GradScaler.update()`` per training step, after both optimizers stepped (PyTorch's
    recipe for several optimizers sharing a scaler; fp16 on CUDA).

    accelerate updates the scale after each optimizer's step. With gradient accumulation the
    network stepped second then holds gradients of earlier micro-batches taken at the old scale
    and of the last one at the new scale, all unscaled by the new one. Inside this context the
    scale stays fixed; one update on the way out takes the overflows of both optimizers.
    """
    scaler = getattr(accelerator, "scaler", None)
    if scaler is None:
        yield
        return
    pending = []
    scaler.update = lambda new_scale=None: pending.append(new_scale)  # accelerate's call
    try:
        yield
    finally:
        del scaler.update  # the class's method again
        if pending:
            scaler.update()


def _step(accelerator: Accelerator, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
    accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _discriminator_snapshot(setup: GANTrainingSetup) -> Callable[[], None]:
    """A function that puts the discriminators and their optimizer back as they are now."""
    modules = [copy.deepcopy(m.state_dict()) for m in setup.discriminators]
    optimizer = copy.deepcopy(setup.discriminator_optimizer.state_dict())

    def undo() -> None:
        for module, saved in zip(setup.discriminators, modules):
            module.load_state_dict(saved)
        setup.discriminator_optimizer.load_state_dict(optimizer)

    return undo


def _skip_if_non_finite(accelerator: Accelerator, setup: GANTrainingSetup, args, state: LoopState,
                        loss: Tensor, logs: Mapping[str, Tensor], name: str,
                        discriminator_updated: bool = False) -> bool:
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
    updated = ("The discriminator had already been updated on this batch; nothing of it is "
               "saved" if discriminator_updated else "Nothing was updated with it")
    raise NonFiniteLossError(
        f"Loss {bad} became non-finite (NaN/Inf) at step {step}. {updated}; "
        f"the last good checkpoint is {last}. Try a lower --learning_rate, "
        f"--mixed_precision no, or --skip_nan_steps N to skip such batches.")


def steps_for_epochs(num_epochs: int, batches_per_epoch: int, accumulation: int) -> int:
    """Optimizer steps in ``num_epochs`` epochs of ``batches_per_epoch`` batches."""
    return num_epochs * math.ceil(batches_per_epoch / accumulation)
