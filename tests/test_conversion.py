"""Importing pytorch-CycleGAN-and-pix2pix checkpoints.

The reference networks below are written here from the architecture description, as plain
nn.Modules with upstream's layout (an ``nn.Sequential`` named ``model``); they do not use wkd_hf.
"""

import logging
import os

import pytest
import torch
from torch import nn

from wkd_hf.cli.convert import main
from wkd_hf.conversion import (
    UnrecognizedCheckpointError,
    UnsafeCheckpointError,
    convert_pix2pix_checkpoint,
    infer_architecture,
)
from wkd_hf.hub_access import HubUnreachableError
from wkd_hf.models import (
    PatchDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    load_pretrained_model,
)


class RefResnetBlock(nn.Module):
    def __init__(self, dim, use_dropout):
        super().__init__()
        seq = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True)]
        seq += [nn.Dropout(0.5)] if use_dropout else []
        seq += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim)]
        self.conv_block = nn.Sequential(*seq)

    def forward(self, x):
        return x + self.conv_block(x)


class RefSeparableConv(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(dim, dim, 3, groups=dim), nn.InstanceNorm2d(dim), nn.Conv2d(dim, dim, 1)
        )

    def forward(self, x):
        return self.conv(x)


class RefMobileBlock(nn.Module):
    """GAN Compression's MobileResnetBlock: separable convs, a Dropout slot at index 4."""

    def __init__(self, dim, use_dropout):
        super().__init__()
        seq = [nn.ReflectionPad2d(1), RefSeparableConv(dim), nn.InstanceNorm2d(dim), nn.ReLU(True)]
        seq += [nn.Dropout(0.5 if use_dropout else 0.0), nn.ReflectionPad2d(1)]
        seq += [RefSeparableConv(dim), nn.InstanceNorm2d(dim)]
        self.conv_block = nn.Sequential(*seq)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnetGenerator(nn.Module):
    """Instance norm, so every conv has a bias."""

    def __init__(self, in_nc, out_nc, ngf, n_blocks, use_dropout, block=RefResnetBlock):
        super().__init__()
        seq = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_nc, ngf, 7),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for c in (ngf, 2 * ngf):
            seq += [nn.Conv2d(c, 2 * c, 3, 2, 1), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
        seq += [block(4 * ngf, use_dropout) for _ in range(n_blocks)]
        for c in (4 * ngf, 2 * ngf):
            seq += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1)]
            seq += [nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
        seq += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


class RefUnetBlock(nn.Module):
    """Batch norm, so only the outermost convs (no norm after them) have a bias."""

    def __init__(self, outer, inner, in_nc=None, sub=None, outermost=False, dropout=False):
        super().__init__()
        self.outermost = outermost
        down = nn.Conv2d(in_nc or outer, inner, 4, 2, 1, bias=False)
        if outermost:
            seq = [
                down,
                sub,
                nn.ReLU(True),
                nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1),
                nn.Tanh(),
            ]
        elif sub is None:
            up = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False)
            seq = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, nn.BatchNorm2d(outer)]
        else:
            up = nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=False)
            seq = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), sub]
            seq += [nn.ReLU(True), up, nn.BatchNorm2d(outer)] + (
                [nn.Dropout(0.5)] if dropout else []
            )
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnetGenerator(nn.Module):
    def __init__(self, in_nc, out_nc, ngf, num_downs, use_dropout=True):
        super().__init__()
        block = RefUnetBlock(8 * ngf, 8 * ngf)
        for _ in range(num_downs - 5):
            block = RefUnetBlock(8 * ngf, 8 * ngf, sub=block, dropout=use_dropout)
        for mult in (4, 2, 1):
            block = RefUnetBlock(mult * ngf, 2 * mult * ngf, sub=block)
        self.model = RefUnetBlock(out_nc, ngf, in_nc=in_nc, sub=block, outermost=True)

    def forward(self, x):
        return self.model(x)


