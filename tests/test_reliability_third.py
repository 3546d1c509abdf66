"""Third reliability pass, security and data loss: files from others never run code, nothing of
the user's is overwritten or written through a link (tiny nets, 32 px; data: ``photo_pairs``).
The one-line errors and silent wrong results: test_reliability_third_errors.py."""

import os
from pathlib import Path

import pytest
import torch
from third_pass_helpers import (
    distill,
    distill_argv,
    evil_pickle,
    photo,
    snapshot,
    tiny_generator,
    write_results,
)

from wkd_hf.errors import WKDError


# ----------------------------------------------------------------------------- 1, 23: Inception
def test_inception_weights_with_a_payload_are_refused_and_never_run(tmp_path):
    pytest.importorskip("torch_fidelity")
    from wkd_hf.metrics import fid

    marker = tmp_path / "PAYLOAD_RAN"
    evil = evil_pickle(tmp_path / "evil.pth", marker)
    with pytest.raises(fid.InceptionWeightsError, match="refusing to load .*evil.pth"):
        fid.InceptionFeatures(evil)
    assert not marker.exists()


def test_a_payload_in_the_torch_hub_cache_never_runs(tmp_path, monkeypatch):
    pytest.importorskip("torch_fidelity")
    from wkd_hf.metrics import fid

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fid.weights_cache_dir()
    cache.mkdir(parents=True)
    marker = tmp_path / "PAYLOAD_RAN"
    evil_pickle(cache / fid.INCEPTION_WEIGHTS_FILE, marker)
    with pytest.raises(fid.InceptionWeightsError, match="refusing to load"):
        fid.InceptionFeatures()
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not weights\n", b"PK\x03\x04garbage"],
                         ids=["empty", "text", "broken-zip"])
def test_inception_weights_that_are_not_a_torch_file_are_one_clear_line(tmp_path, content):
    pytest.importorskip("torch_fidelity")
    from wkd_hf.metrics import fid

    bad = tmp_path / "bad.pth"
    bad.write_bytes(content)
    with pytest.raises(fid.InceptionWeightsError, match="bad.pth is not InceptionV3 FID weights"):
        fid.InceptionFeatures(bad)


def test_real_inception_weights_still_load_weights_only(tmp_path):
    pytest.importorskip("torch_fidelity")
    from inception_fixtures import save_random_inception_weights

    from wkd_hf.metrics import fid

    path = save_random_inception_weights(tmp_path / "random.pth")
    extractor = fid.InceptionFeatures(path)
    expected = torch.load(path, weights_only=True)["Conv2d_1a_3x3.conv.weight"]
    assert torch.equal(extractor.extractor.Conv2d_1a_3x3.conv.weight, expected)


# ----------------------------------------------------------------------------- 2, 18: the card


