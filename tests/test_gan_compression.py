"""GAN Compression's networks: the compressed ``SubMobileResnetGenerator`` (per-stage widths) and
mobile blocks with any outer norm.

The reference networks below are written here from the architecture description in GAN
Compression's papers / the shared data README, as plain nn.Modules with its module layout; they do
not use wkd_hf. The published horse2zebra student (``../shared/data/gan_compression_h2z``) is
checked against outputs of GAN Compression's own code: without that data these tests skip on a
developer machine and fail when ``CI`` is set.
"""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import TINY_RUN, run_script
from wkd_hf.conversion import convert_pix2pix_checkpoint
from wkd_hf.models import ResnetGenerator, SubMobileResnetGenerator, load_pretrained_model
from wkd_hf.models.building import build_student


class RefSeparableConv(nn.Module):
    """Depthwise 3x3 (bias) -> parameter-free InstanceNorm -> pointwise 1x1 (bias)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cin, 3, groups=cin), nn.InstanceNorm2d(cin), nn.Conv2d(cin, cout, 1)
        )

    def forward(self, x):
        return self.conv(x)


class RefSubMobileBlock(nn.Module):
    def __init__(self, dim, inner, norm):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), RefSeparableConv(dim, inner), norm(inner), nn.ReLU(True),
            nn.Dropout(0.0), nn.ReflectionPad2d(1), RefSeparableConv(inner, dim), norm(dim),
        )  # fmt: skip

    def forward(self, x):
        return x + self.conv_block(x)


class RefSubMobileResnet(nn.Module):
    """Per-stage widths ``c`` (8 ints); ``c = [ngf] * 8`` is the full-width mobile ResNet."""

    def __init__(self, c, n_blocks, norm=nn.InstanceNorm2d, in_nc=3, out_nc=3):
        super().__init__()
        bias = norm is nn.InstanceNorm2d
        seq = [nn.ReflectionPad2d(3), nn.Conv2d(in_nc, c[0], 7, bias=bias), norm(c[0]), nn.ReLU()]
        seq += [nn.Conv2d(c[0], 2 * c[1], 3, 2, 1, bias=bias), norm(2 * c[1]), nn.ReLU()]
        seq += [nn.Conv2d(2 * c[1], 4 * c[2], 3, 2, 1, bias=bias), norm(4 * c[2]), nn.ReLU()]
        seq += [RefSubMobileBlock(4 * c[2], 4 * c[3 + i // 3], norm) for i in range(n_blocks)]
        for cin, cout in ((4 * c[2], 2 * c[6]), (2 * c[6], c[7])):
            seq += [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1, bias=bias)]
            seq += [norm(cout), nn.ReLU()]
        seq += [nn.ReflectionPad2d(3), nn.Conv2d(c[7], out_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x.clamp(-1, 1))


def trained_looking(net, size=32):
    """Random weights everywhere (biases and norm affines too), BN statistics from a few batches."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
        net.train()
        for _ in range(3):
            net(torch.randn(4, 3, size, size))
    return net.eval()


def max_diff(reference, model, size=32, scale=1.0):
    x = (torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1) * scale
    with torch.no_grad():
        return (reference(x) - model(x)).abs().max().item()


# ----------------------------------------------------------------------------- synthetic
TINY = [4, 6, 8, 2, 4, 6, 3, 5]  # every stage its own width; 7 blocks use c[3], c[4], c[5]


def test_synthetic_sub_mobile_checkpoint_converts_exactly(tmp_path):
    reference = trained_looking(RefSubMobileResnet(TINY, n_blocks=7))
    torch.save(reference.state_dict(), tmp_path / "latest_net_G.pth")
    model = convert_pix2pix_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "out")
    assert type(model) is SubMobileResnetGenerator
    assert model.config.channels == TINY and model.config.n_blocks == 7
    assert max_diff(reference, model) < 1e-5
    assert max_diff(reference, model, scale=3.0) < 1e-5  # both clamp the input to [-1, 1]
    reloaded = load_pretrained_model(str(tmp_path / "out"))
    assert reloaded.config.channels == TINY and max_diff(reference, reloaded) < 1e-5


