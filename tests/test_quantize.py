"""int8 post-training quantization (ONNX Runtime's QDQ quantizer), the quality measures against
float32, and wkd-quantize's refusal below its PSNR bound. Bounds are loose enough for any x86 ISA
(with or without VNNI / AMX)."""

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

import wkd_hf.cli.quantize as cli_quantize
from wkd_hf.cli.quantize import main
from wkd_hf.models import ResnetGenerator
from wkd_hf.onnx_export import OnnxGenerator, export_onnx, real_images
from wkd_hf.quantize import load_images, psnr_db, quality, quantize_int8


def _model():
    torch.manual_seed(0)
    return ResnetGenerator(ngf=4, n_blocks=2, block_type="mobile").eval()


def _folder(path, count, seed):
    path.mkdir()
    for i, image in enumerate(real_images(count, 24, 24, seed=seed)):
        array = ((image.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
        Image.fromarray(array).save(path / f"{i}.png")
    return path


def test_psnr_and_bands_against_hand_computation():
    reference = torch.zeros(2, 3, 8, 8)
    shifted = reference + 0.02  # 0.01 on the [0, 1] scale: MSE 1e-4, 40 dB
    assert psnr_db(shifted, reference).tolist() == pytest.approx([40.0, 40.0])
    noisy = reference.clone()
    noisy[0, 0, 0, 0] = 1.0  # one pixel off by 0.5 on [0, 1]: MSE 0.25 / 192 in image 0
    assert float(psnr_db(noisy, reference)[0]) == pytest.approx(10 * math.log10(192 / 0.25))
    photo = real_images(1, 16, 16)
    q = quality(photo * 1.1, photo, levels=1)  # every band scaled by 1.1: distance 0.1 each
    assert q["psnr_db"] == pytest.approx(float(psnr_db(photo * 1.1, photo)[0]))
    assert all(v == pytest.approx(0.1, rel=1e-4) for v in q["bands"].values())


def test_int8_file_is_quantized_close_and_keeps_metadata(tmp_path):
    model = _model()
    fp32 = tmp_path / "g.onnx"
    export_onnx(model, fp32, resolution=16, metadata={"resolution": 16})
    calibration = real_images(4, 32, 32, seed=1)
    int8 = quantize_int8(fp32, tmp_path / "g.int8.onnx", calibration)
    graph = onnx.load(str(int8)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    made_by = {o: n for n in graph.node for o in n.output}
    # every Conv reads int8-dequantized activations and weights ...
    assert convs and all(made_by[n.input[0]].op_type == "DequantizeLinear" and
                         made_by[n.input[1]].op_type == "DequantizeLinear" for n in convs)
    # ... and its output stays float: nothing quantizes a Conv output (instance norm follows)
    conv_outputs = {o for n in convs for o in n.output}
    assert not [n for n in graph.node if n.op_type == "QuantizeLinear"
                and n.input[0] in conv_outputs]
    runner = OnnxGenerator(int8)
    assert runner.metadata["precision"] == "int8" and runner.metadata["resolution"] == "16"
    photos = real_images(3, 32, 32)
    reference, got = OnnxGenerator(fp32)(photos), runner(photos)
    psnr = float(psnr_db(got, reference).mean())
    assert 25 < psnr < 80  # quantized (not identical), yet close
    kept = quantize_int8(fp32, tmp_path / "ends.onnx", calibration, keep_ends_float=True)
    convs = [n for n in onnx.load(str(kept)).graph.node if n.op_type == "Conv"]
    made_by = {o: n.op_type for n in onnx.load(str(kept)).graph.node for o in n.output}
    assert made_by.get(convs[0].input[1]) is None and made_by.get(convs[-1].input[1]) is None
    assert made_by.get(convs[1].input[1]) == "DequantizeLinear"
    assert not list(tmp_path.glob(".*partial"))


def test_a_failed_quantization_leaves_no_partial_file(tmp_path, monkeypatch):
    import onnxruntime.quantization as ort_quantization

    fp32 = tmp_path / "g.onnx"
    export_onnx(_model(), fp32, resolution=16, check=False)

    def dies_midway(model_input, model_output, *args, **kwargs):
        Path(model_output).write_bytes(b"half a model")
        raise MemoryError("killed midway")

    monkeypatch.setattr(ort_quantization, "quantize_static", dies_midway)
    with pytest.raises(MemoryError):
        quantize_int8(fp32, tmp_path / "g.int8.onnx", real_images(1, 16, 16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]


def test_load_images_takes_paired_halves(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    pair = torch.zeros(3, 8, 16)
    pair[:, :, 8:] = 1  # left black, right white
    Image.fromarray((pair.permute(1, 2, 0) * 255).byte().numpy()).save(folder / "0.png")
    assert load_images(folder, 1, 8, "left").max() == -1
    assert load_images(folder, 1, 8, "right").min() == 1
    with pytest.raises(ValueError, match="holds no images"):
        load_images(tmp_path, 1, 8)


def _cli_args(tmp_path, calibration: int, photos: int, repeats: int) -> list[str]:
    """wkd-quantize's arguments for a saved tiny model and two image folders (16 px, ORT)."""
    model = tmp_path / "model"
    _model().save_pretrained(model)
    train = _folder(tmp_path / "train", calibration, 1)
    test = _folder(tmp_path / "test", photos, 2)
    return ["--model", str(model), "--calibration", str(train), "--photos", str(test),
            "--resolution", "16", "--repeats", str(repeats), "--threads", "1", "--backends", "ort"]


def test_cli_refuses_below_the_bound_and_warns_on_request(tmp_path, capsys):
    base = _cli_args(tmp_path, calibration=4, photos=2, repeats=2)
    out = tmp_path / "ok"
    assert main([*base, "--output", f"{out}/"]) == 0, capsys.readouterr().err
    assert f"wrote {out / 'quantization.json'}\n" in capsys.readouterr().out  # not ok//quant...
    report = json.loads((out / "quantization.json").read_text())
    assert report["accepted"] == {"int8": True} and (out / "generator.int8.onnx").is_file()
    assert report["results"]["int8 | ort"]["quality_vs_fp32"]["psnr_db"] >= 35
    assert report["results"]["int8 | ort"]["ms"]["median"] > 0
    capsys.readouterr()
    refused = tmp_path / "refused"  # no int8 model is 200 dB from float32
    assert main([*base, "--output", str(refused), "--min_psnr", "200"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("wkd-quantize: error: int8") and "\n" not in err
    assert not (refused / "generator.int8.onnx").exists() and (refused / "generator.onnx").exists()
    assert json.loads((refused / "quantization.json").read_text())["accepted"] == {"int8": False}
    assert not list(refused.glob(".*"))
    warned = tmp_path / "warned"
    assert main([*base, "--output", str(warned), "--min_psnr", "200", "--warn_only"]) == 0
    assert "wkd-quantize: warning: int8" in capsys.readouterr().err
    assert (warned / "generator.int8.onnx").is_file()
    assert main([*base, "--output", str(tmp_path / "x"), "--num_photos", "0"]) == 1
    assert capsys.readouterr().err.startswith("wkd-quantize: error:")


def test_load_images_reads_any_mode_as_the_pipeline_and_names_a_broken_file(tmp_path):
    folder = tmp_path / "calibration"
    folder.mkdir()
    grey = np.full((8, 8), 32768, dtype=np.uint16)  # mid-grey in 16 bits, not white
    Image.fromarray(grey).save(folder / "0.png")
    assert Image.open(folder / "0.png").mode.startswith("I")
    assert load_images(folder, 1, 8).abs().max() < 0.01  # 0.5 on [0, 1]: 0 on [-1, 1]
    palette = Image.new("P", (8, 8))
    palette.putpalette([0, 0, 0] * 256)
    palette.save(folder / "1.png")  # a palette image of black
    assert load_images(folder, 2, 8)[1].max() == -1
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    good = (tmp_path / "whole.png").read_bytes()
    (folder / "2.png").write_bytes(good[:len(good) // 2])  # truncated: PIL's error has no name
    with pytest.raises(ValueError, match=r"2\.png is not a readable image"):
        load_images(folder, 3, 8)


def test_load_images_reads_photos_upright(tmp_path):
    folder = tmp_path / "calibration"
    folder.mkdir()
    halves = np.zeros((8, 16, 3), np.uint8)
    halves[:, 8:] = 255  # stored: left black, right white
    stored = Image.fromarray(halves)
    exif = stored.getexif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: top black, bottom white
    stored.save(folder / "phone.png", exif=exif)
    image = load_images(folder, 1, 8)[0]
    assert (image[:, :3] == -1).all() and (image[:, -3:] == 1).all()


def test_cli_quantizes_a_grayscale_input_generator(tmp_path, capsys):
    model = tmp_path / "colorize"
    torch.manual_seed(0)
    ResnetGenerator(in_channels=1, out_channels=3, ngf=4, n_blocks=1).save_pretrained(model)
    train, test = _folder(tmp_path / "train", 2, 1), _folder(tmp_path / "test", 1, 2)
    out = tmp_path / "deploy"
    assert main(["--model", str(model), "--calibration", str(train), "--photos", str(test),
                 "--resolution", "16", "--repeats", "0", "--threads", "1", "--backends", "ort",
                 "--min_psnr", "0", "--output", str(out)]) == 0, capsys.readouterr().err
    assert OnnxGenerator(out / "generator.int8.onnx").session.get_inputs()[0].shape[1] == 1
    gray = load_images(test, 1, 8, channels=1)
    assert gray.shape == (1, 1, 8, 8)
    expected = Image.open(sorted(test.iterdir())[0]).convert("L").resize((8, 8), Image.BICUBIC)
    luma = torch.from_numpy(np.array(expected, dtype=np.float32)) / 127.5 - 1
    assert (gray[0, 0] - luma).abs().max() < 0.05


def test_cli_refusal_leaves_no_earlier_int8_and_bad_images_write_nothing(tmp_path, capsys,
                                                                        monkeypatch):
    base = _cli_args(tmp_path, calibration=2, photos=1, repeats=0)
    out = tmp_path / "deploy"
    assert main([*base, "--output", str(out)]) == 0, capsys.readouterr().err
    assert (out / "generator.int8.onnx").is_file()
    assert main([*base, "--output", str(out), "--min_psnr", "200"]) == 1  # same folder, refused
    assert not (out / "generator.int8.onnx").exists()  # the earlier run's file is not left
    assert json.loads((out / "quantization.json").read_text())["accepted"] == {"int8": False}
    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    fresh = tmp_path / "fresh"
    assert main([*base[:2], "--calibration", str(empty), *base[4:], "--output", str(fresh)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("wkd-quantize: error:") and "holds no images" in err and "\n" not in err
    assert not fresh.exists()  # refused before anything was exported

    def fails(*args, **kwargs):
        raise RuntimeError("ONNX Runtime failed")

    monkeypatch.setattr(cli_quantize, "evaluate", fails)
    assert main([*base, "--output", str(out)]) == 1
    assert "ONNX Runtime failed" in capsys.readouterr().err
    assert not list(out.glob(".*"))  # no staged int8 file left behind
