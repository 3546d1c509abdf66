import json
import re

import pytest
import torch
from torch import nn

from wkd_hf.cli.profile import main
from wkd_hf.metrics.efficiency import (
    EfficiencyProfile,
    compression_ratios,
    count_macs,
    count_parameters,
    format_profiles,
    interleaved,
    measure_latencies,
    measure_latency,
    profile_model,
)


class _WithConfig(nn.Module):
    """A conv net exposing ``config.in_channels`` like a diffusers model."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {"in_channels": 2}
        self.conv = nn.Conv2d(2, 5, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_conv_macs_closed_form():
    conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
    h_out, w_out = 16, 12  # from 32 x 24 input
    assert count_macs(conv, (32, 24), in_channels=3) == 8 * 3 * 3 * 3 * h_out * w_out
    assert count_macs(conv, (32, 24), in_channels=3, batch_size=2) == 8 * 3 * 9 * h_out * w_out
    assert count_macs(_WithConfig(), 10) == 5 * 2 * 9 * 10 * 10  # in_channels from config


def test_transposed_conv_is_counted_per_input_pixel():
    up = nn.ConvTranspose2d(8, 4, kernel_size=3, stride=2, padding=1, output_padding=1)
    assert count_macs(up, 5, in_channels=8) == 8 * 4 * 3 * 3 * 5 * 5


def test_linear_macs_and_params():
    linear = nn.Linear(6, 7)  # applied to the last axis of a 1 x 3 x 4 x 6 input
    assert count_macs(linear, (4, 6), in_channels=3) == 3 * 4 * 6 * 7
    assert count_parameters(linear) == 6 * 7 + 7


def test_missing_in_channels_is_a_clear_error():
    with pytest.raises(ValueError, match="in_channels"):
        count_macs(nn.Conv2d(3, 3, 1), 8)
    with pytest.raises(ValueError, match="resolution"):
        count_macs(nn.Conv2d(3, 3, 1), (8, 0), in_channels=3)


def test_latency_is_sane_and_restores_state():
    model = _WithConfig().train()
    threads = torch.get_num_threads()
    result = measure_latency(model, 16, num_threads=1, warmup=1, repeats=5)
    assert result.num_threads == 1 and torch.get_num_threads() == threads
    assert model.training
    assert 0 < result.min_ms <= result.p10_ms <= result.median_ms <= result.p90_ms <= result.max_ms
    assert result.max_ms < 1000 and result.repeats == 5 and result.device == "cpu"
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(model, 16, repeats=0)


def test_profiles_ratios_and_table():
    big = profile_model(nn.Conv2d(3, 16, 3), 16, in_channels=3, name="big", repeats=2)
    small = profile_model(nn.Conv2d(3, 4, 3), 16, in_channels=3, latency=False, name="small")
    ratios = compression_ratios(big, small)
    assert ratios["params_ratio"] == pytest.approx(448 / 112) and ratios["macs_ratio"] == 4
    assert ratios["speedup"] is None
    assert json.loads(json.dumps(big.to_dict()))["latency"]["repeats"] == 2
    lines = format_profiles([big, small]).splitlines()
    assert lines[0].split()[:3] == ["model", "params", "(M)"] and len(lines) == 3
    assert lines[2].split()[0] == "small" and "4.00" in lines[2]
    assert len({len(line) for line in lines}) == 1  # aligned


def test_resnet_generator_compression_ratios():
    from wkd_hf.models import ResnetGenerator

    teacher, student = ResnetGenerator(ngf=64, n_blocks=9), ResnetGenerator(ngf=24, n_blocks=9)
    params_t, params_s = count_parameters(teacher), count_parameters(student)
    assert (params_t, params_s) == (11_378_179, 1_605_699)
    # The paper's 7.08x is 11.378M / 1.606M; the exact ratio is 7.086.
    assert round(round(params_t / 1e6, 3) / round(params_s / 1e6, 3), 2) == 7.08
    assert 7.08 <= params_t / params_s < 7.09
    macs_t = count_macs(teacher, 256)
    assert macs_t == pytest.approx(49.55e9, rel=1e-3)
    assert macs_t == 16 * count_macs(teacher, 64)  # MACs scale exactly with pixel count
    macs_ratio = macs_t / (16 * count_macs(student, 64))
    assert macs_ratio == pytest.approx(6.8, abs=0.05)


def test_cli_prints_table_and_writes_json(tmp_path, capsys):
    from wkd_hf.models import ResnetGenerator

    for name, ngf in (("teacher", 8), ("student", 4)):
        ResnetGenerator(ngf=ngf, n_blocks=1).save_pretrained(tmp_path / name / "generator")
    out_json = tmp_path / "report" / "profile.json"
    argv = ["--model", str(tmp_path / "teacher"), "--compare", str(tmp_path / "student")]
    argv += ["--subfolder", "generator", "--resolution", "32", "--repeats", "2", "--warmup", "0"]
    assert main(argv + ["--num_threads", "1", "--json", str(out_json)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].startswith("model") and table[3].startswith(str(tmp_path / "student"))
    report = json.loads(out_json.read_text())
    teacher, student = (EfficiencyProfile(**p) for p in report["profiles"])
    assert teacher.resolution == [32, 32] and teacher.latency["num_threads"] == 1
    assert report["ratios_vs_reference"][1]["params_ratio"] == pytest.approx(
        teacher.params / student.params
    )


def test_cli_reports_load_failure_without_traceback(tmp_path):
    with pytest.raises(SystemExit) as excinfo:
        main(["--model", str(tmp_path / "missing"), "--no_latency"])
    assert str(excinfo.value.code).startswith("wkd-profile: error: could not load model")


def _cli_error(argv, capsys):
    """Run the CLI expecting a clean exit with one ``wkd-profile: error:`` line (no traceback)."""
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    code, err = excinfo.value.code, capsys.readouterr().err
    text = err if code == 2 else str(code)  # argparse prints usage + error and exits 2
    errors = [line for line in text.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("wkd-profile: error:"), text
    assert "Traceback" not in text
    return errors[0]


@pytest.fixture
def tiny_models(tmp_path):
    from wkd_hf.models import ResnetGenerator, UnetGenerator

    ResnetGenerator(ngf=4, n_blocks=1).save_pretrained(tmp_path / "resnet")
    UnetGenerator(ngf=4, num_downs=5).save_pretrained(tmp_path / "unet")
    return tmp_path


@pytest.mark.parametrize("flag", ["--resolution", "--batch_size", "--num_threads", "--repeats"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_cli_rejects_non_positive_numbers(flag, value, tiny_models, capsys):
    line = _cli_error(["--model", str(tiny_models / "resnet"), flag, value], capsys)
    assert f"argument {flag}: must be >= 1, got {value}" in line


def test_cli_rejects_cuda_without_cuda(tiny_models, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = _cli_error(["--model", str(tiny_models / "resnet"), "--device", "cuda"], capsys)
    assert "CUDA is not available" in line and "--device cpu" in line


def test_cli_rejects_unwritable_json_before_profiling(tiny_models, capsys):
    (tiny_models / "a_file").write_text("x")
    target = tiny_models / "a_file" / "profile.json"
    line = _cli_error(["--model", str(tiny_models / "resnet"), "--json", str(target)], capsys)
    assert f"cannot write --json {target}" in line


@pytest.mark.parametrize("model, resolution, shown", [
    ("resnet", "30", "ResnetGenerator needs .*multiples of 4.*got 30x30"),
    ("unet", "48", "UnetGenerator needs .*multiples of 32.*got 48x48.*e.g. 32 or 64"),
])  # fmt: skip
def test_cli_rejects_resolutions_the_model_cannot_take(model, resolution, shown, tiny_models,
                                                       capsys):
    line = _cli_error(["--model", str(tiny_models / model), "--resolution", resolution], capsys)
    assert re.search(f"--resolution {resolution} does not fit .*{shown}", line), line


# ----------------------------------------------------------------------------- controlled clock
class _FakeTime:
    """Stands in for the ``time`` module in ``wkd_hf.metrics.efficiency``: ``perf_counter``
    returns ``now`` (seconds), which only the fake models advance."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class _Timed(nn.Module):
    """A 1x1 conv (3 -> ``width`` channels) whose forward logs its name and advances the fake
    clock by the next of ``delays_ms`` (cycled): latencies the test controls exactly."""

    def __init__(self, name, clock, delays_ms, log, width=4) -> None:
        super().__init__()
        self.config = {"in_channels": 3}
        self.conv = nn.Conv2d(3, width, 1)
        self.name, self.clock, self.delays_ms, self.log = name, clock, delays_ms, log
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.name)
        self.clock.now += self.delays_ms[self.calls % len(self.delays_ms)] / 1000
        self.calls += 1
        return self.conv(x)