def test_sub_mobile_config_string_and_features():
    model = SubMobileResnetGenerator(channels="_".join(map(str, TINY)), n_blocks=4)
    assert model.config.channels == TINY
    _, features = model(torch.zeros(1, 3, 32, 32), return_features=True)
    assert {k: v.shape[1] for k, v in features.items()} == model.feature_channels()
    assert model.feature_channels()["up_0"] == 6 and model.default_feature_layers() == [
        "block_2", "block_3"]  # fmt: skip
    for bad in ("16_16", [4, 4, 4, 4, 4, 4, 4, 0], [4.0] * 8):
        with pytest.raises(ValueError, match="channels must be 8 positive ints"):
            SubMobileResnetGenerator(channels=bad)


@pytest.mark.parametrize("norm", [nn.BatchNorm2d, nn.InstanceNorm2d])
def test_full_width_mobile_checkpoints_with_any_norm(norm, tmp_path):
    """GAN Compression's MobileResnetGenerator (uniform widths): its separable convs keep their
    biases and inner InstanceNorm with batch norm outside too."""
    reference = trained_looking(RefSubMobileResnet([4] * 8, n_blocks=3, norm=norm))
    model = convert_pix2pix_checkpoint(reference.state_dict())
    assert type(model) is ResnetGenerator and model.config.block_type == "mobile"
    assert model.config.norm_type == ("batch" if norm is nn.BatchNorm2d else "instance")
    assert max_diff(reference, model) < 1e-5
    fresh = ResnetGenerator(ngf=4, n_blocks=1, block_type="mobile", norm_type="batch")
    separable = fresh.model[10].conv_block[1].conv
    assert separable[0].bias is not None and separable[2].bias is not None
    assert isinstance(separable[1], nn.InstanceNorm2d) and not separable[1].affine


def test_sub_mobile_batch_norm_checkpoint(tmp_path):
    channels = [4, 4, 4, 2, 2, 2, 4, 4]  # GAN Compression's BN sizes only work with these equal
    reference = trained_looking(RefSubMobileResnet(channels, n_blocks=3, norm=nn.BatchNorm2d))
    model = convert_pix2pix_checkpoint(reference.state_dict())
    assert type(model) is SubMobileResnetGenerator and model.config.norm_type == "batch"
    assert max_diff(reference, model) < 1e-5


def test_input_size_check():
    model = SubMobileResnetGenerator(channels=TINY, n_blocks=1)
    model.check_input_size(32, 36)
    with pytest.raises(ValueError, match="multiples of 4.*got 30x32"):
        model.check_input_size(30, 32)


# ----------------------------------------------------------------------------- as a teacher
def test_student_for_a_sub_mobile_teacher():
    teacher = SubMobileResnetGenerator(channels=TINY, n_blocks=4)
    student = build_student(teacher, ngf=4, block_type="mobile")
    assert type(student) is ResnetGenerator and student.config.n_blocks == 4
    assert student.config.block_type == "mobile" and student.config.norm_type == "instance"
    assert set(teacher.default_feature_layers()) <= set(student.feature_channels())


def test_distill_from_a_gan_compression_checkpoint(tmp_path):
    for domain in ("trainA", "trainB"):
        (tmp_path / "data" / domain).mkdir(parents=True)
        for i in range(4):
            pixels = np.random.default_rng(i).integers(0, 256, (40, 40, 3), np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / domain / f"{i}.png")
    teacher = trained_looking(RefSubMobileResnet(TINY, n_blocks=3))
    torch.save(teacher.state_dict(), tmp_path / "latest_net_G.pth")
    out = tmp_path / "student"
    run_script("distill", ["--mode", "teacher_target",
                           "--teacher_model_name_or_path", str(tmp_path / "latest_net_G.pth"),
                           "--train_data_dir", str(tmp_path / "data"), "--student_ngf", "4",
                           "--discriminator_ndf", "4", "--wkd_levels", "3",
                           "--output_dir", str(out), *TINY_RUN])  # fmt: skip
    student = ResnetGenerator.from_pretrained(out)
    assert student.config.ngf == 4 and student.config.n_blocks == 3
