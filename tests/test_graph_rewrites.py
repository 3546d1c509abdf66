"""Graph rewrites of exported generators: same outputs, same weights, wired into export_onnx."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from wkd_hf.graph_rewrites import (
    REWRITES,
    apply_rewrites,
    rewrite_file,
    space_to_depth_weight,
    subpixel_weight,
)
from wkd_hf.models import ResnetGenerator
from wkd_hf.onnx_export import export_onnx, make_session, real_images


def _model(block_type="resnet"):
    torch.manual_seed(0)
    return ResnetGenerator(ngf=4, n_blocks=1, block_type=block_type).eval()


def _run(path, images):
    session = make_session(path, num_threads=1)
    return session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_space_to_depth_weight_is_the_conv_on_blocks():
    """Independent check: the 7x7 conv computed directly equals DepthToSpace(conv(SpaceToDepth))
    written out with numpy reshapes from ONNX's definitions (DCR channel order)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2, 7, 7)).astype(np.float64)
    x = rng.normal(size=(2, 12 + 6 + 2, 12 + 6 + 2))  # padded input + the 2 extra zero rows
    x[:, 18:, :] = 0
    x[:, :, 18:] = 0
    direct = np.einsum("oiyx,ihwyx->ohw", w, np.lib.stride_tricks.sliding_window_view(
        x[:, :18, :18], (7, 7), axis=(1, 2)))
    s = 4
    xs = x.reshape(2, 5, s, 5, s).transpose(2, 4, 0, 1, 3).reshape(s * s * 2, 5, 5)
    wb = space_to_depth_weight(w, s)
    assert wb.shape == (48, 32, 3, 3)
    blocks = np.einsum("oiyx,ihwyx->ohw", wb, np.lib.stride_tricks.sliding_window_view(
        xs, (3, 3), axis=(1, 2)))
    out = blocks.reshape(s, s, 3, 3, 3).transpose(2, 3, 0, 4, 1).reshape(3, 12, 12)
    assert np.abs(out - direct).max() < 1e-10
    # the weights are copied, not changed: each original weight sits in s*s places
    assert np.array_equal(np.sort(wb[wb != 0]), np.sort(np.repeat(w.ravel(), s * s)))


def test_subpixel_weight_is_the_transposed_conv():
    torch.manual_seed(0)
    up = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    x = torch.randn(1, 3, 5, 6, dtype=torch.float64)
    w = torch.from_numpy(subpixel_weight(up.weight.detach().numpy()))
    phases = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), w,
                                        up.bias.detach().repeat(4))
    # DCR DepthToSpace by hand: channel (p * 2 + q) * C + c -> pixel (2h + p, 2w + q)
    out = phases.reshape(1, 2, 2, 2, 5, 6).permute(0, 3, 4, 1, 5, 2).reshape(1, 2, 10, 12)
    assert torch.allclose(out, up(x).detach(), atol=1e-12)


@pytest.mark.parametrize("block_type", ["resnet", "mobile"])
@pytest.mark.parametrize("name", sorted(REWRITES))
def test_each_rewrite_keeps_the_outputs(tmp_path, block_type, name):
    model = _model(block_type)
    base = tmp_path / "g.onnx"
    export_onnx(model, base, resolution=16, graph_rewrites=())
    out = tmp_path / "r.onnx"
    counts = rewrite_file(base, out, [name])
    assert counts[name] >= 1
    images = real_images(2, 16, 24)  # a batch and a size the export never saw
    expected = _run(base, images)
    got = _run(out, images)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-5
    with torch.no_grad():
        assert np.abs(got - model(images).numpy()).max() <= 1e-4
    ops = _ops(out)
    gone = {"head_s2d": "SpaceToDepth", "stem_s2d": "SpaceToDepth", "head_s2d4": "SpaceToDepth",
            "stem_s2d4": "SpaceToDepth", "subpixel_up": "DepthToSpace", "pad_slices": "Concat"}
    assert gone[name] in ops
    if name == "subpixel_up":
        assert "ConvTranspose" not in ops
    if name == "pad_slices":
        assert "Pad" not in ops