def test_update_card_never_writes_through_a_symlinked_readme(tmp_path):
    victim = tmp_path / "victim.md"
    victim.write_text("IMPORTANT USER DATA\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "README.md").symlink_to(victim)
    with pytest.raises(WKDError, match="README.md is a symbolic link"):
        write_results(model)
    assert victim.read_text() == "IMPORTANT USER DATA\n"
    assert (model / "README.md").is_symlink()


def test_update_card_with_invalid_yaml_is_one_clear_line_and_keeps_the_card(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("---\nfoo: [unclosed\n---\n# my card\n")
    with pytest.raises(WKDError, match="YAML front matter is invalid"):
        write_results(tmp_path)
    assert card.read_text() == "---\nfoo: [unclosed\n---\n# my card\n"


def test_update_card_writes_the_card_beside_then_renames(tmp_path):
    path = write_results(tmp_path)
    assert "## Evaluation (d, split test)" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]  # no temporary left


# ----------------------------------------------------------------------------- 3: the lock
@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_lock_that_is_not_a_regular_file_is_refused_and_its_target_untouched(tmp_path, kind):
    from wkd_hf.processes import LOCK_FILE, lock_output_dir, release_output_dirs

    victim = tmp_path / "victim.txt"
    victim.write_text("IMPORTANT USER DATA")
    out = tmp_path / "out"
    out.mkdir()
    if kind == "symlink":
        (out / LOCK_FILE).symlink_to(victim)
    else:
        os.mkfifo(out / LOCK_FILE)
    try:
        with pytest.raises(WKDError, match=r"\.wkd_hf\.lock is .*remove it"):
            lock_output_dir(out)
    finally:
        release_output_dirs()
    assert victim.read_text() == "IMPORTANT USER DATA"
    assert os.path.lexists(out / LOCK_FILE)


# ----------------------------------------------------------------------------- 5: translate


@pytest.mark.parametrize("where", ["same", "inside", "file-beside"])
def test_translate_never_overwrites_or_retranslates_its_inputs(tmp_path, capsys, where):
    from wkd_hf.cli.translate import main

    data = tmp_path / "in"
    data.mkdir()
    photo().save(data / "a.png")
    before = (data / "a.png").read_bytes()
    model = tmp_path / "model"
    tiny_generator().save_pretrained(model)
    source, output = {"same": (data, data), "inside": (data, data / "out"),
                      "file-beside": (data / "a.png", data)}[where]
    rc = main(["--model", str(model), "--input", str(source), "--output", str(output),
               "--no_progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("wkd-translate: error:") and "\n" not in err, err
    assert (data / "a.png").read_bytes() == before
    assert sorted(p.name for p in data.iterdir()) == ["a.png"]


# ----------------------------------------------------------------------------- 6, 17, 24, 25: ONNX
def test_a_failed_onnx_check_keeps_the_earlier_export(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from wkd_hf.cli.export_onnx import main

    model = tmp_path / "model"
    tiny_generator().save_pretrained(model)
    target = tmp_path / "prec.onnx"
    target.write_bytes(b"the user's earlier export")
    rc = main(["--model", str(model), "--output", str(target), "--resolution", "32",
               "--atol", "0"])
    assert rc == 1 and "error" in capsys.readouterr().err
    assert target.read_bytes() == b"the user's earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "prec.onnx"]  # no partial


def test_onnx_export_errors_are_short_lines(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from wkd_hf.cli.export_onnx import main
    from wkd_hf.onnx_export import export_onnx

    model = tmp_path / "model"
    tiny_generator().save_pretrained(model)
    rc = main(["--model", str(model), "--output", str(tmp_path / "a.onnx"), "--resolution",
               "32", "--opset", "5"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and len(err) < 600 and "opset 5" in err, err[:2000]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        export_onnx(tiny_generator(), tmp_path / "b.onnx", resolution=32, batch_size=0)
    assert not (tmp_path / "a.onnx").exists() and not (tmp_path / "b.onnx").exists()


def test_onnx_metadata_with_size_multiple_zero_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from wkd_hf.onnx_export import OnnxGenerator, export_onnx

    path = tmp_path / "g.onnx"
    export_onnx(tiny_generator(), path, resolution=32, check=False)
    proto = onnx.load(str(path))
    for entry in proto.metadata_props:
        if entry.key == "wkd_hf.size_multiple":
            entry.value = "0"
    onnx.save(proto, str(path))
    with pytest.raises(ValueError, match="size_multiple 0"):
        OnnxGenerator(path)


# ----------------------------------------------------------------------------- 8: wkd-convert
def test_convert_into_an_existing_model_folder_is_refused_and_keeps_it(tmp_path, capsys):
    from wkd_hf.cli.convert import main

    model = tmp_path / "model"
    tiny_generator().save_pretrained(model)
    (model / "args.json").write_text('{"resolution": 256}')
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    torch.save(tiny_generator(1).state_dict(), tmp_path / "latest_net_G.pth")
    assert main(["--checkpoint", str(tmp_path / "latest_net_G.pth"), "--output_dir",
                 str(model)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("wkd-convert: error: ") and "\n" not in err  # one line
    assert "not an empty folder" in err
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    fresh = tmp_path / "fresh"
    fresh.mkdir()  # an empty folder is fine, and gets the whole model at once
    assert main(["--checkpoint", str(tmp_path / "latest_net_G.pth"), "--output_dir",
                 str(fresh)]) == 0
    assert sorted(p.name for p in fresh.iterdir()) == ["config.json",
                                                       "diffusion_pytorch_model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "latest_net_G.pth", "model"]


def test_a_run_never_replaces_its_teacher(tmp_path, photo_pairs, pix2pix_teacher):
    import shutil

    teacher = tmp_path / "teacher"
    shutil.copytree(pix2pix_teacher, teacher)
    before = snapshot(teacher)
    for extra in ([], ["--overwrite_output_dir"]):
        with pytest.raises(WKDError, match="is the teacher's folder"):
            distill(*distill_argv(teacher, photo_pairs, teacher, *extra))
    assert snapshot(teacher) == before


def test_a_new_run_into_a_finished_model_needs_overwrite(tmp_path, photo_pairs,
                                                          pix2pix_teacher):
    out = tmp_path / "out"
    distill(*distill_argv(pix2pix_teacher, photo_pairs, out))
    before = snapshot(out)
    with pytest.raises(WKDError, match="holds a finished model .*--overwrite_output_dir"):
        distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--seed", "4"))
    assert snapshot(out) == before
    distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--seed", "4",
                          "--overwrite_output_dir"))
    assert snapshot(out)[Path("diffusion_pytorch_model.safetensors")] != \
        before[Path("diffusion_pytorch_model.safetensors")]


def test_an_export_stopped_before_its_metadata_is_never_taken_for_a_model(
        tmp_path, photo_pairs, pix2pix_teacher, monkeypatch):
    import json

    import wkd_hf.run
    from wkd_hf import load_pretrained_model

    out = tmp_path / "out"
    distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--resolution", "64"))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after the weights, before args.json")

    monkeypatch.setattr(wkd_hf.run, "save_applicable_args", killed)
    with pytest.raises(KeyboardInterrupt):
        distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--overwrite_output_dir",
                              "--wkd_levels", "2"))
    assert not (out / "args.json").exists()  # the old one (resolution 64, 3 levels) is gone
    with pytest.raises(WKDError, match="unfinished export .*--resume_from_checkpoint latest"):
        load_pretrained_model(out)
    monkeypatch.undo()
    distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--overwrite_output_dir",
                          "--wkd_levels", "2"))
    assert json.loads((out / "args.json").read_text())["wkd_levels"] == 2
    load_pretrained_model(out)


# ----------------------------------------------------------------------------- 11, 24: pipeline


# ----------------------------------------------------------------------------- second probe
def test_real_statistics_never_go_through_a_link_or_block_on_a_fifo(tmp_path):
    from wkd_hf.metrics.fid import load_statistics, save_statistics

    victim = tmp_path / "victim"
    victim.write_bytes(b"KEEP")
    (tmp_path / "link.npz").symlink_to(victim)
    with pytest.raises(WKDError, match="symbolic link"):
        save_statistics(tmp_path / "link.npz", torch.randn(4, 3))
    assert victim.read_bytes() == b"KEEP"
    os.mkfifo(tmp_path / "fifo.npz")  # opening it for writing would block: it is replaced
    save_statistics(tmp_path / "fifo.npz", torch.randn(4, 3))
    assert load_statistics(tmp_path / "fifo.npz")["mu"].shape == (3,)


def test_translate_replaces_a_link_in_output_instead_of_writing_through_it(tmp_path, capsys):
    from wkd_hf.cli.translate import main

    (tmp_path / "in").mkdir()
    photo().save(tmp_path / "in" / "a.png")
    tiny_generator().save_pretrained(tmp_path / "model")
    victim = tmp_path / "victim"
    victim.write_bytes(b"KEEP")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").symlink_to(victim)
    assert main(["--model", str(tmp_path / "model"), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--no_progress"]) == 0
    assert victim.read_bytes() == b"KEEP"
    assert not (tmp_path / "out" / "a.png").is_symlink()


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_profile_json_never_goes_through_a_link_or_fifo(tmp_path, kind):
    from wkd_hf.cli.profile import main

    tiny_generator().save_pretrained(tmp_path / "g")
    victim = tmp_path / "victim"
    victim.write_bytes(b"KEEP")
    report = tmp_path / "r.json"
    report.symlink_to(victim) if kind == "symlink" else os.mkfifo(report)
    with pytest.raises(SystemExit, match="is a link or not a regular file"):
        main(["--model", str(tmp_path / "g"), "--resolution", "16", "--no_latency", "--json",
              str(report)])
    assert victim.read_bytes() == b"KEEP"


def test_the_final_export_never_writes_through_a_symlinked_model_file(tmp_path):
    from wkd_hf.output_folders import begin_export

    victim = tmp_path / "victim"
    victim.write_text("KEEP")
    out = tmp_path / "out"
    (out / "discriminator").mkdir(parents=True)
    (out / "config.json").symlink_to(victim)
    (out / "discriminator" / "config.json").symlink_to(victim)
    begin_export(out)
    tiny_generator().save_pretrained(out)
    tiny_generator().save_pretrained(out / "discriminator")
    assert victim.read_text() == "KEEP"
