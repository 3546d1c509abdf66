"""The distillers: which parameters learn, how often the teacher runs, the CycleGAN objective."""

import pytest
import torch

from wkd_hf.distillation import (
    CycleDistiller,
    ImagePool,
    PairedDistiller,
    WKDConfig,
    build_feature_kd,
)
from wkd_hf.models import PatchDiscriminator, ResnetGenerator


def tiny_generator(ngf=4, seed=0):
    torch.manual_seed(seed)
    return ResnetGenerator(ngf=ngf, n_blocks=2)


def paired_batch(n=2, size=32):
    torch.manual_seed(1)
    return {"source": torch.rand(n, 3, size, size) * 2 - 1,
            "target": torch.rand(n, 3, size, size) * 2 - 1}


class CountingTeacher(torch.nn.Module):
    """Wraps a generator and counts forward calls."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x, return_features=False):
        self.calls += 1
        return self.inner(x, return_features=return_features)

    def feature_channels(self):
        return self.inner.feature_channels()


def paired_step(distiller, batch):
    outputs = distiller.generate(batch)
    d_loss, d_logs = distiller.discriminator_loss(batch, outputs)
    g_loss, g_logs = distiller.generator_loss(batch, outputs)
    return d_loss, d_logs, g_loss, g_logs


def test_config_validation_and_round_trip(tmp_path):
    with pytest.raises(ValueError, match="bands='mid'"):
        WKDConfig(bands="mid")
    with pytest.raises(ValueError, match="lambda_wkd=-1"):
        WKDConfig(lambda_wkd=-1)
    config = WKDConfig(bands="all", kd_feature_layers=["block_1"], levels=3)
    config.save(tmp_path)
    assert WKDConfig.load(tmp_path) == config
    assert not WKDConfig(bands="none").uses_teacher
    assert WKDConfig(bands="none", mode="teacher_target").uses_teacher


def test_teacher_runs_once_per_batch_and_gets_no_gradient():
    teacher = CountingTeacher(tiny_generator(ngf=8, seed=3))
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student, disc = tiny_generator(), PatchDiscriminator(in_channels=6, ndf=4)
    config = WKDConfig(kd_output_weight=1.0, levels=2)
    distiller = PairedDistiller(student, disc, config, teacher)
    d_loss, _, g_loss, g_logs = paired_step(distiller, paired_batch())
    assert teacher.calls == 1
    assert set(g_logs) == {"g_gan", "g_recon", "wkd", "kd_output"}
    g_loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is None for p in disc.parameters()), "G loss must not train D"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    torch.optim.SGD(student.parameters(), lr=0.1).step()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not teacher.training


def test_discriminator_loss_trains_only_the_discriminator():
    student, disc = tiny_generator(), PatchDiscriminator(in_channels=6, ndf=4)
    distiller = PairedDistiller(student, disc, WKDConfig(bands="none"))
    batch = paired_batch()
    outputs = distiller.generate(batch)
    d_loss, d_logs = distiller.discriminator_loss(batch, outputs)
    d_loss.backward()
    assert all(p.grad is None for p in student.parameters())
    assert all(p.grad is not None for p in disc.parameters())
    assert set(d_logs) == {"d_real", "d_fake"}


def test_feature_kd_trains_adapters_and_student_only():
    teacher, student = tiny_generator(ngf=8, seed=3), tiny_generator(ngf=4)
    config = WKDConfig(bands="none", kd_feature_weight=1.0, kd_feature_layers=("block_1",))
    adapters = build_feature_kd(student, teacher, config)
    distiller = PairedDistiller(student, PatchDiscriminator(in_channels=6, ndf=4), config,
                                teacher, adapters)
    _, _, g_loss, logs = paired_step(distiller, paired_batch())
    assert "kd_feature" in logs
    g_loss.backward()
    assert all(p.grad is not None for p in adapters.parameters())
    assert all(p.grad is None for p in teacher.parameters())


def test_wkd_weight_scales_the_generator_loss():
    teacher = tiny_generator(ngf=8, seed=3)
    batch = paired_batch()
    losses = []
    for weight in (0.0, 1.0):
        student = tiny_generator()
        torch.manual_seed(0)
        disc = PatchDiscriminator(in_channels=6, ndf=4)
        config = WKDConfig(lambda_wkd=weight, levels=2)
        distiller = PairedDistiller(student, disc, config, teacher if weight else None)
        _, _, g_loss, logs = paired_step(distiller, batch)
        losses.append((float(g_loss.detach()), logs))
    (without, _), (with_wkd, logs) = losses
    assert with_wkd == pytest.approx(without + float(logs["wkd"]), rel=1e-5)


def test_teacher_target_mode_uses_teacher_output_as_target():
    teacher, student = tiny_generator(ngf=8, seed=3), tiny_generator()
    config = WKDConfig(mode="teacher_target", bands="none", conditional_discriminator=False)
    distiller = PairedDistiller(student, PatchDiscriminator(in_channels=3, ndf=4), config, teacher)
    batch = {"source": paired_batch()["source"]}
    outputs = distiller.generate(batch)
    _, logs = distiller.generator_loss(batch, outputs)
    expected = torch.nn.functional.l1_loss(outputs.fakes["fake"], teacher(batch["source"]))
    assert float(logs["g_recon"]) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_missing_teacher_is_a_clear_error():
    with pytest.raises(ValueError, match="teacher=None"):
        PairedDistiller(tiny_generator(), PatchDiscriminator(ndf=4), WKDConfig())


def test_cycle_distiller_objective_and_gradients():
    students = {"a2b": tiny_generator(seed=0), "b2a": tiny_generator(seed=1)}
    teachers = {"a2b": tiny_generator(ngf=8, seed=2), "b2a": tiny_generator(ngf=8, seed=3)}
    discs = {k: PatchDiscriminator(in_channels=3, ndf=4, norm_type="instance") for k in students}
    config = WKDConfig(mode="cycle", levels=2, pool_size=2)
    distiller = CycleDistiller(students, discs, config, teachers)
    torch.manual_seed(0)
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    outputs = distiller.generate(batch)
    d_loss, d_logs = distiller.discriminator_loss(batch, outputs)
    g_loss, g_logs = distiller.generator_loss(batch, outputs)
    for name in ("a2b", "b2a"):
        assert {f"{name}_g_gan", f"{name}_cycle", f"{name}_identity", f"{name}_wkd"} <= set(g_logs)
        assert {f"{name}_d_real", f"{name}_d_fake"} <= set(d_logs)
    g_loss.backward()
    for student in students.values():
        assert all(p.grad is not None for p in student.parameters())
    for teacher in teachers.values():
        assert all(p.grad is None for p in teacher.parameters())
    previews = distiller.preview(batch)
    assert set(previews) == {"a2b", "b2a"} and len(previews["a2b"]) == 3


def test_image_pool_is_seeded_and_restorable():
    torch.manual_seed(0)
    pool = ImagePool(2)
    images = [torch.full((1, 3, 4, 4), float(i)) for i in range(6)]
    first = [pool.query(x) for x in images[:3]]
    state = pool.state_dict()
    rng = torch.get_rng_state()
    rest = [pool.query(x) for x in images[3:]]
    clone = ImagePool(0)
    clone.load_state_dict(state)
    torch.set_rng_state(rng)
    assert all(torch.equal(a, clone.query(x)) for a, x in zip(rest, images[3:]))
    assert torch.equal(first[0], images[0]) and len(pool.images) == 2
    assert torch.equal(ImagePool(0).query(images[5]), images[5])


def test_image_pool_draws_do_not_depend_on_the_global_rng():
    """A resumed run's data loader draws from the global RNG at a different time than the
    uninterrupted run's; the pool must not care (its own seeded generator, in its state)."""
    images = [torch.full((1, 3, 4, 4), float(i)) for i in range(12)]
    first, second = ImagePool(3, seed=7), ImagePool(3, seed=7)
    plain = [first.query(x) for x in images[:6]]
    disturbed = []
    for x in images[:6]:
        torch.rand(5)  # someone else uses the global RNG in between
        disturbed.append(second.query(x))
    assert all(torch.equal(a, b) for a, b in zip(plain, disturbed))
    restored = ImagePool(0)
    restored.load_state_dict(first.state_dict())
    assert all(torch.equal(first.query(x), restored.query(x)) for x in images[6:])
