"""Mixed precision beyond what ``accelerator.prepare`` covers: the frozen teacher, and what the CPU
can do natively.

accelerate runs a *prepared* model's forward under autocast and returns float32 outputs. The
teacher is not prepared (it has no optimizer, and a prepared model would enter every checkpoint),
so it ran in float32 while the students ran in bf16/fp16. :func:`autocast_like_prepared` gives it
the same forward: under the accelerator's autocast, outputs back to float32, so the WKD/GAN losses
and the DWT still compute in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import MethodType

import torch
from accelerate.utils import convert_outputs_to_fp32
from torch import nn


def accelerator_autocast(accelerator) -> contextlib.AbstractContextManager | None:
    """The autocast context accelerate wraps prepared models in (None without mixed precision)."""
    if not getattr(accelerator, "native_amp", False):
        return None
    from accelerate.utils import get_mixed_precision_context_manager

    return get_mixed_precision_context_manager(accelerator.native_amp, accelerator.autocast_handler)


def autocast_like_prepared(module: nn.Module, autocast: Callable | None) -> nn.Module:
    """Run ``module``'s forward under ``autocast`` (an ``torch.autocast`` instance) with float32
    outputs, as ``accelerator.prepare`` does for trained models; returns the module.

    ``autocast`` None leaves the module as it is. Applied twice, the second call is a no-op.
    """
    if autocast is None or hasattr(module, "_wkd_original_forward"):
        return module
    module._wkd_original_forward = module.forward
    forward = autocast(module.forward.__func__)
    module.forward = MethodType(convert_outputs_to_fp32(forward), module)
    return module


def cpu_bf16_support() -> dict[str, bool]:
    """What this CPU has for bfloat16: ``avx512_bf16`` (native bf16 dot products) and ``amx``
    (AMX tiles, Sapphire Rapids and later). Without either, oneDNN emulates bf16 and a bf16 step
    is no faster than float32."""
    cpu = getattr(torch, "cpu", None)

    def check(name: str) -> bool:
        probe = getattr(cpu, name, None)
        return bool(probe()) if probe is not None else False

    return {"avx512_bf16": check("_is_avx512_bf16_supported"),
            "amx": check("_is_amx_tile_supported")}


def bf16_pays_off_on_cpu() -> bool:
    """Whether ``--mixed_precision bf16`` speeds a CPU step up here (native bf16 or AMX)."""
    support = cpu_bf16_support()
    return support["avx512_bf16"] or support["amx"]


def cpu_precision_advice(accelerator) -> str | None:
    """One line about ``--mixed_precision`` on the CPU, or None: bf16 without native bf16 is
    slower than float32; fp16 runs as float32 there (accelerate has no CPU fp16 autocast); float32
    on a CPU with native bf16 leaves its speed-up unused."""
    if accelerator.device.type != "cpu":
        return None
    mixed = accelerator.mixed_precision
    native = bf16_pays_off_on_cpu()
    if mixed == "bf16" and not native:
        return ("--mixed_precision bf16: this CPU has neither avx512_bf16 nor AMX, so bf16 is "
                "emulated and slower than float32; use --mixed_precision no.")
    if mixed == "fp16" and not accelerator.native_amp:
        return ("--mixed_precision fp16 runs in float32 on the CPU (accelerate has no CPU fp16 "
                "autocast)" + ("; this CPU has native bf16: use --mixed_precision bf16." if native
                               else "."))
    if mixed == "no" and native:
        return ("This CPU has native bf16 (avx512_bf16/AMX): --mixed_precision bf16 trains "
                "faster (see benchmarks/README.md), with the losses still in float32.")
    return None


def compile_like_prepared(module: nn.Module, accelerator) -> nn.Module:
    """``torch.compile`` the module in place with the accelerator's dynamo settings
    (``accelerate launch --dynamo_backend inductor``), as ``prepare`` compiles trained models;
    returns it. No dynamo backend: unchanged."""
    from accelerate.utils import DynamoBackend

    plugin = accelerator.state.dynamo_plugin
    if plugin.backend == DynamoBackend.NO:
        return module
    kwargs = plugin.to_kwargs()
    kwargs.pop("use_regional_compilation", None)
    module.compile(**kwargs)  # in place: same module, same state_dict keys
    return module