def test_export_applies_the_default_rewrites_and_can_turn_them_off(tmp_path):
    from wkd_hf.graph_rewrites import DEFAULT_REWRITES
    from wkd_hf.openvino_backend import read_metadata

    model = _model("mobile")
    report = export_onnx(model, tmp_path / "d.onnx", resolution=16)
    assert report.max_abs_diff <= 1e-4  # the parity check ran on the rewritten graph
    assert read_metadata(tmp_path / "d.onnx")["graph_rewrites"] == ",".join(DEFAULT_REWRITES)
    assert "SpaceToDepth" in _ops(tmp_path / "d.onnx")
    export_onnx(model, tmp_path / "p.onnx", resolution=16, graph_rewrites=())
    assert "SpaceToDepth" not in _ops(tmp_path / "p.onnx")
    assert "graph_rewrites" not in read_metadata(tmp_path / "p.onnx")
    with pytest.raises(ValueError, match="unknown graph rewrite"):
        export_onnx(model, tmp_path / "x.onnx", resolution=16, graph_rewrites=("fast",))


def test_space_to_depth_skipped_where_sizes_may_not_fit(tmp_path):
    """A graph whose inputs need only be multiples of 2 keeps its 7x7 convs under blocks of 4
    (and gets blocks of 2)."""
    model = _model()
    path = tmp_path / "g.onnx"
    export_onnx(model, path, resolution=16, graph_rewrites=())
    proto = onnx.load(str(path))
    next(p for p in proto.metadata_props if p.key == "wkd_hf.size_multiple").value = "2"
    assert apply_rewrites(proto, ["head_s2d4", "stem_s2d4"]) == {"head_s2d4": 0, "stem_s2d4": 0}
    assert apply_rewrites(proto, ["head_s2d"]) == {"head_s2d": 1}
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert any(w.ndim == 4 and w.shape[:2] == (12, 16) for w in weights.values())


def test_export_cli_flag(tmp_path, capsys):
    from wkd_hf.cli.export_onnx import main

    model = _model()
    model.save_pretrained(tmp_path / "m")
    args = ["--model", str(tmp_path / "m"), "--resolution", "16", "--no_check"]
    assert main([*args, "--output", str(tmp_path / "a.onnx")]) == 0
    assert "SpaceToDepth" in _ops(tmp_path / "a.onnx")
    assert main([*args, "--output", str(tmp_path / "b.onnx"), "--graph_rewrites"]) == 0
    assert "SpaceToDepth" not in _ops(tmp_path / "b.onnx")
    assert main([*args, "--output", str(tmp_path / "c.onnx"), "--graph_rewrites", "x"]) == 1
    assert "error: ValueError: unknown graph rewrite(s) ['x']" in capsys.readouterr().err
    assert not (tmp_path / "c.onnx").exists()


def test_rewrite_variants_benchmark_quick(tmp_path, capsys):
    """benchmarks/rewrite_variants.py: every variant runs, its output matches the plain file."""
    import importlib.util
    import json
    from pathlib import Path

    pytest.importorskip("openvino")
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("rewrite_variants",
                                                  root / "benchmarks" / "rewrite_variants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "r.json"
    module.main(["--quick", "--models", "mobile", "--variants", "head_s2d", "subpixel_up",
                 "static", "--resolution", "32", "--repeats", "2", "--warmup", "0",
                 "--threads", "1", "--clock", "cpu", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {f"mobile | {v}" for v in ("current", "head_s2d", "subpixel_up", "static")}
    assert rows["mobile | head_s2d"]["rewritten"] == {"head_s2d": 1}
    assert all(r["max_abs_vs_current"] <= 1e-4 and len(r["times_ms"]) == 2 for r in rows.values())
    assert "current / variant" in capsys.readouterr().out