@pytest.fixture
def fake_time(monkeypatch):
    import wkd_hf.metrics.efficiency as efficiency

    clock = _FakeTime()
    monkeypatch.setattr(efficiency, "time", clock)
    return clock


def test_interleaved_warms_up_all_then_rotates_each_round():
    clock, log = _FakeTime(), []

    def runner(name, ms):
        def run():
            log.append(name)
            clock.now += ms / 1000
        return run

    runners = {"a": runner("a", 1), "b": runner("b", 2), "c": runner("c", 3)}
    times = interleaved(runners, repeats=4, warmup=1, clock=clock.perf_counter)
    assert log == list("abc" "abc" "bca" "cab" "abc")  # warm-up, then rotated rounds
    assert times == {"a": pytest.approx([1.0] * 4), "b": pytest.approx([2.0] * 4),
                     "c": pytest.approx([3.0] * 4)}


def test_measure_latencies_interleaves_forwards(fake_time):
    log = []
    models = {n: _Timed(n, fake_time, [ms], log) for n, ms in (("a", 5), ("b", 1), ("c", 2))}
    threads = torch.get_num_threads()
    result = measure_latencies(models, 8, warmup=2, repeats=3, num_threads=1)
    assert log == list("abc" "abc" "abc" "bca" "cab")
    for name, ms in (("a", 5.0), ("b", 1.0), ("c", 2.0)):
        assert result[name].times_ms == pytest.approx([ms] * 3)
    assert result["a"].num_threads == 1 and torch.get_num_threads() == threads


