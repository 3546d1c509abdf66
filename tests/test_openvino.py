"""OpenVINO backend: parity with PyTorch, explicit precision, the pipeline and wkd-translate."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("openvino", reason="openvino not installed (pip install 'wkd_hf[deploy]')")

from wkd_hf.cli.translate import main  # noqa: E402
from wkd_hf.models import ResnetGenerator  # noqa: E402
from wkd_hf.onnx_export import export_onnx, real_images  # noqa: E402
from wkd_hf.openvino_backend import (  # noqa: E402
    OpenVinoGenerator,
    OpenVinoParityError,
    check_openvino_parity,
    cpu_capabilities,
)
from wkd_hf.pipeline import ImageTranslationPipeline  # noqa: E402


def _model(block_type="resnet"):
    torch.manual_seed(0)
    return ResnetGenerator(ngf=4, n_blocks=2, block_type=block_type).eval()


@pytest.mark.parametrize("block_type", ["resnet", "mobile"])
def test_float32_matches_pytorch_at_unseen_sizes(tmp_path, block_type):
    model = _model(block_type)
    path = tmp_path / "g.onnx"
    report = export_onnx(model, path, resolution=16)
    assert check_openvino_parity(model, path, report.checked_shapes, atol=1e-4) <= 1e-4
    runner = OpenVinoGenerator(path)
    assert runner.precision == "f32" and runner.class_name == "ResnetGenerator"
    images = real_images(3, 12, 20)  # a batch and a size the export never saw
    with torch.no_grad():
        expected = model(images)
    got = runner(images)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-4)
    with pytest.raises(ValueError, match="multiples of 4"):
        runner.check_input_size(10, 16)


def test_parity_check_catches_a_wrong_graph(tmp_path):
    model = _model()
    path = tmp_path / "g.onnx"
    export_onnx(model, path, resolution=16, check=False)
    with torch.no_grad():
        head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        head.weight.mul_(1.5)  # the last conv: no instance norm after it to undo the change
    with pytest.raises(OpenVinoParityError, match="differs from PyTorch"):
        check_openvino_parity(model, path, [(1, 3, 16, 16)])


def test_bf16_is_close_and_named(tmp_path):
    """bf16 is asked for by name (float32 otherwise). Bounds hold with and without bf16 hardware
    (OpenVINO falls back to float32 where the CPU lacks it)."""
    model = _model("mobile")
    path = tmp_path / "g.onnx"
    export_onnx(model, path, resolution=16)
    images = real_images(2, 32, 32)
    with torch.no_grad():
        expected = model(images)
    bf16 = OpenVinoGenerator(path, precision="bfloat16")
    assert bf16.precision == "bf16" and "FP32" in cpu_capabilities()
    assert (bf16(images) - expected).abs().max() < 0.1  # bf16: 8 mantissa bits
    with pytest.raises(ValueError, match="precision must be one of"):
        OpenVinoGenerator(path, precision="int4")


def test_pipeline_to_backend(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the exports go
    pipe = ImageTranslationPipeline(_model(), resolution=16)
    images = torch.rand(2, 3, 13, 21)
    expected = pipe(images, output_type="pt", size_mode="pad").images
    ov = pipe.to_backend("openvino", num_threads=1)
    onnx = pipe.to_backend("onnx", num_threads=1)
    assert list(tmp_path.iterdir()) == []  # the exported files are not left behind
    assert isinstance(ov.generator, OpenVinoGenerator) and ov.resolution == 16
    got = ov(images, output_type="pt", size_mode="pad").images
    assert got.shape == (2, 3, 13, 21) and torch.allclose(got, expected, atol=1e-4)
    assert torch.allclose(onnx(images, output_type="pt", size_mode="pad").images, expected,
                          atol=1e-4)
    assert pipe.to_backend("torch") is pipe
    with pytest.raises(ValueError, match="backend must be"):
        pipe.to_backend("tensorrt")


def test_translate_cli_openvino(tmp_path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    photo = ((real_images(1, 12, 20)[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
    Image.fromarray(photo).save(data / "a.png")
    model = tmp_path / "model"
    _model().save_pretrained(model)
    outputs = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / backend
        rc = main(["--model", str(model), "--input", str(data), "--output", str(out),
                   "--no_progress", "--backend", backend, "--num_threads", "1"])
        assert rc == 0, capsys.readouterr().err
        outputs[backend] = np.asarray(Image.open(out / "a.png"), dtype=int)
    assert np.abs(outputs["torch"] - outputs["openvino"]).max() <= 1  # 8-bit rounding
    onnx_file = tmp_path / "g.onnx"
    export_onnx(_model(), onnx_file, resolution=16)
    assert main(["--model", str(onnx_file), "--input", str(data), "--output",
                 str(tmp_path / "file"), "--no_progress", "--backend", "openvino"]) == 0
    capsys.readouterr()
    assert main(["--model", str(model), "--input", str(data), "--output", str(tmp_path / "x"),
                 "--no_progress", "--backend", "openvino", "--dtype", "float16"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("wkd-translate: error:") and "\n" not in err and "bfloat16" in err


def test_a_cut_short_onnx_file_is_one_line_saying_so(tmp_path, capsys):
    Image.new("RGB", (16, 16)).save(tmp_path / "in.png")
    export_onnx(_model(), tmp_path / "g.onnx", resolution=16, check=False)
    whole = (tmp_path / "g.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(whole[:len(whole) // 2])  # an interrupted copy
    assert main(["--model", str(tmp_path / "cut.onnx"), "--input", str(tmp_path / "in.png"),
                 "--output", str(tmp_path / "out"), "--no_progress", "--backend", "openvino"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and err[0].startswith("wkd-translate: error:"), err
    assert f"OpenVINO cannot read {tmp_path / 'cut.onnx'}" in err[0] and "export it again" in err[0]


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_bad_wkd_metadata_is_an_error_naming_the_file(tmp_path, runtime):
    import onnx

    from wkd_hf.onnx_export import OnnxGenerator

    export_onnx(_model(), tmp_path / "g.onnx", resolution=16, check=False)
    proto = onnx.load(str(tmp_path / "g.onnx"))
    for entry in proto.metadata_props:
        if entry.key == "wkd_hf.size_multiple":
            entry.value = "four"  # hand-edited metadata
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    load = OnnxGenerator if runtime == "onnxruntime" else OpenVinoGenerator
    with pytest.raises(ValueError, match=r"bad\.onnx: unreadable wkd_hf metadata.*export the"):
        load(tmp_path / "bad.onnx")


def test_compiled_model_cache(tmp_path):
    path = tmp_path / "g.onnx"
    export_onnx(_model(), path, resolution=16)
    cache = tmp_path / "cache"
    first = OpenVinoGenerator(path, precision="f32", cache_dir=cache)
    assert any(cache.iterdir())  # the compiled blob was written
    again = OpenVinoGenerator(path, precision="f32", cache_dir=cache)
    images = real_images(1, 16, 16)
    assert torch.equal(first(images), again(images))



SIGNAL_STACK_AFTER_OPENVINO = """
import ctypes, gc, os, sys
from wkd_hf.models import ResnetGenerator
from wkd_hf.onnx_export import export_onnx
from wkd_hf.openvino_backend import OpenVinoGenerator

