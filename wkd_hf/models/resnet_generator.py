"""The CycleGAN / pix2pix ResNet generator, and its "mobile" (GAN Compression) variant."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .layers import (
    NORM_TYPES,
    PADDING_TYPES,
    MobileResnetBlock,
    ResnetBlock,
    check_bool,
    check_choice,
    check_input_size,
    check_int,
    conv_bias,
    init_weights,
    norm_layer,
    tapped_forward,
)
from .loading import CheckedLoadingMixin

BLOCK_TYPES = ("resnet", "mobile")
N_DOWNSAMPLING = 2
FIRST_BLOCK_INDEX = 10  # model.0-3: stem, model.4-9: two downsamplings, then the residual blocks


def resnet_feature_taps(n_blocks: int) -> dict[int, str]:
    """Sequential index -> feature name, taken after that module, for the ResNet layout (stem,
    two downsamplings, ``n_blocks`` blocks, two upsamplings): see ``feature_channels``."""
    first_up = FIRST_BLOCK_INDEX + n_blocks
    return {FIRST_BLOCK_INDEX - 1: "down",
            **{FIRST_BLOCK_INDEX + b: f"block_{b}" for b in range(n_blocks)},
            first_up + 2: "up_0", first_up + 5: "up_1"}


def check_resnet_input_size(model: nn.Module, height: int, width: int) -> None:
    """ValueError unless an H x W input gives an H x W output: multiples of 4 (two stride-2
    convs), and at least 8 with reflect/replicate padding in the blocks."""
    reflect = model.config.padding_type != "zero" and model.config.n_blocks > 0
    check_input_size(type(model).__name__, height, width, 4, 8 if reflect else 4)


class ResnetGenerator(CheckedLoadingMixin, ModelMixin, ConfigMixin):
    r"""ResNet image-to-image generator (Johnson et al.; CycleGAN's ``resnet_9blocks``).

    ``self.model`` is one ``nn.Sequential`` with upstream's indices, so pytorch-CycleGAN-and-pix2pix
    checkpoints load unchanged (``B = n_blocks``):

    - ``0-3`` stem: ReflectionPad2d(3), Conv 7x7 ``in_channels -> ngf``, norm, ReLU
    - ``4-6``, ``7-9`` downsampling: Conv 3x3 stride 2 (``ngf -> 2ngf -> 4ngf``), norm, ReLU
    - ``10 .. 9+B`` residual blocks at ``4*ngf`` channels (``model.<i>.conv_block.<j>``)
    - ``10+B .. 15+B`` upsampling: 2 x (ConvTranspose 3x3 stride 2, output_padding 1; norm; ReLU)
    - ``16+B .. 18+B`` head: ReflectionPad2d(3), Conv 7x7 ``ngf -> out_channels``, Tanh

    ``ngf=64, n_blocks=9``: 11,378,179 parameters; ``ngf=24``: 1,605,699 (the paper's 7.08x).

    Args:
        in_channels (`int`, defaults to 3): channels of the input image.
        out_channels (`int`, defaults to 3): channels of the output image.
        ngf (`int`, defaults to 64): width of the first conv; the residual blocks run at ``4*ngf``.
        n_blocks (`int`, defaults to 9): number of residual blocks (9 for 256 px, 6 for 128 px).
        block_type (`str`, defaults to ``"resnet"``): ``"resnet"`` (two 3x3 convs per block) or
            ``"mobile"`` (GAN Compression's ``MobileResnetGenerator``: each 3x3 conv becomes a
            depthwise 3x3 + InstanceNorm + pointwise 1x1, both with a bias, whatever ``norm_type``).
        norm_type (`str`, defaults to ``"instance"``): ``"instance"`` (no parameters; convs get a
            bias), ``"instance_affine"`` (InstanceNorm with weight and bias), ``"batch"`` or
            ``"none"``.
        use_dropout (`bool`, defaults to False): Dropout(0.5) inside each residual block (pix2pix's
            ``--no_dropout`` off); it shifts the block's indices for ``"resnet"`` blocks.
        padding_type (`str`, defaults to ``"reflect"``): padding in the residual blocks:
            ``"reflect"``, ``"replicate"`` or ``"zero"``.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        block_type: str = "resnet",
        norm_type: str = "instance",
        use_dropout: bool = False,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_int("ngf", ngf, 1)
        check_int("n_blocks", n_blocks, 0)
        check_choice("block_type", block_type, BLOCK_TYPES)
        check_choice("norm_type", norm_type, NORM_TYPES)
        check_bool("use_dropout", use_dropout)
        check_choice("padding_type", padding_type, PADDING_TYPES)

        bias = conv_bias(norm_type)
        block_cls = MobileResnetBlock if block_type == "mobile" else ResnetBlock
        layers: list[nn.Module] = [  # stem
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            norm_layer(norm_type, ngf),
            nn.ReLU(True),
        ]
        for i in range(N_DOWNSAMPLING):
            ch = ngf * 2**i
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1, bias=bias)]
            layers += [norm_layer(norm_type, 2 * ch), nn.ReLU(True)]
        dim = ngf * 2**N_DOWNSAMPLING
        layers += [block_cls(dim, padding_type, norm_type, use_dropout) for _ in range(n_blocks)]
        for i in range(N_DOWNSAMPLING):
            ch = ngf * 2 ** (N_DOWNSAMPLING - i)
            up = nn.ConvTranspose2d(
                ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
            )
            layers += [up, norm_layer(norm_type, ch // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]  # head
        self.model = nn.Sequential(*layers)

        self._feature_taps = resnet_feature_taps(n_blocks)
        init_weights(self)

    def feature_channels(self) -> dict[str, int]:
        """Feature name -> channels, in forward order, as returned by ``forward(x, True)``.

        ``"down"``: after the two downsamplings (``4*ngf``, H/4 x W/4); ``"block_<i>"``: output of
        residual block ``i`` (``4*ngf``, H/4); ``"up_0"``: after the first upsampling (``2*ngf``, H/2);
        ``"up_1"``: after the second (``ngf``, H x W). All are taken after their ReLU / residual sum.
        """
        ngf = self.config.ngf
        channels = {"down": 4 * ngf}
        channels.update({f"block_{b}": 4 * ngf for b in range(self.config.n_blocks)})
        channels.update({"up_0": 2 * ngf, "up_1": ngf})
        return channels

    def default_feature_layers(self) -> list[str]:
        """Taps for feature distillation: the middle and the last residual block.

        Both run at ``4*ngf`` channels and H/4, so one 1x1 conv adapts student to teacher widths;
        the middle block carries mid-level content, the last one is what the decoder consumes.
        (GAN Compression distills more taps: ``down`` and blocks 2, 5, 8.) Falls back to ``"down"``
        when ``n_blocks == 0``.
        """
        n = self.config.n_blocks
        if n == 0:
            return ["down"]
        return list(dict.fromkeys([f"block_{n // 2}", f"block_{n - 1}"]))

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Translate ``x`` (N x in_channels x H x W, in [-1, 1]; H and W multiples of 4).

        Returns the image, N x out_channels x H x W in [-1, 1], or with ``return_features=True``
        ``(image, features)``, ``features`` a dict name -> tensor in forward order (see
        ``feature_channels``).
        """
        if not return_features:
            return self.model(x)
        return tapped_forward(self.model, self._feature_taps, x)

    def check_input_size(self, height: int, width: int) -> None:
        """Raise a ValueError unless an H x W input gives an H x W output: multiples of 4 (two
        stride-2 convs), and at least 8 with reflect/replicate padding in the blocks."""
        check_resnet_input_size(self, height, width)
