"""Several processes: batch-norm statistics shared across them (``--sync_batchnorm``).

With DDP each process normalises with its own batch's statistics and keeps its own running
statistics (rank 0's are exported). ``torch.nn.SyncBatchNorm`` computes them over all processes'
batches (``convert_sync_batchnorm``, the usual fix for a PatchGAN under DDP). It matters
with small per-process batches (pix2pix: 1) of batch-norm networks (the PatchGAN's default,
U-Net generators); instance norm (ResNet generators) has nothing to share.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .errors import WKDError

SYNC_DEVICES = ("cuda", "xpu", "hpu")  # where torch's SyncBatchNorm runs


def sync_batchnorm(modules: Mapping[str, nn.Module], num_processes: int,
                   device: torch.device) -> dict[str, nn.Module]:
    """``modules`` with every BatchNorm layer turned into ``SyncBatchNorm`` (same parameters and
    buffers, so optimizers and saved weights are unchanged). One process: nothing to share,
    unchanged. Raises WKDError on a device torch's SyncBatchNorm does not run on (the CPU)."""
    if num_processes <= 1:
        return dict(modules)
    if torch.device(device).type not in SYNC_DEVICES:
        raise WKDError(f"--sync_batchnorm needs GPUs: torch's SyncBatchNorm runs on "
                       f"{'/'.join(SYNC_DEVICES)}, not on {torch.device(device).type}. Drop it "
                       "(each process then keeps its own batch-norm statistics).")
    return {key: nn.SyncBatchNorm.convert_sync_batchnorm(module) for key, module in modules.items()}
