"""wkd-space: the Space folder, its push (a recording HfApi; offline: one error line), and the
page's handler on tiny local generators (the browser drives it in test_space_browser.py)."""

import argparse
import json
import runpy
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from huggingface_hub import metadata_load
from PIL import Image

import wkd_hf
from wkd_hf.cli import space as cli
from wkd_hf.models import ResnetGenerator
from wkd_hf.pipeline import ImageTranslationPipeline
from wkd_hf.space import writer
from wkd_hf.space.models import load_networks, open_upload

pytest.importorskip("gradio")

CARD = """---
library_name: wkd_hf
---

# student

## Efficiency (32x32 input, batch 1)

| network | params |
|---|---|
| student | 8.7K |

## Validation metrics (held-out split carved from the training data)

| metric | value |
|---|---|
| psnr | 21.5 |

<!-- wkd_hf evaluation: start -->
## Evaluation (facades, split test)

| network | FID |
|---|---|
| student | 101.2 |
<!-- wkd_hf evaluation: end -->

## Usage

pip install wkd_hf
"""


def _save(folder, seed, ngf=4, resolution=32, direction="AtoB"):
    torch.manual_seed(seed)
    ResnetGenerator(ngf=ngf, n_blocks=1).eval().save_pretrained(folder)
    (folder / "args.json").write_text(json.dumps({"resolution": resolution,
                                                  "direction": direction}))
    return folder


@pytest.fixture
def pair(tmp_path):
    student = _save(tmp_path / "student", seed=1)
    (student / "README.md").write_text(CARD)
    return student, _save(tmp_path / "teacher", seed=2, ngf=8)


def _photo(width=90, height=60, mode="RGB"):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)


