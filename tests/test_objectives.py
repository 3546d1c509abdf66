"""The distillers' losses on one fixed batch equal the pix2pix / CycleGAN / WKD formulas written
independently in ``objective_reference`` (float64, PyWavelets), to 1e-5.

Each case would fail with the x100 L1 weight dropped, real/fake labels swapped, the identity
weight changed, the cycle term computed through the wrong generator, or a wrong WKD band.
"""

import pytest
import torch
from objective_reference import gan, l1, wkd

from wkd_hf.distillation import CycleDistiller, PairedDistiller, WKDConfig
from wkd_hf.models import PatchDiscriminator, ResnetGenerator


def _generator(ngf: int, seed: int) -> ResnetGenerator:
    torch.manual_seed(seed)
    return ResnetGenerator(ngf=ngf, n_blocks=2)


def _discriminator(in_channels: int, seed: int, norm: str) -> PatchDiscriminator:
    torch.manual_seed(seed)
    return PatchDiscriminator(in_channels=in_channels, ndf=4, n_layers=2, norm_type=norm)


def _images(seed: int, n: int = 2, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert float(actual.detach()) == pytest.approx(float(expected.detach()), rel=1e-5, abs=1e-5)


CASES = [(bands, distance, gan_mode) for bands in ("high", "none") for distance in ("l1", "l2")
         for gan_mode in ("vanilla", "lsgan")] + [("all", "l1", "hinge"), ("low", "l2", "hinge")]


@pytest.mark.parametrize("mode", ["paired", "teacher_target"])
@pytest.mark.parametrize("bands, distance, gan_mode", CASES)
def test_paired_and_teacher_target_objectives(mode, bands, distance, gan_mode):
    config = WKDConfig(mode=mode, wave="haar", levels=2, bands=bands, distance=distance,
                       gan_mode=gan_mode, lambda_wkd=0.4, kd_output_weight=0.3,
                       conditional_discriminator=mode == "paired")
    teacher, student = _generator(8, 1), _generator(4, 2)
    discriminator = _discriminator(6 if mode == "paired" else 3, 3, "batch")
    distiller = PairedDistiller(student, discriminator, config, teacher)
    x, y = _images(4), _images(5)
    batch = {"source": x, "target": y} if mode == "paired" else {"source": x}
    outputs = distiller.generate(batch)
    d_loss, _ = distiller.discriminator_loss(batch, outputs)
    g_loss, _ = distiller.generator_loss(batch, outputs)

    # The reference: the same networks, the objective from its formulas.
    fake = outputs.fakes["fake"]
    assert torch.equal(fake, student(x))
    with torch.no_grad():
        teacher_fake = teacher.eval()(x)
    target = y if mode == "paired" else teacher_fake

    def judge(image):
        return discriminator(torch.cat([x, image], 1) if mode == "paired" else image)

    expected_d = 0.5 * (gan(judge(target), True, gan_mode) + gan(judge(fake.detach()), False,
                                                                   gan_mode))
    expected_g = (1.0 * gan(judge(fake), True, gan_mode, for_generator=True)
                  + 100.0 * l1(fake, target) + 0.3 * l1(fake, teacher_fake))
    if bands != "none":
        expected_g = expected_g + 0.4 * wkd(fake, teacher_fake, "haar", 2, bands, distance)
    _close(d_loss, expected_d)
    _close(g_loss, expected_g)


@pytest.mark.parametrize("bands, distance, gan_mode", CASES)
def test_cycle_objective(bands, distance, gan_mode):
    config = WKDConfig(mode="cycle", wave="haar", levels=2, bands=bands, distance=distance,
                       gan_mode=gan_mode, lambda_wkd=0.4, lambda_cycle=10.0, lambda_identity=0.5)
    teachers = {"a2b": _generator(8, 1), "b2a": _generator(8, 2)}
    g_a, g_b = _generator(4, 3), _generator(4, 4)
    d_b, d_a = _discriminator(3, 5, "instance"), _discriminator(3, 6, "instance")
    distiller = CycleDistiller({"a2b": g_a, "b2a": g_b}, {"a2b": d_b, "b2a": d_a}, config,
                               teachers)
    a, b = _images(7, n=1), _images(8, n=1)
    batch = {"A": a, "B": b}
    outputs = distiller.generate(batch)
    g_loss, _ = distiller.generator_loss(batch, outputs)
    d_loss, _ = distiller.discriminator_loss(batch, outputs)  # a fresh pool returns its input

    fake_b, fake_a = g_a(a), g_b(b)
    with torch.no_grad():
        teacher_b, teacher_a = teachers["a2b"].eval()(a), teachers["b2a"].eval()(b)
    expected_g = (gan(d_b(fake_b), True, gan_mode, for_generator=True)
                  + gan(d_a(fake_a), True, gan_mode, for_generator=True)
                  + 10.0 * l1(g_b(fake_b), a) + 10.0 * l1(g_a(fake_a), b)   # cycle
                  + 10.0 * 0.5 * (l1(g_a(b), b) + l1(g_b(a), a)))            # identity
    if bands != "none":
        expected_g = expected_g + 0.4 * (wkd(fake_b, teacher_b, "haar", 2, bands, distance)
                                         + wkd(fake_a, teacher_a, "haar", 2, bands, distance))
    expected_d = (0.5 * (gan(d_b(b), True, gan_mode) + gan(d_b(fake_b.detach()), False, gan_mode))
                  + 0.5 * (gan(d_a(a), True, gan_mode)
                           + gan(d_a(fake_a.detach()), False, gan_mode)))
    _close(g_loss, expected_g)
    _close(d_loss, expected_d)


@pytest.mark.parametrize("mode", ["paired", "teacher_target", "cycle"])
def test_gan_loss_defaults_follow_the_reference_recipes(mode, tmp_path):
    config = WKDConfig(mode=mode)
    assert config.gan_mode == ("vanilla" if mode == "paired" else "lsgan")
    config.save(tmp_path)
    assert f'"gan_mode": "{config.gan_mode}"' in (tmp_path / "wkd_config.json").read_text()
    assert WKDConfig.load(tmp_path) == config