class RefNLayerDiscriminator(nn.Module):
    def __init__(self, in_nc, ndf, n_layers):
        super().__init__()
        seq = [nn.Conv2d(in_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        widths = [ndf * min(2**k, 8) for k in range(n_layers + 1)]
        for k in range(1, n_layers + 1):
            conv = nn.Conv2d(widths[k - 1], widths[k], 4, 2 if k < n_layers else 1, 1, bias=False)
            seq += [conv, nn.BatchNorm2d(widths[k]), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(widths[-1], 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def trained_looking(net, in_nc, size):
    """Random affine norm parameters and running statistics, then eval mode."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1, 0.3)
                m.bias.normal_(0, 0.3)
        net.train()
        for _ in range(3):
            net(torch.randn(4, in_nc, size, size))
    return net.eval()


def compare(reference, converted, in_nc, size):
    x = torch.rand(2, in_nc, size, size, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        return (reference(x) - converted(x)).abs().max().item()


REFERENCES = {
    "resnet": (lambda: RefResnetGenerator(3, 2, 4, 3, False), ResnetGenerator, 3, 32),
    "resnet_dropout": (lambda: RefResnetGenerator(1, 3, 6, 2, True), ResnetGenerator, 1, 32),
    "mobile": (
        lambda: RefResnetGenerator(3, 3, 4, 3, False, RefMobileBlock),
        ResnetGenerator,
        3,
        32,
    ),
    "unet_batch": (lambda: RefUnetGenerator(3, 3, 4, 6), UnetGenerator, 3, 64),
    "patch_d": (lambda: RefNLayerDiscriminator(6, 8, 3), PatchDiscriminator, 6, 64),
}


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("name", REFERENCES)
def test_convert_matches_reference(name, prefix, tmp_path):
    make, cls, in_nc, size = REFERENCES[name]
    reference = trained_looking(make(), in_nc, size)
    state_dict = {prefix + k: v for k, v in reference.state_dict().items()}
    torch.save(state_dict, tmp_path / "latest_net_G.pth")
    model = convert_pix2pix_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "out")
    assert type(model) is cls and not model.training
    assert compare(reference, model, in_nc, size) < 1e-5
    reloaded = load_pretrained_model(str(tmp_path / "out"))
    assert compare(reference, reloaded, in_nc, size) < 1e-5


def test_inferred_configs():
    _, config = infer_architecture(RefResnetGenerator(1, 3, 6, 2, True).state_dict())
    assert config == {"in_channels": 1, "out_channels": 3, "ngf": 6, "n_blocks": 2,
                      "norm_type": "instance", "block_type": "resnet",
                      "padding_type": "reflect", "use_dropout": True}  # fmt: skip
    _, config = infer_architecture(RefUnetGenerator(3, 2, 4, 6).state_dict())
    assert config == {"in_channels": 3, "out_channels": 2, "ngf": 4, "num_downs": 6,
                      "norm_type": "batch", "use_dropout": True}  # fmt: skip
    _, config = infer_architecture(RefNLayerDiscriminator(3, 8, 2).state_dict())
    assert config == {"in_channels": 3, "ndf": 8, "n_layers": 2, "norm_type": "batch"}


@pytest.mark.parametrize(
    "cls, config",
    [
        (ResnetGenerator, {"ngf": 4, "n_blocks": 2, "block_type": "mobile"}),
        (ResnetGenerator, {"ngf": 4, "n_blocks": 1, "padding_type": "zero", "use_dropout": True}),
        (ResnetGenerator, {"ngf": 4, "n_blocks": 3, "norm_type": "batch", "block_type": "mobile"}),
        (ResnetGenerator, {"ngf": 4, "n_blocks": 0, "norm_type": "none"}),
        (UnetGenerator, {"ngf": 4, "num_downs": 7, "norm_type": "instance", "in_channels": 1}),
        (PatchDiscriminator, {"ndf": 4, "n_layers": 4, "norm_type": "instance"}),
        (PatchDiscriminator, {"ndf": 4, "n_layers": 1, "norm_type": "none"}),
    ],
)
def test_infer_architecture_round_trip(cls, config):
    model = cls(**config)
    inferred_cls, inferred = infer_architecture(model.state_dict())
    assert inferred_cls is cls
    expected = {k: v for k, v in model.config.items() if not k.startswith("_")}
    if cls is UnetGenerator:  # no trace in U-Net weights: upstream's default for the norm
        expected["use_dropout"] = expected["norm_type"] == "batch"
    assert inferred == expected


def test_legacy_instance_norm_stats_are_dropped(tmp_path):
    reference = RefResnetGenerator(3, 3, 4, 1, False).eval()
    state_dict = dict(reference.state_dict())
    state_dict["model.2.running_mean"] = torch.zeros(4)  # as PyTorch 0.3 saved InstanceNorm
    model = convert_pix2pix_checkpoint(state_dict)
    assert compare(reference, model, 3, 32) < 1e-5


def test_safetensors_checkpoint(tmp_path):
    from safetensors.torch import save_file

    reference = trained_looking(RefNLayerDiscriminator(3, 4, 1), 3, 32)
    save_file(reference.state_dict(), tmp_path / "net_D.safetensors")
    model = convert_pix2pix_checkpoint(str(tmp_path / "net_D.safetensors"))
    assert compare(reference, model, 3, 32) < 1e-5


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    torch.save({"model.1.weight": torch.zeros(1), "payload": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match="security refusal.*state dict"):
        convert_pix2pix_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def test_corrupt_file_is_not_called_unsafe(tmp_path):
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UnrecognizedCheckpointError, match="not a readable PyTorch checkpoint"):
        convert_pix2pix_checkpoint(tmp_path / "broken.pth")


def test_unrelated_state_dict_is_explained():
    with pytest.raises(UnrecognizedCheckpointError, match="(?s)Expected one of.*encoder.weight"):
        convert_pix2pix_checkpoint(
            {"encoder.weight": torch.zeros(3, 3), "head.bias": torch.zeros(3)}
        )


def test_unrelated_checkpoint_is_one_full_error_line(tmp_path, capsys):
    from wkd_hf.cli.convert import main

    torch.save({"encoder.weight": torch.zeros(3, 3), "head.bias": torch.zeros(3)},
               tmp_path / "other.pth")
    assert main(["--checkpoint", str(tmp_path / "other.pth")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wkd-convert: error:") and err.count("\n") == 1, err
    assert "pix2pix ResnetGenerator: 'model.1.weight'" in err  # what was expected ...
    assert "Found 2 keys, first: ['encoder.weight', 'head.bias']" in err  # ... and found
    reference = RefResnetGenerator(3, 2, 4, 3, False).state_dict()
    reference["model.4.weight"] = torch.zeros(8, 4, 5, 5)  # a 5x5 conv where pix2pix has 3x3
    torch.save(reference, tmp_path / "custom.pth")
    assert main(["--checkpoint", str(tmp_path / "custom.pth")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights do not fit it" in err, err
    assert "size mismatch for model.4.weight" in err  # torch's detail, not cut off


class RefBlockKeyedResnet(nn.Module):
    """PyTorch-GAN's (huggan's) GeneratorResNet: blocks under ``block``, Upsample + 3x3 conv up;
    with ``transposed=True`` the same blocks with pix2pix's transposed-conv upsampling."""

    def __init__(self, transposed=False):
        super().__init__()
        block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(16, 16, 3), nn.InstanceNorm2d(16))
        seq = [nn.ReflectionPad2d(3), nn.Conv2d(3, 4, 7), nn.InstanceNorm2d(4), nn.ReLU(True)]
        for c in (4, 8):
            seq += [nn.Conv2d(c, 2 * c, 3, 2, 1), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
        seq += [nn.Module(), nn.Module()]
        seq[-2].block, seq[-1].block = block, block
        for c in (16, 8):
            if transposed:
                seq += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1)]
            else:
                seq += [nn.Upsample(scale_factor=2), nn.Conv2d(c, c // 2, 3, 1, 1)]
            seq += [nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
        seq += [nn.ReflectionPad2d(3), nn.Conv2d(4, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*seq)


def test_huggan_models_are_explained():
    pix2pix = {"down1.model.0.weight": torch.zeros(64, 3, 4, 4), "final.2.weight": torch.zeros(1)}
    with pytest.raises(UnrecognizedCheckpointError, match="huggan"):
        infer_architecture(pix2pix)
    with pytest.raises(UnrecognizedCheckpointError, match="PyTorch-GAN's GeneratorResNet"):
        infer_architecture(RefBlockKeyedResnet().state_dict())
    # block-keyed, but upsampling with transposed convs: not PyTorch-GAN's, say what would fit
    with pytest.raises(UnrecognizedCheckpointError, match="rename '.block.' to '.conv_block.'"):
        infer_architecture(RefBlockKeyedResnet(transposed=True).state_dict())


def test_huggan_style_folder_with_pix2pix_layout(tmp_path):
    reference = RefResnetGenerator(3, 3, 4, 2, False).eval()
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text('{"input_shape": [3, 32, 32]}')
    assert compare(reference, convert_pix2pix_checkpoint(str(tmp_path)), 3, 32) < 1e-5


def test_hub_id_offline(hub_offline):
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE=1"):
        convert_pix2pix_checkpoint("huggan/no-such-model")


def test_cli_writes_loadable_folder(tmp_path, caplog):
    reference = trained_looking(RefNLayerDiscriminator(6, 4, 2), 6, 32)
    torch.save(reference.state_dict(), tmp_path / "latest_net_D.pth")
    argv = ["--checkpoint", str(tmp_path / "latest_net_D.pth"), "--output_dir", str(tmp_path / "d")]
    with caplog.at_level(logging.INFO, logger="wkd_hf"):
        assert main(argv) == 0
    assert "PatchDiscriminator(in_channels=6, ndf=4, n_layers=2" in caplog.text
    assert "parameters" in caplog.text
    assert compare(reference, load_pretrained_model(str(tmp_path / "d")), 6, 32) < 1e-5
    assert main(["--checkpoint", str(tmp_path / "missing.pth")]) == 1


def _affine_instance_norms(net):
    """Swap every InstanceNorm2d for one with weight and bias (no running stats), in place."""
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.InstanceNorm2d):
                setattr(module, name, nn.InstanceNorm2d(child.num_features, affine=True))
    return net


def test_affine_instance_norm_is_not_batch_norm(tmp_path):
    reference = _affine_instance_norms(RefResnetGenerator(3, 3, 4, 2, False))
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0, 0.3)
    reference.eval()
    torch.save(reference.state_dict(), tmp_path / "latest_net_G.pth")
    model = convert_pix2pix_checkpoint(tmp_path / "latest_net_G.pth")
    assert model.config.norm_type == "instance_affine"
    assert compare(reference, model, 3, 32) < 1e-5


def test_instance_norm_unet_has_no_dropout(caplog):
    with caplog.at_level(logging.INFO, logger="wkd_hf"):
        _, config = infer_architecture(UnetGenerator(ngf=4, num_downs=5, norm_type="instance")
                                       .state_dict())
    assert config["use_dropout"] is False and "leaves no trace" in caplog.text
    _, config = infer_architecture(RefUnetGenerator(3, 3, 4, 5).state_dict())  # batch norm
    assert config["use_dropout"] is True


def test_transposed_conv_generator_is_not_called_a_patchgan():
    generator = nn.Module()
    generator.model = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2),
                                    nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh())
    with pytest.raises(UnrecognizedCheckpointError) as excinfo:
        infer_architecture(generator.state_dict())
    message = str(excinfo.value)
    assert "not a PatchGAN discriminator" in message and "transposed conv" in message
    assert "PatchGAN-like" not in message


def test_one_dimensional_tensors_under_unet_keys(tmp_path):
    state_dict = RefUnetGenerator(3, 3, 4, 5).state_dict()
    state_dict["model.model.0.weight"] = torch.zeros(4)
    torch.save(state_dict, tmp_path / "net_G.pth")
    with pytest.raises(UnrecognizedCheckpointError,
                       match=r"net_G.pth.*'model.model.0.weight' should be a 4-d conv weight but "
                             r"is shape \(4,\)"):
        convert_pix2pix_checkpoint(tmp_path / "net_G.pth")