def test_space_folder_files_front_matter_and_card_tables(pair, tmp_path):
    student, teacher = pair
    example = tmp_path / "photo.jpg"
    _photo().save(example)
    out = writer.write_space(tmp_path / "space", str(student), str(teacher),
                             student_hub_id="me/student", teacher_hub_id="me/teacher",
                             examples=[example, _photo(40, 30)])
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "app.py", "examples", "requirements.txt", "space_config.json"]
    assert (out / "requirements.txt").read_text().splitlines()[0] == \
        f"wkd_hf=={wkd_hf.__version__}"
    meta = metadata_load(out / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["models"] == ["me/student", "me/teacher"]
    config = json.loads((out / "space_config.json").read_text())
    assert [Image.open(out / "examples" / n).size for n in config["examples"]] == [(90, 60),
                                                                                  (40, 30)]
    tables = config["card_markdown"]
    assert "### Evaluation (facades" in tables and "### Validation metrics" in tables
    assert "101.2" in tables and "21.5" in tables
    assert "Efficiency" not in tables and "pip install" not in tables
    # the Space's own entry point builds the page from its folder (as `python app.py` would)
    import gradio as gr

    demo = runpy.run_path(str(out / "app.py"), run_name="space_app")["demo"]
    assert isinstance(demo, gr.Blocks) and demo.title == config["title"]
    # an earlier Space folder is replaced; a folder holding anything else is refused
    writer.write_space(out, str(student))
    assert json.loads((out / "space_config.json").read_text())["teacher"] is None
    assert not (out / "examples" / "example_0.png").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds other files"):
        writer.write_space(tmp_path / "busy", str(student))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_examples_in_any_mode_are_pngs_and_a_broken_one_is_named(pair, tmp_path, capsys):
    student, _ = pair
    cmyk = tmp_path / "print.jpg"
    _photo(mode="CMYK").save(cmyk)  # a print shop's JPEG: PNG cannot hold CMYK
    out = writer.write_space(tmp_path / "space", str(student),
                             examples=[cmyk, _photo(mode="YCbCr"), _photo(mode="LA"),
                                       _photo(mode="LAB")])
    saved = [Image.open(out / "examples" / f"example_{i}.png") for i in range(4)]
    assert [image.mode for image in saved] == ["RGB", "RGB", "LA", "RGB"]  # LAB has no alpha
    assert np.array_equal(np.asarray(saved[0]), np.asarray(Image.open(cmyk).convert("RGB")))
    whole = tmp_path / "whole.png"
    _photo().save(whole)
    broken = tmp_path / "broken.png"
    broken.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])  # truncated
    assert cli.main(["--model", str(student), "--output_dir", str(tmp_path / "new"),
                     "--examples", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wkd-space: error: the example") and err.count("\n") == 1, err
    assert "broken.png is not a readable image" in err and "--examples" in err
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


class RecordingApi:
    calls: list = []

    def __init__(self, token=None):
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/spaces/{repo_id}"

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        config = json.loads((folder / "space_config.json").read_text())
        examples = [Image.open(folder / "examples" / name).size for name in config["examples"]]
        self.calls.append(("upload_folder", {**kwargs, "files": sorted(
            p.name for p in folder.iterdir()), "config": config, "examples": examples}))


def test_push_creates_a_gradio_space_and_uploads_the_folder(pair, tmp_path, monkeypatch, capsys):
    student, teacher = pair
    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    monkeypatch.setattr(writer, "check_hub_reachable", lambda: None)
    code = cli.main(["--model", str(student), "--teacher", str(teacher), "--model_hub_id",
                     "me/student", "--teacher_hub_id", "me/teacher", "--push_to_hub",
                     "--hub_space_id", "me/demo", "--hub_token", "hf_secretvalue123",
                     "--output_dir", str(tmp_path / "space")])
    assert code == 0
    (_, init), (_, create), (_, upload) = RecordingApi.calls
    assert init == {"token": "hf_secretvalue123"}
    assert create == {"repo_id": "me/demo", "repo_type": "space", "space_sdk": "gradio",
                      "private": False, "exist_ok": True}
    assert upload["repo_id"] == "me/demo" and upload["repo_type"] == "space"
    assert upload["files"] == ["README.md", "app.py", "examples", "requirements.txt",
                               "space_config.json"]
    config = json.loads((tmp_path / "space" / "space_config.json").read_text())
    assert (config["student"], config["teacher"]) == ("me/student", "me/teacher")
    out = capsys.readouterr()
    assert "https://huggingface.co/spaces/me/demo" in out.out
    assert "hf_secretvalue123" not in out.out + out.err
    assert "hf_secretvalue123" not in "".join(
        p.read_text() for p in (tmp_path / "space").glob("*.*"))


def test_offline_push_and_bad_arguments_are_one_error_line(pair, tmp_path, hub_offline, capsys):
    student, _ = pair
    base = ["--model", str(student), "--output_dir", str(tmp_path / "space")]
    cases = {
        ("--model_hub_id", "me/s", "--push_to_hub", "--hub_space_id", "me/demo"):
            "Cannot upload: offline mode is on (HF_HUB_OFFLINE=1)",
        ("--push_to_hub", "--hub_space_id", "me/demo"): "is a local folder",
        ("--push_to_hub", "--model_hub_id", "me/s"): "needs --hub_space_id",
        ("--max_side", "2"): "--max_side must be >= 8",
    }
    for extra, message in cases.items():
        assert cli.main([*base, *extra]) == 1
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and errors[0].startswith("wkd-space: error: "), err
        assert message in errors[0], (extra, err)
        assert "Traceback" not in err
    for model in (str(tmp_path / "missing"), "me/not-in-the-cache"):
        assert cli.main(["--model", model, "--output_dir", str(tmp_path / "x")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("wkd-space: error:") and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def _handler(student, teacher, max_side=64):
    from wkd_hf.space.app import _translator

    networks = load_networks(str(student), str(teacher) if teacher else None)
    return _translator(networks, max_side), networks


def test_page_outputs_match_the_pipeline_and_uploads_are_checked(pair, tmp_path):
    student, teacher = pair
    translate, _ = _handler(student, teacher)
    path = tmp_path / "photo.png"
    _photo(50, 40).save(path)
    shown, teacher_out, student_out, teacher_text, student_text, message = translate(str(path),
                                                                                     None)
    for folder, out in ((student, student_out), (teacher, teacher_out)):
        expected = ImageTranslationPipeline.from_pretrained(folder)(Image.open(path)).images[0]
        assert np.array_equal(np.asarray(out), np.asarray(expected))
    assert shown.size == (50, 40) and "Input 50x40" in message
    assert "ms on this Space" in student_text and "M params" in teacher_text
    assert "GMACs at 32x32" in student_text  # resize mode: the training resolution
    assert teacher_text.startswith("**teacher**") and student_text.startswith("**student**")
    # too large: resized, with a note; any mode works as in the pipeline
    big = tmp_path / "big.png"
    _photo(200, 100, mode="LA").save(big)
    shown, _, student_out, *_, message = translate(str(big), None)
    assert student_out.size == shown.size == (64, 32) and "resized to 64x32" in message
    assert student_out.mode == "RGBA"
    # not an image: a message, no outputs, nothing raised
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    outputs = translate(str(text), None)
    assert outputs[:5] == (None, None, None, "", "")
    assert "notes.txt is not an image" in outputs[5]
    assert "Upload an image" in translate(None, None)[5]


def test_pad_mode_runs_at_the_padded_size_and_counts_its_macs(pair, tmp_path):
    """--size_mode pad: the 50x40 upload runs at 52x40 (ResNet: multiples of 4); the caption's
    MACs are those of that size, i.e. the 32x32 count scaled by the pixel ratio (fully
    convolutional, every stage divides exactly)."""
    from wkd_hf.metrics.efficiency import count_macs
    from wkd_hf.space.app import _translator

    student, teacher = pair
    networks = load_networks(str(student), str(teacher), size_mode="pad")
    translate = _translator(networks, 64)
    path = tmp_path / "photo.png"
    _photo(50, 40).save(path)
    _, _, student_out, _, student_text, _ = translate(str(path), None)
    pipe = ImageTranslationPipeline.from_pretrained(student)
    expected = pipe(Image.open(path), size_mode="pad").images[0]
    assert np.array_equal(np.asarray(student_out), np.asarray(expected))
    macs = count_macs(pipe.generator, 32) * (52 * 40) // (32 * 32)
    assert f"{macs / 1e9:.3f} GMACs at 52x40" in student_text, student_text


def test_open_upload_keeps_small_images_and_explains_broken_ones(tmp_path, monkeypatch):
    from wkd_hf.data import images

    path = tmp_path / "p.png"
    _photo(30, 20, mode="I;16").save(path)
    image, note = open_upload(path, 64)
    assert (image.size, image.mode, note) == ((30, 20), "I;16", "")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match="broken.jpg is"):
        open_upload(broken)
    # over the pixel cap: refused from the header, before decoding
    monkeypatch.setattr(images, "_max_image_pixels", 30 * 20 - 1)
    with pytest.raises(ValueError, match=r"p.png is 30x20 .*upload a smaller image"):
        open_upload(path, 64)


def test_cyclegan_folder_offers_both_directions(tmp_path):
    student, teacher = tmp_path / "student", tmp_path / "teacher"
    for root, ngf in ((student, 4), (teacher, 8)):
        for seed, sub in enumerate(("generator_a2b", "generator_b2a")):
            _save(root / sub, seed=seed + ngf, ngf=ngf, direction="AtoB")
    networks = load_networks(str(student), str(teacher))
    assert list(networks) == ["a2b", "b2a"]
    for direction, sub in (("a2b", "generator_a2b"), ("b2a", "generator_b2a")):
        for role, root in (("student", student), ("teacher", teacher)):
            saved = ResnetGenerator.from_pretrained(root / sub).state_dict()
            loaded = networks[direction][role].pipe.generator.state_dict()
            assert all(torch.equal(saved[k], loaded[k]) for k in saved), (direction, role)
    # the page's direction picks the pair: b2a translates with both b2a generators
    translate, _ = _handler(student, teacher)
    path = tmp_path / "photo.png"
    _photo(40, 40).save(path)
    _, teacher_out, student_out, *_ = translate(str(path), "b2a")
    for root, out in ((student, student_out), (teacher, teacher_out)):
        expected = ImageTranslationPipeline.from_pretrained(root, direction="b2a")(
            Image.open(path)).images[0]
        assert np.array_equal(np.asarray(out), np.asarray(expected))
    # a one-way student of a CycleGAN teacher: the teacher in the student's direction
    one_way = _save(tmp_path / "one_way", seed=9, direction="BtoA")
    networks = load_networks(str(one_way), str(teacher))
    saved = ResnetGenerator.from_pretrained(teacher / "generator_b2a").state_dict()
    loaded = networks["BtoA"]["teacher"].pipe.generator.state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_examples_are_the_runs_validation_images(pix2pix_teacher, photo_pairs):
    """The tiny run (B -> A on side-by-side pairs, 32 px) validates on two of the ten pairs: each
    example is the right half of one of them, resized to 32 px."""
    examples = writer.validation_images(pix2pix_teacher)
    assert len(examples) == 2 and all(image.size == (32, 32) for image in examples)
    halves = []
    for path in sorted(photo_pairs.glob("*.jpg")):
        pair = Image.open(path).convert("RGB")
        half = pair.crop((pair.width // 2, 0, pair.width, pair.height))
        halves.append(np.asarray(half.resize((32, 32), Image.Resampling.BICUBIC), np.float32))
    for image in examples:
        errors = [np.abs(np.asarray(image, np.float32) - half).mean() for half in halves]
        assert min(errors) < 3, errors


def test_cyclegan_examples_are_both_domains_validation_images(cycle_teacher, photo_domains):
    """The tiny CycleGAN run validates on two rows of each domain: its first validation batch
    gives A's two images, then B's two, each one of that domain's photos resized to 32 px."""
    examples = writer.validation_images(cycle_teacher)
    assert len(examples) == 4
    half = len(examples) // 2
    for domain, images in (("trainA", examples[:half]), ("trainB", examples[half:])):
        originals = [np.asarray(Image.open(p).convert("RGB").resize((32, 32),
                                                                    Image.Resampling.BICUBIC),
                                np.float32) for p in sorted((photo_domains / domain).glob("*"))]
        for image in images:
            assert image.size == (32, 32)
            errors = [np.abs(np.asarray(image, np.float32) - o).mean() for o in originals]
            assert min(errors) < 3, (domain, errors)


def test_distill_push_writes_the_space_too(pix2pix_teacher, photo_pairs, tmp_path, monkeypatch):
    """``distill.py --push_to_hub --hub_space_id``: after the model's upload, its Space: the
    student by its Hub id, the teacher by --teacher_hub_id, the run's validation images."""
    import wkd_hf.run
    from conftest import run_script

    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    for module in (writer, wkd_hf.run):
        monkeypatch.setattr(module, "check_hub_reachable", lambda: None)
    monkeypatch.setattr(wkd_hf.run, "prepare_hub_repo", lambda *a, **k: "url")
    pushed = []
    monkeypatch.setattr(wkd_hf.run, "push_output_dir", lambda *a, **k: pushed.append(a))
    out = tmp_path / "student"
    run_script("distill", [
        "--teacher_model_name_or_path", str(pix2pix_teacher), "--teacher_hub_id", "me/teacher",
        "--train_data_dir", str(photo_pairs), "--direction", "BtoA", "--output_dir", str(out),
        "--student_ngf", "4", "--discriminator_ndf", "4", "--wkd_levels", "3", "--resolution",
        "32", "--train_batch_size", "2", "--max_train_steps", "1", "--validation_split", "2",
        "--num_validation_images", "2", "--validation_steps", "0", "--checkpointing_steps", "0",
        "--report_to", "none", "--push_to_hub", "--hub_model_id", "me/student",
        "--hub_space_id", "me/demo", "--hub_private_repo"])
    assert pushed == [(str(out), "me/student")]
    # the Space is created at start-up (a bad name fails before training), then again at upload
    names = [name for name, _ in RecordingApi.calls]
    assert names == ["init", "create_repo", "init", "create_repo", "upload_folder"], names
    assert RecordingApi.calls[1] == RecordingApi.calls[3]
    (_, create), (_, upload) = RecordingApi.calls[3:]
    assert create == {"repo_id": "me/demo", "repo_type": "space", "space_sdk": "gradio",
                      "private": True, "exist_ok": True}
    assert upload["files"] == ["README.md", "app.py", "examples", "requirements.txt",
                               "space_config.json"]
    assert json.loads((out / "args.json").read_text())["hub_space_id"] == "me/demo"
    assert upload["examples"] == [(32, 32), (32, 32)]
    assert (upload["config"]["student"], upload["config"]["teacher"]) == ("me/student",
                                                                          "me/teacher")
    assert upload["config"]["card_markdown"].startswith("### Validation metrics")


def test_hub_space_id_needs_push_to_hub():
    from wkd_hf.script_args import check_args

    args = argparse.Namespace(hub_space_id="me/demo", push_to_hub=False)
    with pytest.raises(SystemExit, match="--hub_space_id needs --push_to_hub"):
        check_args(_complete(args))


def _complete(args):
    """The training scripts' defaults around ``args`` (check_args reads them all)."""
    from conftest import load_script

    parsed = load_script("distill").parse_args(
        ["--teacher_model_name_or_path", "t", "--train_data_dir", ".", "--output_dir", "o"])
    vars(parsed).update(vars(args))
    return parsed