def _fake_cli(monkeypatch, fake_time, delays_ms: dict, widths: dict):
    """``wkd-profile`` loads ``_Timed`` models named as in ``delays_ms`` instead of folders."""
    import wkd_hf.cli.profile as profile_cli

    models = {n: _Timed(n, fake_time, d, [], widths[n]) for n, d in delays_ms.items()}
    monkeypatch.setattr(profile_cli, "_load", lambda name, subfolder: models[name])


def test_cli_speedup_is_reference_over_model(monkeypatch, fake_time, tmp_path, capsys):
    _fake_cli(monkeypatch, fake_time, {"teacher": [64], "student": [10]},
              {"teacher": 16, "student": 4})
    argv = ["--resolution", "8", "--repeats", "5", "--warmup", "1"]
    out_json = tmp_path / "p.json"
    main(["--model", "teacher", "--compare", "student", "--json", str(out_json), *argv])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[0] == "teacher" and lines[2].endswith("1.00x [1.00, 1.00]")
    assert lines[3].split()[0] == "student" and lines[3].endswith("6.40x [6.40, 6.40]")
    assert "4.00" in lines[3].split()  # MACs x: also reference / model
    assert "speed-up vs teacher (the reference, --model) = reference latency / model latency" \
        in lines[4]
    assert not any(line.startswith(("warning", "note")) for line in lines)
    report = json.loads(out_json.read_text())
    assert report["reference"] == "teacher" and report["warning"] is None
    speedups = [r["speedup"] for r in report["ratios_vs_reference"]]
    assert speedups == pytest.approx([1.0, 6.4])

    # The other order: the student is the reference, the teacher is slower, and a note says so.
    main(["--model", "student", "--compare", "teacher", *argv])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].endswith("1.00x [1.00, 1.00]") and lines[3].endswith("0.16x [0.16, 0.16]")
    assert any(line.startswith("note: teacher has more MACs than the reference student")
               for line in lines)


def test_cli_help_names_the_reference(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--model is the reference: every ratio (params x, MACs x, speed-up) is reference / " \
           "model" in text
    assert "the teacher shows 1.00x and students > 1" in text


def test_cli_warns_when_the_spread_is_large(monkeypatch, fake_time, tmp_path, capsys):
    # The student alternates fast / slow rounds, as on a busy machine.
    _fake_cli(monkeypatch, fake_time, {"teacher": [60], "student": [10, 20]},
              {"teacher": 16, "student": 4})
    out_json = tmp_path / "p.json"
    main(["--model", "teacher", "--compare", "student", "--resolution", "8", "--repeats", "6",
          "--warmup", "0", "--num_threads", "1", "--json", str(out_json)])
    lines = capsys.readouterr().out.splitlines()
    warnings = [line for line in lines if line.startswith("warning")]
    assert len(warnings) == 1
    assert "for student" in warnings[0] and "speed-up of student varies" in warnings[0]
    assert "machine is probably busy" in warnings[0] and "more --repeats" in warnings[0]
    report = json.loads(out_json.read_text())
    assert report["warning"] == warnings[0]
    student = report["profiles"][1]["latency"]
    assert student["times_ms"] == pytest.approx([10.0, 20.0] * 3)  # round order
    assert student["median_ms"] == pytest.approx(15.0) and student["spread"] > 0.25
    assert report["profiles"][0]["latency"]["spread"] == pytest.approx(0.0, abs=1e-9)


def test_cli_json_fields(monkeypatch, fake_time, tmp_path, capsys):
    _fake_cli(monkeypatch, fake_time, {"teacher": [40], "student": [10, 11]},
              {"teacher": 16, "student": 4})
    out_json = tmp_path / "p.json"
    main(["--model", "teacher", "--compare", "student", "--resolution", "8", "--repeats", "4",
          "--warmup", "2", "--num_threads", "1", "--json", str(out_json)])
    header = capsys.readouterr().out.splitlines()[0]
    assert "torch threads 1" in header and "4 interleaved rounds after 2 warm-up" in header
    report = json.loads(out_json.read_text())
    assert report["num_threads"] == 1 and report["rounds"] == 4 and report["warmup"] == 2
    assert report["order"] == "interleaved, rotated each round" and report["warning"] is None
    assert "reference median latency / model median latency" in report["speedup_definition"]
    latency = report["profiles"][1]["latency"]
    assert latency["num_threads"] == 1 and latency["times_ms"] == pytest.approx([10.0, 11.0] * 2)
    assert (latency["p10_ms"], latency["median_ms"], latency["p90_ms"]) == pytest.approx(
        (10.0, 10.5, 11.0))
    ratios = report["ratios_vs_reference"][1]
    assert ratios["speedup"] == pytest.approx(40 / 10.5)
    assert (ratios["speedup_p10"], ratios["speedup_p90"]) == pytest.approx((40 / 11, 4.0))
    assert set(ratios) == {"params_ratio", "macs_ratio", "speedup", "speedup_p10", "speedup_p90",
                           "speedup_spread"}
