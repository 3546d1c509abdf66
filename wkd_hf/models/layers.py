"""Building blocks shared by the generators and the discriminator.

Module layouts (and therefore state-dict keys) mirror pytorch-CycleGAN-and-pix2pix
(``models/networks.py``) and GAN Compression (``MobileResnetBlock``), so their checkpoints load as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

NORM_TYPES = ("instance", "batch", "none", "instance_affine")
PADDING_TYPES = ("reflect", "replicate", "zero")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raise a ValueError naming ``value`` unless it is one of ``allowed``."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")


def check_int(name: str, value: Any, minimum: int) -> None:
    """Raise a ValueError naming ``value`` unless it is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def check_bool(name: str, value: Any) -> None:
    """Raise a ValueError naming ``value`` unless it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")  # noqa: TRY004


def conv_bias(norm_type: str) -> bool:
    """Whether convs followed by a norm carry a bias.

    Upstream's rule (``use_bias = norm_layer == nn.InstanceNorm2d``): only with instance norm
    (affine or not). Batch norm has its own shift; upstream's ``norm='none'`` drops the bias too,
    and so do we, so that such checkpoints load.
    """
    return norm_type in ("instance", "instance_affine")


def norm_layer(norm_type: str, channels: int) -> nn.Module:
    """``"instance"``: InstanceNorm2d without parameters or running stats (upstream's choice);
    ``"instance_affine"``: InstanceNorm2d with weight and bias, no running stats; ``"batch"``:
    affine BatchNorm2d with running stats; ``"none"``: Identity (keeps indices)."""
    check_choice("norm_type", norm_type, NORM_TYPES)
    if norm_type in ("instance", "instance_affine"):
        affine = norm_type == "instance_affine"
        return nn.InstanceNorm2d(channels, affine=affine, track_running_stats=False)
    if norm_type == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return nn.Identity()


def padding_layers(padding_type: str) -> tuple[list[nn.Module], int]:
    """A new 1-pixel padding module (reflect / replicate) and conv padding 0, or, for ``"zero"``,
    no module and conv padding 1."""
    check_choice("padding_type", padding_type, PADDING_TYPES)
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    return [], 1


class ResnetBlock(nn.Module):
    """pix2pix residual block: ``x + conv_block(x)`` at constant width ``dim``.

    ``conv_block`` (reflect padding): 0 pad, 1 conv3x3, 2 norm, 3 ReLU, [4 Dropout(0.5)], pad, conv3x3,
    norm. Dropout, when used, shifts the second conv's index (upstream layout); zero padding removes
    the pad modules.
    """

    def __init__(self, dim: int, padding_type: str, norm_type: str, use_dropout: bool) -> None:
        super().__init__()
        bias = conv_bias(norm_type)
        layers: list[nn.Module] = []
        pad, p = padding_layers(padding_type)
        pad2, _ = padding_layers(padding_type)  # a second, distinct padding module
        layers += pad + [nn.Conv2d(dim, dim, 3, padding=p, bias=bias), norm_layer(norm_type, dim)]
        layers += [nn.ReLU(True)]
        if use_dropout:
            layers += [nn.Dropout(0.5)]
        layers += pad2 + [nn.Conv2d(dim, dim, 3, padding=p, bias=bias), norm_layer(norm_type, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class SeparableConv2d(nn.Module):
    """GAN Compression's depthwise-separable conv: ``conv`` = 0 depthwise 3x3 (groups=channels),
    1 InstanceNorm2d (no parameters), 2 pointwise 1x1 ``channels -> out_channels``.

    As in GAN Compression's ``SeparableConv2d`` (as its generators call it), both convs have a bias
    and the inner norm is a parameter-free instance norm, whatever the block's outer norm.
    """

    def __init__(self, channels: int, out_channels: int, padding: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=padding, groups=channels),
            norm_layer("instance", channels),
            nn.Conv2d(channels, out_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class MobileResnetBlock(nn.Module):
    """GAN Compression's mobile residual block: ``ResnetBlock`` with ``SeparableConv2d`` convs.

    ``conv_block`` (reflect): 0 pad, 1 separable conv ``dim -> inner``, 2 norm, 3 ReLU, 4 Dropout
    (always present, rate 0.5 or 0, as upstream), 5 pad, 6 separable conv ``inner -> dim``, 7 norm.
    ``inner`` defaults to ``dim`` (``MobileResnetGenerator``); pruned students narrow it.
    """

    def __init__(
        self,
        dim: int,
        padding_type: str,
        norm_type: str,
        use_dropout: bool,
        inner: int | None = None,
    ) -> None:
        super().__init__()
        inner = inner or dim
        pad, p = padding_layers(padding_type)
        pad2, _ = padding_layers(padding_type)
        layers: list[nn.Module] = pad + [SeparableConv2d(dim, inner, p)]
        layers += [
            norm_layer(norm_type, inner),
            nn.ReLU(True),
            nn.Dropout(0.5 if use_dropout else 0.0),
        ]
        layers += pad2 + [SeparableConv2d(inner, dim, p), norm_layer(norm_type, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def tapped_forward(
    model: nn.Sequential, taps: dict[int, str], x: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``model`` on ``x``; also return the outputs of the modules at ``taps`` (index ->
    name)."""
    features: dict[str, torch.Tensor] = {}
    h = x
    for index, layer in enumerate(model):
        h = layer(h)
        if index in taps:
            features[taps[index]] = h
    return h, features


def check_input_size(owner: str, height: Any, width: Any, multiple: int, minimum: int) -> None:
    """Raise a ValueError unless ``height`` and ``width`` are ints >= ``minimum`` and multiples
    of ``multiple`` (what ``owner`` needs to give an output of the input's size)."""
    sizes = (height, width)
    suggestion = f"{max(minimum, multiple)}"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in sizes):
        bad = [v for v in sizes if v < minimum or v % multiple]
        if not bad:
            return
        floor, ceil = bad[0] // multiple, -(-bad[0] // multiple)
        below, above = max(minimum, floor * multiple), max(minimum, ceil * multiple)
        suggestion = f"{below}" if below == above else f"{below} or {above}"
    raise ValueError(
        f"{owner} needs an input height and width that are multiples of {multiple} and at least "
        f"{minimum}; got {height}x{width}. Use e.g. {suggestion} (resize or crop the images, or "
        "change --resolution)."
    )


