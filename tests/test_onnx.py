"""ONNX export + parity check (ONNX Runtime vs PyTorch) on tiny generators of every family."""

import sys

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from wkd_hf.cli.export_onnx import main
from wkd_hf.models import ResnetGenerator, SubMobileResnetGenerator, UnetGenerator
from wkd_hf.onnx_export import (
    OnnxGenerator,
    OnnxParityError,
    check_parity,
    export_onnx,
    real_images,
)

TINY = {
    "resnet": lambda: ResnetGenerator(ngf=4, n_blocks=2),
    "mobile": lambda: ResnetGenerator(ngf=4, n_blocks=2, block_type="mobile"),
    "resnet_batchnorm": lambda: ResnetGenerator(ngf=4, n_blocks=1, norm_type="batch"),
    "unet": lambda: UnetGenerator(ngf=4, num_downs=5),
    "unet_instance": lambda: UnetGenerator(ngf=4, num_downs=5, norm_type="instance"),
    "gan_compression": lambda: SubMobileResnetGenerator(channels=[4] * 8, n_blocks=3),
}


def _model(name):
    torch.manual_seed(0)
    model = TINY[name]().eval()
    if name == "resnet_batchnorm":  # non-trivial running stats, so eval-mode BN matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2)
    return model


@pytest.mark.parametrize("name", sorted(TINY))
def test_export_is_dynamic_and_matches_pytorch(tmp_path, name):
    model = _model(name)
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(model, path, resolution=32)
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4
    assert len(report.checked_shapes) == 3  # export size, another batch, another (non-square) size
    graph = onnx.load(str(path)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    ops = {node.op_type for node in graph.node}
    if "instance" in str(model.config.norm_type) or name in ("mobile", "gan_compression"):
        assert "InstanceNormalization" in ops
    # the runtime at a size and batch the export never saw, on real photos
    runner = OnnxGenerator(path)
    multiple = int(runner.metadata["size_multiple"])
    images = real_images(3, 2 * multiple, 3 * multiple)
    with torch.no_grad():
        expected = model(images)
    assert torch.allclose(runner(images), expected, atol=1e-4)
    assert runner.config["in_channels"] == 3 and runner.class_name == type(model).__name__


def test_parity_check_catches_a_wrong_graph(tmp_path):
    model = _model("resnet")
    path = tmp_path / "g.onnx"
    export_onnx(model, path, resolution=16, check=False)
    with torch.no_grad():
        model.model[1].weight.mul_(1.5)  # PyTorch now computes something else than the file
    with pytest.raises(OnnxParityError, match="differs from PyTorch"):
        check_parity(model, path, [(1, 3, 16, 16)])


def test_parity_check_leaves_the_callers_model_as_it_was(tmp_path):
    model = _model("resnet")
    export_onnx(model, tmp_path / "g.onnx", resolution=16, check=False)
    model.to(torch.bfloat16).train()  # e.g. a bf16 model in the middle of training
    check_parity(model, tmp_path / "g.onnx", [(1, 3, 16, 16)], atol=1.0)  # bf16 weights: loose
    assert model.training and all(p.dtype == torch.bfloat16 for p in model.parameters())


def test_onnx_generator_checks_sizes_and_serves_the_pipeline(tmp_path):
    from wkd_hf.pipeline import ImageTranslationPipeline

    model = _model("resnet")
    path = tmp_path / "g.onnx"
    export_onnx(model, path, resolution=16, metadata={"resolution": 16})
    runner = OnnxGenerator(path)
    with pytest.raises(ValueError, match="multiples of 4"):
        runner.check_input_size(10, 16)
    assert runner.metadata["resolution"] == "16"
    images = torch.rand(2, 3, 13, 21)
    a = ImageTranslationPipeline(model)(images, output_type="pt").images
    b = ImageTranslationPipeline(runner)(images, output_type="pt").images
    assert a.shape == (2, 3, 13, 21) and torch.allclose(a, b, atol=1e-4)


def test_real_images_look_like_photos():
    images = real_images(2, 32, 48)
    assert images.shape == (2, 3, 32, 48) and images.min() >= -1 and images.max() <= 1
    neighbours = (images[..., 1:] - images[..., :-1]).abs().mean()
    assert neighbours < 0.2 and images.std() > 0.2  # smooth, not noise, not flat


def test_export_cli(tmp_path, capsys):
    model = _model("mobile")
    model.save_pretrained(tmp_path / "g")
    out = tmp_path / "onnx" / "g.onnx"
    assert main(["--model", str(tmp_path / "g"), "--output", str(out), "--resolution", "16"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "max abs diff vs PyTorch" in printed
    assert main(["--model", str(tmp_path / "missing"), "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("wkd-export-onnx: error:") and "\n" not in err
    assert np.isfinite(OnnxGenerator(out)(torch.zeros(1, 3, 8, 8)).numpy()).all()


@pytest.mark.parametrize("norm_type", ["instance", "instance_affine"])
def test_instance_norm_as_layer_norm_matches_pytorch(tmp_path, norm_type):
    torch.manual_seed(0)
    model = ResnetGenerator(ngf=4, n_blocks=1, norm_type=norm_type).eval()
    for m in model.modules():  # a non-trivial per-channel scale and bias
        if isinstance(m, torch.nn.InstanceNorm2d) and m.affine:
            with torch.no_grad():
                m.weight.uniform_(0.5, 2)
                m.bias.uniform_(-1, 1)
    path = tmp_path / "g.onnx"
    report = export_onnx(model, path, resolution=32, instance_norm="layer_norm")
    assert report.max_abs_diff <= 1e-4
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "InstanceNormalization" not in ops and ops.count("LayerNormalization") == 7
    assert ops.count("Mul") == (7 if norm_type == "instance_affine" else 0)
    with pytest.raises(ValueError, match="instance_norm"):
        export_onnx(model, path, instance_norm="batch")


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_a_missing_deploy_package_is_one_line_with_the_install(tmp_path, capsys, monkeypatch,
                                                               missing):
    from wkd_hf.cli.translate import main as translate

    _model("mobile").save_pretrained(tmp_path / "g")
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    out = tmp_path / "g.onnx"
    assert main(["--model", str(tmp_path / "g"), "--output", str(out), "--resolution", "16"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("wkd-export-onnx: error:") and "\n" not in err
    assert f"needs {missing}" in err and "pip install 'wkd_hf[deploy]'" in err
    assert "opset" not in err and not out.exists()
    Image.new("RGB", (16, 16)).save(tmp_path / "in.png")
    assert translate(["--model", str(tmp_path / "g"), "--input", str(tmp_path / "in.png"),
                      "--output", str(tmp_path / "out"), "--backend", "onnx",
                      "--no_progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("wkd-translate: error:") and "\n" not in err
    assert f"needs {missing}" in err and "pip install 'wkd_hf[deploy]'" in err
    if missing == "onnxruntime":  # running an exported file
        with pytest.raises(ImportError, match=r"needs onnxruntime.*wkd_hf\[deploy\]"):
            OnnxGenerator(tmp_path / "any.onnx")