class Stack(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

def signal_stack():
    stack = Stack()
    ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack))
    return stack.sp or 0

def mapped(address):
    for line in open("/proc/self/maps"):
        low, high = (int(x, 16) for x in line.split()[0].split("-"))
        if low <= address < high:
            return True
    return False

before = signal_stack()
path = os.path.join(sys.argv[1], "g.onnx")
export_onnx(ResnetGenerator(ngf=4, n_blocks=1), path, resolution=32)
first, second = OpenVinoGenerator(path), OpenVinoGenerator(path, precision="bf16")
second.run(__import__("numpy").zeros((1, 3, 32, 32), "float32"))
del first  # freed in the order they were made, as a benchmark or a Space does
gc.collect()
del second
gc.collect()
after = signal_stack()
print("same:", after == before, "usable:", after == 0 or mapped(after))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack and /proc: Linux")
def test_openvino_leaves_no_dangling_signal_stack(tmp_path):
    """Each model OpenVINO compiles installs an alternate signal stack and puts the previous one
    back when freed: freed in the order they were made, the thread is left with the first one's
    unmapped stack, and the next SIGTERM or Ctrl-C with a Python handler crashed the process
    (SIGSEGV, seen in this test suite) or wrote its frame over reused memory."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", SIGNAL_STACK_AFTER_OPENVINO, str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "same: True usable: True" in result.stdout, result.stdout


def test_static_shapes_option_compiles_per_shape(tmp_path):
    model = _model("mobile")
    path = tmp_path / "g.onnx"
    export_onnx(model, path, resolution=16)
    dynamic, static = OpenVinoGenerator(path), OpenVinoGenerator(path, static_shapes=True)
    assert not dynamic.compiled.input(0).partial_shape.is_static
    for shape in [(1, 3, 16, 16), (2, 3, 12, 20)]:
        images = real_images(shape[0], shape[2], shape[3])
        got = static(images)
        assert static.compiled.input(0).partial_shape.to_shape() == list(shape)
        assert torch.allclose(got, dynamic(images), atol=1e-5)
