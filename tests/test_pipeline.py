"""ImageTranslationPipeline and wkd-translate on tiny generators (ngf 4)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wkd_hf.cli.translate import main
from wkd_hf.models import ResnetGenerator, UnetGenerator
from wkd_hf.models.layers import size_rule
from wkd_hf.pipeline import ImageTranslationPipeline


def _resnet(seed=0, **kwargs):
    torch.manual_seed(seed)
    return ResnetGenerator(ngf=4, n_blocks=1, **kwargs).eval()


def _pipe(model=None, **kwargs):
    pipe = ImageTranslationPipeline(model if model is not None else _resnet(), **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _photo(width, height, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1),
                    rng.integers(0, 256, (height, width))], -1).astype(np.uint8)
    return Image.fromarray(rgb).convert(mode)


def _direct(model, x01):
    """What the generator gives for N x C x H x W images in [0, 1], mapped back to [0, 1]."""
    with torch.no_grad():
        return ((model(x01 * 2 - 1).clamp(-1, 1) + 1) / 2)


def test_size_rule_reads_the_networks_constraints():
    assert size_rule(_resnet()) == (4, 8)
    assert size_rule(UnetGenerator(ngf=4, num_downs=5)) == (32, 32)


def test_odd_non_square_sizes_and_modes_come_back_at_their_size():
    pipe = _pipe()
    alpha = Image.fromarray(np.arange(13 * 9, dtype=np.uint8).reshape(9, 13))
    rgba = _photo(13, 9)
    rgba.putalpha(alpha)
    inputs = [_photo(37, 21), _photo(10, 7, "L"), rgba, _photo(6, 5, "P"), _photo(3, 3)]
    out = pipe(inputs, batch_size=2).images
    assert [im.size for im in out] == [im.size for im in inputs]
    assert [im.mode for im in out] == ["RGB", "RGB", "RGBA", "RGB", "RGB"]
    assert np.array_equal(np.asarray(out[2])[:, :, 3], np.asarray(alpha))  # alpha kept as is
    assert len(set(np.asarray(out[1]).reshape(-1, 3)[:, 0].tolist())) > 1  # not blank
    lab = _photo(13, 9).convert("LAB")  # its "A" is a colour band, not transparency
    [got] = pipe(lab).images
    assert got.mode == "RGB" and got == pipe(lab.convert("RGB")).images[0]


def test_pad_mode_is_exact_for_fitting_sizes_and_grayscale_is_replicated():
    model = _resnet()
    pipe = _pipe(model)
    image = _photo(24, 16)
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    got = pipe(image, output_type="pt").images
    assert got.shape == (1, 3, 16, 24)
    assert torch.allclose(got, _direct(model, x), atol=1e-6)
    gray = _photo(24, 16, "L")
    g = torch.from_numpy(np.array(gray))[None, None].float() / 255
    assert torch.allclose(pipe(gray, output_type="pt").images, _direct(model, g.expand(1, 3, -1, -1)),
                          atol=1e-6)


def test_batching_matches_one_by_one_and_tensor_numpy_io():
    pipe = _pipe()
    images = [_photo(20, 12, seed=i) for i in range(5)]
    together = pipe(images, batch_size=2, output_type="pt").images
    alone = torch.cat([pipe(im, output_type="pt").images for im in images])
    assert together.shape == (5, 3, 12, 20)
    assert torch.allclose(together, alone, atol=1e-5)
    batch = torch.rand(3, 3, 12, 20)
    as_np = pipe(batch, batch_size=8, output_type="np").images
    assert as_np.shape == (3, 12, 20, 3) and as_np.dtype == np.float32
    assert torch.allclose(torch.from_numpy(as_np).permute(0, 3, 1, 2),
                          pipe(batch, output_type="pt").images)
    mixed = pipe([torch.rand(3, 12, 20), torch.rand(3, 8, 8)], output_type="pt").images
    assert [tuple(t.shape) for t in mixed] == [(3, 12, 20), (3, 8, 8)]  # sizes differ: a list


def test_resize_mode_runs_the_network_at_the_resolution():
    model = _resnet()
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    pipe = _pipe(model, resolution=16)
    out = pipe([_photo(40, 28), _photo(17, 31)], batch_size=8).images
    assert [im.size for im in out] == [(40, 28), (17, 31)]
    assert seen == [(2, 3, 16, 16)]  # both resized to 16 x 16, one batch
    seen.clear()
    pipe(_photo(40, 28), size_mode="pad")
    assert seen == [(1, 3, 28, 40)]


def test_unet_inputs_are_padded_to_its_multiple():
    model = UnetGenerator(ngf=4, num_downs=5).eval()
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    out = _pipe(model)(_photo(40, 33)).images[0]
    assert out.size == (40, 33) and seen == [(1, 3, 64, 64)]


def test_half_precision_from_pretrained(tmp_path):
    model = _resnet()
    model.save_pretrained(tmp_path / "g")
    full = ImageTranslationPipeline.from_pretrained(tmp_path / "g")
    half = ImageTranslationPipeline.from_pretrained(tmp_path / "g", torch_dtype=torch.bfloat16)
    full.set_progress_bar_config(disable=True)
    half.set_progress_bar_config(disable=True)
    assert half.dtype == torch.bfloat16 and full.dtype == torch.float32
    image = _photo(20, 12)
    a = full(image, output_type="pt").images
    b = half(image, output_type="pt").images
    assert b.dtype == torch.float32 and (a - b).abs().mean() < 0.03 and not torch.equal(a, b)


def test_output_folder_metadata_and_cyclegan_subfolders(tmp_path):
    out = tmp_path / "student"
    _resnet().save_pretrained(out)
    (out / "args.json").write_text(json.dumps({"resolution": 32, "direction": "BtoA"}))
    (out / "wkd_config.json").write_text(json.dumps({"mode": "paired"}))
    pipe = ImageTranslationPipeline.from_pretrained(out)
    assert (pipe.resolution, pipe.direction) == (32, "BtoA")
    assert ImageTranslationPipeline.from_pretrained(out, resolution=64).resolution == 64

    cycle = tmp_path / "cycle"
    a2b, b2a = _resnet(seed=1), _resnet(seed=2)
    a2b.save_pretrained(cycle / "generator_a2b")
    b2a.save_pretrained(cycle / "generator_b2a")
    (cycle / "args.json").write_text(json.dumps({"resolution": 24, "mode": "cycle"}))
    weight = "model.1.weight"
    default = ImageTranslationPipeline.from_pretrained(cycle)
    back = ImageTranslationPipeline.from_pretrained(cycle, direction="b2a")
    sub = ImageTranslationPipeline.from_pretrained(cycle, subfolder="generator_b2a")
    assert torch.equal(default.generator.state_dict()[weight], a2b.state_dict()[weight])
    assert torch.equal(back.generator.state_dict()[weight], b2a.state_dict()[weight])
    assert torch.equal(sub.generator.state_dict()[weight], b2a.state_dict()[weight])
    assert (default.direction, back.direction, sub.direction) == ("a2b", "b2a", "b2a")
    assert default.resolution == 24


def test_save_pretrained_loads_back_and_through_diffusion_pipeline(tmp_path, monkeypatch):
    import diffusers.utils.dynamic_modules_utils as dynamic
    from diffusers import DiffusionPipeline

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    pipe = _pipe(resolution=16, direction="AtoB")
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["resolution"] == 16 and index["_class_name"][1] == "ImageTranslationPipeline"
    image = _photo(20, 12)
    expected = pipe(image, output_type="pt").images
    again = ImageTranslationPipeline.from_pretrained(tmp_path / "pipe")
    again.set_progress_bar_config(disable=True)
    assert (again.resolution, again.direction) == (16, "AtoB")
    assert torch.allclose(again(image, output_type="pt").images, expected)
    generic = DiffusionPipeline.from_pretrained(tmp_path / "pipe", trust_remote_code=True)
    generic.set_progress_bar_config(disable=True)
    assert type(generic).__name__ == "ImageTranslationPipeline" and generic.resolution == 16
    assert torch.allclose(generic(image, output_type="pt").images, expected)


def test_save_pretrained_writes_beside_and_pushes_the_finished_folder(tmp_path, monkeypatch):
    import diffusers.pipelines.pipeline_utils as diffusers_pipeline
    import diffusers.utils.hub_utils as hub_utils
    import huggingface_hub

    import wkd_hf.pipeline as module

    folder = tmp_path / "pipe"
    _pipe(resolution=16).save_pretrained(folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def fails(*args, **kwargs):
        raise RuntimeError("killed while saving")

    monkeypatch.setattr(module, "write_component_code", fails)  # after the weights are written
    with pytest.raises(RuntimeError, match="killed"):
        _pipe(_resnet(seed=1), resolution=32).save_pretrained(folder)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # the earlier save is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no partial folder left
    monkeypatch.undo()

    uploads = []
    for where in (huggingface_hub, diffusers_pipeline):
        monkeypatch.setattr(where, "create_repo",
                            lambda repo_id, **kw: huggingface_hub.RepoUrl(
                                f"https://huggingface.co/{repo_id}"), raising=False)
    for where in (hub_utils, diffusers_pipeline):
        monkeypatch.setattr(where, "load_or_create_model_card",
                            lambda *a, **kw: huggingface_hub.ModelCard("---\n---\n# card\n"))
    monkeypatch.setattr(ImageTranslationPipeline, "_upload_folder",
                        lambda self, path, repo_id, **kw: uploads.append(
                            (repo_id, sorted(p.name for p in Path(path).iterdir()),
                             json.loads((Path(path) / "model_index.json").read_text()))))
    _pipe(resolution=16).save_pretrained(tmp_path / "pushed", push_to_hub=True, repo_id="me/p")
    [(repo_id, names, index)] = uploads
    assert repo_id == "me/p" and "wkd_pipeline.py" in names and "generator" in names
    assert index["_class_name"] == ["wkd_pipeline", "ImageTranslationPipeline"]


def test_a_broken_model_index_is_one_line_naming_it(tmp_path, capsys):
    _pipe(resolution=16).save_pretrained(tmp_path / "pipe")
    index = tmp_path / "pipe" / "model_index.json"
    whole = index.read_text()
    _photo(8, 8).save(tmp_path / "in.png")
    for text in (whole[:len(whole) // 2], "[1, 2]"):  # a truncated copy; not an object
        index.write_text(text)
        assert main(["--model", str(tmp_path / "pipe"), "--input", str(tmp_path / "in.png"),
                     "--output", str(tmp_path / "out"), "--no_progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("wkd-translate: error:") and "\n" not in err, err
        assert f"{index} is not a pipeline index" in err and "save the pipeline again" in err


def test_bad_arguments_are_clear_errors():
    pipe = _pipe()
    with pytest.raises(ValueError, match="output_type"):
        pipe(_photo(8, 8), output_type="latent")
    with pytest.raises(ValueError, match="resolution"):
        pipe(_photo(8, 8), size_mode="resize")
    with pytest.raises(TypeError, match="PIL image"):
        pipe("not an image")


# ----------------------------------------------------------------------------- wkd-translate
def _folder(tmp_path):
    data = tmp_path / "in"
    (data / "sub").mkdir(parents=True)
    _photo(20, 12).save(data / "a.jpg")
    rgba = _photo(9, 7)
    rgba.putalpha(128)
    rgba.save(data / "sub" / "b.png")
    (data / "notes.txt").write_text("not an image")
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    model = tmp_path / "model"
    _resnet().save_pretrained(model)
    return data, model


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_translate_cli_skips_and_lists_unreadable_files(tmp_path, capsys, backend):
    data, model = _folder(tmp_path)
    out = tmp_path / "out"
    rc = main(["--model", str(model), "--input", str(data), "--output", str(out),
               "--batch_size", "2", "--no_progress", "--backend", backend])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert Image.open(out / "a.png").size == (20, 12)
    assert Image.open(out / "sub" / "b.png").mode == "RGBA"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.png", "b.png"]
    assert "translated 2 image(s)" in printed.out and "skipped 2" in printed.out
    assert "notes.txt" in printed.out and "broken.png" in printed.out


def test_translate_cli_reads_photos_upright(tmp_path, capsys):
    halves = np.zeros((12, 20, 3), np.uint8)
    halves[:, 10:] = 255  # stored: left black, right white
    stored = Image.fromarray(halves)
    exif = stored.getexif()
    exif[0x0112] = 6  # a phone's "rotate 90 clockwise to display"
    stored.save(tmp_path / "phone.png", exif=exif)
    model = tmp_path / "model"
    _resnet().save_pretrained(model)
    assert main(["--model", str(model), "--input", str(tmp_path / "phone.png"), "--output",
                 str(tmp_path / "out"), "--no_progress", "--size_mode", "pad"]) == 0
    upright = Image.open(tmp_path / "phone.png").transpose(Image.Transpose.ROTATE_270)
    expected = _pipe()(upright, size_mode="pad").images[0]  # as displayed: 12 wide, 20 high
    got = Image.open(tmp_path / "out" / "phone.png")
    assert got.size == (12, 20) and np.array_equal(np.asarray(got), np.asarray(expected))


def test_translate_cli_fatal_errors_are_one_line(tmp_path, capsys):
    data, model = _folder(tmp_path)
    cases = [["--model", str(tmp_path / "missing"), "--input", str(data)],
             ["--model", str(model), "--input", str(tmp_path / "nothing")],
             ["--model", str(model), "--input", str(data), "--device", "cuda:7"]]
    for argv in cases:
        assert main([*argv, "--output", str(tmp_path / "o"), "--no_progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("wkd-translate: error:") and "\n" not in err, err
        assert "Traceback" not in err
