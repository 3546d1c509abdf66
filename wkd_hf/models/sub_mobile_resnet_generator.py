"""GAN Compression's compressed ResNet generators (``SubMobileResnetGenerator``): a mobile ResNet
whose stages have their own widths, as found by its channel search."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .layers import (
    NORM_TYPES,
    PADDING_TYPES,
    MobileResnetBlock,
    check_bool,
    check_choice,
    check_int,
    conv_bias,
    init_weights,
    norm_layer,
    tapped_forward,
)
from .loading import CheckedLoadingMixin
from .resnet_generator import check_resnet_input_size, resnet_feature_taps

N_STAGES = 8
DEFAULT_CHANNELS = (16, 16, 32, 16, 32, 32, 16, 16)  # the published horse2zebra student


def parse_channels(channels: str | Sequence[int]) -> list[int]:
    """GAN Compression's ``config_str`` (``"16_16_32_16_32_32_16_16"``) or a sequence of 8 ints
    -> a list of 8 ints; anything else is a ValueError."""
    if isinstance(channels, str):
        widths = [int(v) if v.isdigit() else 0 for v in channels.split("_")]
    else:
        widths = [v if type(v) is int else 0 for v in channels]  # no bools, no floats
    if len(widths) != N_STAGES or min(widths) < 1:
        raise ValueError(
            f"channels must be {N_STAGES} positive ints (or GAN Compression's config string such as"
            f" '16_16_32_16_32_32_16_16'); got {channels!r}"
        )
    return widths


def block_width(channels: Sequence[int], block: int) -> int:
    """Inner width of residual block ``block``: ``4 * channels[3 + block // 3]``."""
    return 4 * channels[3 + block // 3]


class SubMobileResnetGenerator(CheckedLoadingMixin, ModelMixin, ConfigMixin):
    r"""GAN Compression's ``SubMobileResnetGenerator``: the mobile ResNet with per-stage widths
    ``c = channels`` (its ``config_str``), e.g. its published horse2zebra student
    ``16_16_32_16_32_32_16_16`` (356,867 parameters).

    ``self.model`` keeps GAN Compression's indices, so its checkpoints load unchanged
    (``B = n_blocks``):

    - ``0-3`` stem: ReflectionPad2d(3), Conv 7x7 ``in_channels -> c[0]``, norm, ReLU
    - ``4-6``, ``7-9`` downsampling (Conv 3x3 stride 2): ``c[0] -> 2c[1]``, then ``2c[1] -> 4c[2]``
    - ``10 .. 9+B`` mobile residual blocks at ``4c[2]`` channels; block ``i`` narrows to
      ``4c[3 + i // 3]`` inside (``MobileResnetBlock``)
    - ``10+B .. 15+B`` upsampling (ConvTranspose 3x3 stride 2): ``4c[2] -> 2c[6]``, then
      ``2c[6] -> c[7]``
    - ``16+B .. 18+B`` head: ReflectionPad2d(3), Conv 7x7 ``c[7] -> out_channels``, Tanh

    As GAN Compression's, ``forward`` clamps the input to [-1, 1] first.

    Args:
        in_channels (`int`, defaults to 3): channels of the input image.
        out_channels (`int`, defaults to 3): channels of the output image.
        channels (`list[int]`, defaults to ``[16, 16, 32, 16, 32, 32, 16, 16]``): the 8 stage widths
            (a ``"16_16_..."`` string is accepted and stored as a list).
        n_blocks (`int`, defaults to 9): number of residual blocks (at most 15).
        norm_type (`str`, defaults to ``"instance"``): the norm after each conv (see
            ``ResnetGenerator``); the norm inside the separable convs is always InstanceNorm.
        use_dropout (`bool`, defaults to False): Dropout(0.5) in the blocks' dropout slot.
        padding_type (`str`, defaults to ``"reflect"``): ``"reflect"``, ``"replicate"``, ``"zero"``.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: str | Sequence[int] = DEFAULT_CHANNELS,
        n_blocks: int = 9,
        norm_type: str = "instance",
        use_dropout: bool = False,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        c = parse_channels(channels)
        check_int("n_blocks", n_blocks, 0)
        if n_blocks > 3 * (N_STAGES - 3):
            raise ValueError(f"n_blocks must be at most {3 * (N_STAGES - 3)}; got {n_blocks}")
        check_choice("norm_type", norm_type, NORM_TYPES)
        check_bool("use_dropout", use_dropout)
        check_choice("padding_type", padding_type, PADDING_TYPES)
        self.register_to_config(channels=c)  # one JSON-friendly form: a list of ints

        bias = conv_bias(norm_type)
        dim = 4 * c[2]
        widths = [(in_channels, c[0]), (c[0], 2 * c[1]), (2 * c[1], dim)]
        layers: list[nn.Module] = [nn.ReflectionPad2d(3)]
        for k, (cin, cout) in enumerate(widths):  # stem (7x7), then two stride-2 3x3 convs
            conv = nn.Conv2d(cin, cout, 7, bias=bias) if k == 0 else nn.Conv2d(
                cin, cout, 3, stride=2, padding=1, bias=bias
            )
            layers += [conv, norm_layer(norm_type, cout), nn.ReLU(True)]
        layers += [
            MobileResnetBlock(dim, padding_type, norm_type, use_dropout, block_width(c, i))
            for i in range(n_blocks)
        ]
        for cin, cout in ((dim, 2 * c[6]), (2 * c[6], c[7])):
            up = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias)
            layers += [up, norm_layer(norm_type, cout), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c[7], out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

        self._feature_taps = resnet_feature_taps(n_blocks)  # ResnetGenerator's names and places
        init_weights(self)

    def feature_channels(self) -> dict[str, int]:
        """Feature name -> channels, in forward order, as ``ResnetGenerator``'s (same names and
        places): ``"down"`` and ``"block_<i>"`` (``4c[2]``, H/4), ``"up_0"`` (``2c[6]``, H/2),
        ``"up_1"`` (``c[7]``, H x W)."""
        c = self.config.channels
        channels = {"down": 4 * c[2]}
        channels.update({f"block_{b}": 4 * c[2] for b in range(self.config.n_blocks)})
        channels.update({"up_0": 2 * c[6], "up_1": c[7]})
        return channels

    def default_feature_layers(self) -> list[str]:
        """The middle and the last residual block (``"down"`` without blocks)."""
        n = self.config.n_blocks
        return list(dict.fromkeys([f"block_{n // 2}", f"block_{n - 1}"])) if n else ["down"]

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Translate ``x`` (N x in_channels x H x W, clamped to [-1, 1]; H, W multiples of 4).

        Returns the image, N x out_channels x H x W in [-1, 1], or with ``return_features=True``
        ``(image, features)`` as described in ``feature_channels``.
        """
        x = x.clamp(-1, 1)
        if not return_features:
            return self.model(x)
        return tapped_forward(self.model, self._feature_taps, x)

    def check_input_size(self, height: int, width: int) -> None:
        """Raise a ValueError unless an H x W input gives an H x W output (multiples of 4; at
        least 8 with reflect/replicate padding in the blocks)."""
        check_resnet_input_size(self, height, width)