@torch.no_grad()
def init_weights(model: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """pix2pix's weight initialisation, in place; returns ``model``.

    Conv / ConvTranspose / Linear weights: ``"normal"`` N(0, gain), ``"xavier"`` (xavier-normal with
    ``gain``), ``"kaiming"`` (kaiming-normal, fan_in) or ``"orthogonal"`` (with ``gain``); their biases
    0. BatchNorm weights N(1, gain), biases 0. The networks call this in ``__init__``, so a fresh
    model is initialised (deterministic under ``torch.manual_seed``); ``from_pretrained`` then loads
    the saved weights over it.
    """
    check_choice("init_type", init_type, INIT_TYPES)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init_type == "normal":
                nn.init.normal_(module.weight, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(module.weight, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(module.weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return model


def size_rule(model: Any) -> tuple[int, int]:
    """``(multiple, minimum)``: input sides the generator accepts, read from its
    ``check_input_size(height, width)`` (ResNet: multiples of 4, at least 8; U-Net with
    ``num_downs`` n: multiples of 2**n)."""
    check = getattr(model, "check_input_size", None)
    if not callable(check):
        return 1, 1

    def fits(size: int) -> bool:
        try:
            check(size, size)
        except ValueError:
            return False
        return True

    minimum = next((s for s in range(1, 4097) if fits(s)), None)
    if minimum is None:
        raise ValueError(f"{type(model).__name__} accepts no input size up to 4096 px")
    multiple = next((k for k in range(1, minimum + 4097) if fits(minimum + k)), minimum)
    return multiple, minimum
