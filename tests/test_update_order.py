"""One training step: the update order of each mode (pix2pix: D then G; CycleGAN and the WKD
authors: G then D), checked against a step written by hand, and what a skipped batch leaves."""

import argparse

import pytest
import torch
from accelerate import Accelerator
from objective_reference import gan, l1

from wkd_hf.checkpointing import LoopState
from wkd_hf.distillation import CycleDistiller, PairedDistiller, WKDConfig
from wkd_hf.models import PatchDiscriminator, ResnetGenerator
from wkd_hf.training import GANTrainingSetup, _train_step


def _generator(seed: int) -> ResnetGenerator:
    torch.manual_seed(seed)
    return ResnetGenerator(ngf=4, n_blocks=1)


def _discriminator(in_channels: int, seed: int) -> PatchDiscriminator:
    torch.manual_seed(seed)
    return PatchDiscriminator(in_channels=in_channels, ndf=4, n_layers=2, norm_type="instance")


def _images(seed: int) -> torch.Tensor:
    return torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _sgd(modules, lr=0.5):
    return torch.optim.SGD([p for m in modules for p in m.parameters()], lr=lr)


def _setup(distiller, generators, discriminators, record=None):
    optimizers = {"generator": _sgd(generators), "discriminator": _sgd(discriminators)}
    if record is not None:
        for name, optimizer in optimizers.items():
            step = optimizer.step
            optimizer.step = lambda step=step, name=name: (record.append(name), step())[1]
    return GANTrainingSetup(distiller, optimizers["generator"], optimizers["discriminator"], [],
                            None, [*generators, *discriminators], discriminators=discriminators)


ARGS = argparse.Namespace(skip_nan_steps=0, output_dir=".")


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _assert_same(module, expected):
    for actual, wanted in zip(module.parameters(), expected):
        torch.testing.assert_close(actual.detach(), wanted, rtol=0, atol=1e-6)


def test_paired_updates_the_discriminator_first_then_the_generator_against_it():
    config = WKDConfig(mode="paired", bands="none", gan_mode="lsgan")
    g, d = _generator(0), _discriminator(6, 1)
    g_ref, d_ref = _generator(0), _discriminator(6, 1)
    x, y = _images(2), _images(3)
    order = []
    distiller = PairedDistiller(g, d, config)
    assert distiller.update_order == ("discriminator", "generator")
    _train_step(Accelerator(cpu=True), _setup(distiller, [g], [d], order),
                {"source": x, "target": y}, ARGS, LoopState())
    assert order == ["discriminator", "generator"]

    # By hand, pix2pix's optimize_parameters: D step, then G against the updated D.
    opt_g, opt_d = _sgd([g_ref]), _sgd([d_ref])
    fake = g_ref(x)
    d_loss = 0.5 * (gan(d_ref(torch.cat([x, y], 1)), True, "lsgan")
                    + gan(d_ref(torch.cat([x, fake.detach()], 1)), False, "lsgan"))
    d_loss.float().backward()
    opt_d.step()
    opt_g.zero_grad()
    for p in d_ref.parameters():
        p.requires_grad_(False)
    g_loss = gan(d_ref(torch.cat([x, fake], 1)), True, "lsgan", True) + 100 * l1(fake, y)
    g_loss.float().backward()
    opt_g.step()
    _assert_same(d, _params(d_ref))
    _assert_same(g, _params(g_ref))


def test_cycle_updates_the_generators_first_then_the_discriminators():
    config = WKDConfig(mode="cycle", bands="none", gan_mode="lsgan", pool_size=0)
    g_a, g_b, d_b, d_a = _generator(0), _generator(1), _discriminator(3, 2), _discriminator(3, 3)
    refs = [_generator(0), _generator(1), _discriminator(3, 2), _discriminator(3, 3)]
    a, b = _images(4), _images(5)
    order = []
    distiller = CycleDistiller({"a2b": g_a, "b2a": g_b}, {"a2b": d_b, "b2a": d_a}, config)
    assert distiller.update_order == ("generator", "discriminator")
    _train_step(Accelerator(cpu=True), _setup(distiller, [g_a, g_b], [d_b, d_a], order),
                {"A": a, "B": b}, ARGS, LoopState())
    assert order == ["generator", "discriminator"]

    # By hand, CycleGAN's optimize_parameters: G step with D frozen, then D on the same fakes.
    rg_a, rg_b, rd_b, rd_a = refs
    opt_g, opt_d = _sgd([rg_a, rg_b]), _sgd([rd_b, rd_a])
    fake_b, fake_a = rg_a(a), rg_b(b)
    for p in [*rd_b.parameters(), *rd_a.parameters()]:
        p.requires_grad_(False)
    g_loss = (gan(rd_b(fake_b), True, "lsgan", True) + gan(rd_a(fake_a), True, "lsgan", True)
              + 10 * (l1(rg_b(fake_b), a) + l1(rg_a(fake_a), b))
              + 5 * (l1(rg_a(b), b) + l1(rg_b(a), a)))
    g_loss.float().backward()
    opt_g.step()
    for p in [*rd_b.parameters(), *rd_a.parameters()]:
        p.requires_grad_(True)
    d_loss = (0.5 * (gan(rd_b(b), True, "lsgan") + gan(rd_b(fake_b.detach()), False, "lsgan"))
              + 0.5 * (gan(rd_a(a), True, "lsgan") + gan(rd_a(fake_a.detach()), False, "lsgan")))
    d_loss.float().backward()
    opt_d.step()
    for module, ref in zip([g_a, g_b, d_b, d_a], refs):
        _assert_same(module, _params(ref))


