"""Evaluation during training: cheap validation metrics logged to the trackers every
--validation_steps, and --keep_best METRIC keeping the best generator by a validation metric."""

import json

import pytest
from accelerate import Accelerator

from conftest import TINY_RUN, run_script
from wkd_hf.models import load_pretrained_model


def _train(data, out, *extra):
    argv = ["--train_data_dir", str(data), "--direction", "BtoA", "--ngf", "4", "--n_blocks", "1",
            "--ndf", "4", "--output_dir", str(out), *TINY_RUN, "--max_train_steps", "3",
            "--validation_steps", "1", *extra]
    return run_script("train_teacher", argv)


@pytest.mark.parametrize("metric, pick", [("psnr", max), ("l1", min)])
def test_validation_metrics_are_logged_and_the_best_generator_is_kept(tmp_path, photo_pairs,
                                                                      monkeypatch, metric, pick):
    logged = []
    monkeypatch.setattr(Accelerator, "log", lambda self, values, step=None, **kw:
                        logged.append((step, dict(values))))
    out = tmp_path / "run"
    _train(photo_pairs, out, "--keep_best", metric)
    by_step = {step: values[f"validation/{metric}"] for step, values in logged
               if f"validation/{metric}" in values}
    assert sorted(by_step)[:3] == [1, 2, 3]
    first = next(values for _, values in logged if f"validation/{metric}" in values)
    assert {"validation/ssim", "validation/psnr", "validation/band_HH"} <= set(first)
    best = json.loads((out / "best" / "best_metric.json").read_text())
    assert best["metric"] == metric and best["split"] == "validation"
    assert best["higher_is_better"] is (pick is max)
    assert best["value"] == pytest.approx(pick(by_step.values()), rel=1e-6)
    assert by_step[best["step"]] == pytest.approx(best["value"], rel=1e-6)
    assert load_pretrained_model(str(out / "best")).config.ngf == 4


def test_keep_best_refuses_metrics_that_are_not_validation_metrics(tmp_path, photo_pairs):
    with pytest.raises(SystemExit):
        _train(photo_pairs, tmp_path / "run", "--keep_best", "fid")  # FID is for test reports
