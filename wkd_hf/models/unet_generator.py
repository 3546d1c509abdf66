"""The pix2pix U-Net generator (``unet_256`` / ``unet_128``), with upstream's recursive layout."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .layers import (
    NORM_TYPES,
    check_bool,
    check_choice,
    check_input_size,
    check_int,
    conv_bias,
    init_weights,
)
from .layers import norm_layer as make_norm
from .loading import CheckedLoadingMixin

MIN_DOWNS = 5  # the fixed ngf -> 2ngf -> 4ngf -> 8ngf stages plus the innermost block


def unet_widths(ngf: int, num_downs: int) -> list[tuple[int, int]]:
    """``(outer, inner)`` channels of block ``d`` (0 = outermost); the outermost's outer side is the
    image. Widths: ngf, 2ngf, 4ngf, then 8ngf for every deeper block."""
    inner = [ngf * min(2**d, 8) for d in range(num_downs)]
    return [(inner[d - 1] if d else 0, inner[d]) for d in range(num_downs)]


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``x -> [down, submodule, up] -> cat(x, up)`` (the outermost returns ``up``).

    ``model`` indices, as upstream: outermost ``0 conv, 1 sub, 2 ReLU, 3 convT, 4 Tanh``; innermost
    ``0 LeakyReLU, 1 conv, 2 ReLU, 3 convT, 4 norm``; others ``0 LeakyReLU, 1 conv, 2 norm, 3 sub,
    4 ReLU, 5 convT, 6 norm[, 7 Dropout(0.5)]`` (dropout last, so it shifts no parameter index).
    Activations are in place, as upstream: the skip therefore carries the LeakyReLU'd encoder output.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: UnetSkipConnectionBlock | None = None,
        norm_type: str = "batch",
        use_dropout: bool = False,
        depth: int = 0,
        num_downs: int = 8,
    ) -> None:
        super().__init__()
        self.outermost, self.innermost = depth == 0, submodule is None
        self.depth, self.num_downs = depth, num_downs
        bias = conv_bias(norm_type)
        down_conv = nn.Conv2d(input_nc or outer_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if self.outermost:
            up_conv = nn.ConvTranspose2d(2 * inner_nc, outer_nc, 4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif self.innermost:
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv]
            layers += [nn.ReLU(True), up_conv, make_norm(norm_type, outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(2 * inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, make_norm(norm_type, inner_nc), submodule]
            layers += [nn.ReLU(True), up_conv, make_norm(norm_type, outer_nc)]
            layers += [nn.Dropout(0.5)] if use_dropout else []
        self.model = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, features: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Run this level; when ``features`` is a dict, record ``down_<depth>`` / ``up_<j>`` in it."""
        h = x
        for index, layer in enumerate(self.model):
            if isinstance(layer, UnetSkipConnectionBlock):
                if features is not None:  # LeakyReLU'd in place by the sub-block's first op
                    features[f"down_{self.depth}"] = h
                h = layer(h, features)
            else:
                h = layer(h)
                if features is not None and self.innermost and index == 1:
                    features[f"down_{self.depth}"] = h  # bottleneck; ReLU'd in place next
        if self.outermost:
            return h
        if features is not None:
            features[f"up_{self.num_downs - 1 - self.depth}"] = h
        return torch.cat([x, h], 1)


class UnetGenerator(CheckedLoadingMixin, ModelMixin, ConfigMixin):
    r"""pix2pix U-Net generator: ``num_downs`` stride-2 4x4 convs down to 1x1 at 2**num_downs px,
    mirrored by transposed convs, with skip connections between matching levels.

    State-dict keys are upstream's nested ones: level ``d`` lives under ``model`` followed by
    ``.model.1`` (into level 1) and ``.model.3`` per further level, e.g. level 2's down conv is
    ``model.model.1.model.3.model.1.weight``.

    Args:
        in_channels (`int`, defaults to 3): channels of the input image.
        out_channels (`int`, defaults to 3): channels of the output image.
        ngf (`int`, defaults to 64): width of the outermost level; levels double up to ``8*ngf``.
        num_downs (`int`, defaults to 8): number of downsamplings, at least 5; 8 is ``unet_256``
            (inputs of 256 px), 7 is ``unet_128``. H and W must be multiples of ``2**num_downs``.
        norm_type (`str`, defaults to ``"batch"``): ``"batch"`` (pix2pix's default),
            ``"instance"`` (convs get a bias), ``"instance_affine"`` or ``"none"``.
        use_dropout (`bool`, defaults to False): Dropout(0.5) in the ``num_downs - 5`` inner ``8*ngf``
            levels (pix2pix trains with it). It has no parameters, so checkpoints do not record it.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        num_downs: int = 8,
        norm_type: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("ngf", ngf, 1)
        check_int("num_downs", num_downs, MIN_DOWNS)
        check_choice("norm_type", norm_type, NORM_TYPES)
        check_bool("use_dropout", use_dropout)

        block = None
        widths = unet_widths(ngf, num_downs)
        for depth in reversed(range(num_downs)):  # build from the innermost level outwards
            outer, inner = widths[depth]
            block = UnetSkipConnectionBlock(
                outer if depth else out_channels,
                inner,
                input_nc=in_channels if depth == 0 else None,
                submodule=block,
                norm_type=norm_type,
                use_dropout=use_dropout and 4 <= depth < num_downs - 1,
                depth=depth,
                num_downs=num_downs,
            )
        self.model = block
        init_weights(self)

    def feature_channels(self) -> dict[str, int]:
        """Feature name -> channels, in forward order, as returned by ``forward(x, True)``.

        With ``n = num_downs``: ``"down_<d>"`` (d = 0..n-1) is the encoder output of level d, at
        H / 2**(d+1), after its activation (LeakyReLU 0.2; ReLU for the bottleneck ``down_<n-1>``),
        i.e. what the skip connection carries. ``"up_<j>"`` (j = 0..n-2) is the decoder output of
        level ``n-1-j`` after its norm (before the skip concat), at H / 2**(n-1-j); ``up_<n-2>`` is
        the last feature before the output conv (``ngf`` channels, H/2).
        """
        n = self.config.num_downs
        widths = unet_widths(self.config.ngf, n)
        channels = {f"down_{d}": widths[d][1] for d in range(n)}
        channels.update({f"up_{j}": widths[n - 1 - j][0] for j in range(n - 1)})
        return channels

    def default_feature_layers(self) -> list[str]:
        """Taps for feature distillation: two decoder features, ``up_<n-4>`` (``4*ngf``, H/8) and
        ``up_<n-2>`` (``ngf``, H/2): one semantic, one detail level, both shaping the output directly.
        The bottleneck is skipped: it is 1x1 at the intended resolution."""
        n = self.config.num_downs
        return [f"up_{n - 4}", f"up_{n - 2}"]

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Translate ``x`` (N x in_channels x H x W in [-1, 1], H and W multiples of 2**num_downs).

        Returns the image, N x out_channels x H x W in [-1, 1], or with ``return_features=True``
        ``(image, features)`` with ``features`` as described in ``feature_channels``.
        """
        if not return_features:
            return self.model(x)
        features: dict[str, torch.Tensor] = {}
        image = self.model(x, features)
        return image, features

    def check_input_size(self, height: int, width: int) -> None:
        """Raise a ValueError unless H and W are multiples of ``2**num_downs`` (each level halves
        the size, and the skip connections need the sizes to match on the way up)."""
        multiple = 2**self.config.num_downs
        check_input_size(type(self).__name__, height, width, multiple, multiple)