class NaNTeacher(torch.nn.Module):
    """A teacher whose output is NaN: the generator loss is non-finite, the D loss is not."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, return_features=False):
        return torch.full_like(x, float("nan"))


def test_a_skipped_batch_updates_nothing_in_pix2pix_order():
    g, d = _generator(0), _discriminator(6, 1)
    config = WKDConfig(mode="paired", levels=2, gan_mode="vanilla")
    distiller = PairedDistiller(g, d, config, NaNTeacher())
    setup = _setup(distiller, [g], [d])
    before_g, before_d = _params(g), _params(d)
    state = LoopState()
    args = argparse.Namespace(skip_nan_steps=1, output_dir=".")
    assert _train_step(Accelerator(cpu=True), setup, {"source": _images(1), "target": _images(2)},
                       args, state) is None
    assert state.skipped_nan_steps == 1
    _assert_same(d, before_d)  # the discriminator step of this batch was undone
    _assert_same(g, before_g)


def test_a_skipped_batch_restores_the_discriminator_optimizer_state():
    g, d = _generator(0), _discriminator(6, 1)
    distiller = PairedDistiller(g, d, WKDConfig(mode="paired", levels=2), NaNTeacher())
    adam_d = torch.optim.Adam(d.parameters(), lr=0.1)
    setup = GANTrainingSetup(distiller, _sgd([g]), adam_d, [], None, [g, d], discriminators=[d])
    args = argparse.Namespace(skip_nan_steps=1, output_dir=".")
    _train_step(Accelerator(cpu=True), setup, {"source": _images(1), "target": _images(2)},
                args, LoopState())
    assert adam_d.state_dict()["state"] == {}  # Adam's moments never saw the skipped batch


def test_a_skipped_batch_in_cycle_order_leaves_pools_and_generators_alone(monkeypatch):
    g_a, g_b, d_b, d_a = _generator(0), _generator(1), _discriminator(3, 2), _discriminator(3, 3)
    config = WKDConfig(mode="cycle", bands="none", pool_size=4)
    distiller = CycleDistiller({"a2b": g_a, "b2a": g_b}, {"a2b": d_b, "b2a": d_a}, config)
    original = distiller.discriminator_loss

    def nan_discriminator_loss(batch, outputs):
        loss, logs = original(batch, outputs)  # queries (fills) the pools
        return loss * float("nan"), logs

    monkeypatch.setattr(distiller, "discriminator_loss", nan_discriminator_loss)
    setup = _setup(distiller, [g_a, g_b], [d_b, d_a])
    before = [_params(m) for m in (g_a, g_b, d_b, d_a)]
    args = argparse.Namespace(skip_nan_steps=1, output_dir=".")
    assert _train_step(Accelerator(cpu=True), setup, {"A": _images(1), "B": _images(2)}, args,
                       LoopState()) is None
    for module, params in zip((g_a, g_b, d_b, d_a), before):
        _assert_same(module, params)
    assert all(len(pool.images) == 0 for pool in distiller.pools.values())


def test_a_non_finite_loss_after_the_discriminator_step_says_so(tmp_path):
    g, d = _generator(0), _discriminator(6, 1)
    distiller = PairedDistiller(g, d, WKDConfig(mode="paired", levels=2), NaNTeacher())
    from wkd_hf.training import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match="discriminator had already been updated"):
        _train_step(Accelerator(cpu=True), _setup(distiller, [g], [d]),
                    {"source": _images(1), "target": _images(2)},
                    argparse.Namespace(skip_nan_steps=0, output_dir=str(tmp_path)), LoopState())
