import json
import re

import pytest
import torch
from torch import nn

from wkd_hf.metrics.efficiency import (
    EfficiencyProfile,
    compression_ratios,
    count_macs,
    count_parameters,
    format_profiles,
    main,
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
    assert report["ratios_vs_first"][1]["params_ratio"] == pytest.approx(
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
