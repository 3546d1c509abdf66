"""The pix2pix / CycleGAN PatchGAN discriminator (upstream's ``NLayerDiscriminator``)."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .layers import NORM_TYPES, check_choice, check_int, conv_bias, init_weights, norm_layer
from .loading import CheckedLoadingMixin

KERNEL, PAD = 4, 1


class PatchDiscriminator(CheckedLoadingMixin, ModelMixin, ConfigMixin):
    r"""PatchGAN discriminator: one real/fake logit per (70x70 for ``n_layers=3``) input patch.

    ``self.model`` keeps upstream's indices: ``0`` Conv 4x4 stride 2 ``in_channels -> ndf`` (with
    bias, no norm), ``1`` LeakyReLU(0.2); then ``n_layers - 1`` stride-2 layers and one stride-1
    layer of (Conv 4x4, norm, LeakyReLU) at ``ndf * min(2**k, 8)`` channels; last a stride-1 Conv 4x4
    to 1 channel. ``in_channels=6, ndf=64, n_layers=3``: 2,768,705 parameters (``ndf=32``: 696,225).

    Args:
        in_channels (`int`, defaults to 6): input channels; pix2pix feeds ``cat(input, output)``
            (3 + 3), CycleGAN a single image (3).
        ndf (`int`, defaults to 64): width of the first conv.
        n_layers (`int`, defaults to 3): number of stride-2 convs (3 is pix2pix's ``basic`` D).
        norm_type (`str`, defaults to ``"batch"``): ``"batch"``, ``"instance"`` (convs get a bias,
            as upstream), ``"instance_affine"`` or ``"none"``.
    """

    @register_to_config
    def __init__(
        self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm_type: str = "batch"
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("ndf", ndf, 1)
        check_int("n_layers", n_layers, 1)
        check_choice("norm_type", norm_type, NORM_TYPES)

        bias = conv_bias(norm_type)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, KERNEL, stride=2, padding=PAD),
            nn.LeakyReLU(0.2, True),
        ]
        widths = self._widths()
        for k in range(1, n_layers + 1):  # n_layers - 1 stride-2 layers, then one stride-1 layer
            stride = 2 if k < n_layers else 1
            conv = nn.Conv2d(
                widths[k - 1], widths[k], KERNEL, stride=stride, padding=PAD, bias=bias
            )
            layers += [conv, norm_layer(norm_type, widths[k]), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, KERNEL, stride=1, padding=PAD)]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def _widths(self) -> list[int]:
        return [self.config.ndf * min(2**k, 8) for k in range(self.config.n_layers + 1)]

    def feature_channels(self) -> dict[str, int]:
        """``"layer_<k>"`` (k = 0..n_layers): output of conv layer k after its LeakyReLU, with
        ``ndf * min(2**k, 8)`` channels (for feature-matching losses)."""
        return {f"layer_{k}": w for k, w in enumerate(self._widths())}

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Score ``x`` (N x in_channels x H x W, in [-1, 1]).

        Returns raw logits N x 1 x h x w (one per patch; 30x30 for 256 px, ``n_layers=3``), or with
        ``return_features=True`` ``(logits, features)`` as described in ``feature_channels``.
        """
        if not return_features:
            return self.model(x)
        features: dict[str, torch.Tensor] = {}
        h = x
        for layer in self.model:
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                features[f"layer_{len(features)}"] = h
        return h, features
