"""Third reliability pass: files from others never run code, nothing of the user's is overwritten
or followed through a link, and careless inputs end with one clear ``error:`` line (tiny nets,
32 px; data: ``photo_pairs``)."""

import os
import sys
from pathlib import Path

import pytest
import torch

from wkd_hf.errors import WKDError

pytest.importorskip("torch_fidelity")
sys.path.insert(0, os.path.dirname(__file__))
from inception_fixtures import save_random_inception_weights  # noqa: E402


class Payload:
    """A pickle that runs code when loaded: it creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(path, marker):
    torch.save({"Conv2d_1a_3x3.conv.weight": Payload(marker)}, path)
    return path


# ----------------------------------------------------------------------------- 1, 23: Inception
def test_inception_weights_with_a_payload_are_refused_and_never_run(tmp_path):
    from wkd_hf.metrics import fid

    marker = tmp_path / "PAYLOAD_RAN"
    evil = evil_pickle(tmp_path / "evil.pth", marker)
    with pytest.raises(fid.InceptionWeightsError, match="refusing to load .*evil.pth"):
        fid.InceptionFeatures(evil)
    assert not marker.exists()


def test_a_payload_in_the_torch_hub_cache_never_runs(tmp_path, monkeypatch):
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
    from wkd_hf.metrics import fid

    bad = tmp_path / "bad.pth"
    bad.write_bytes(content)
    with pytest.raises(fid.InceptionWeightsError, match="bad.pth is not InceptionV3 FID weights"):
        fid.InceptionFeatures(bad)


def test_real_inception_weights_still_load_weights_only(tmp_path):
    from wkd_hf.metrics import fid

    path = save_random_inception_weights(tmp_path / "random.pth")
    extractor = fid.InceptionFeatures(path)
    expected = torch.load(path, weights_only=True)["Conv2d_1a_3x3.conv.weight"]
    assert torch.equal(extractor.extractor.Conv2d_1a_3x3.conv.weight, expected)


# ----------------------------------------------------------------------------- 2, 18: the card
def write_results(folder):
    from wkd_hf.hub import write_evaluation_results

    record = {"name": "m", "metrics": {"psnr": 20.0}}
    return write_evaluation_results(folder, record, dataset_name="d", dataset_type="d",
                                    dataset_split="test", task_name="t", table="| a |")


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
def tiny_generator(seed=0):
    from wkd_hf.models import ResnetGenerator

    torch.manual_seed(seed)
    return ResnetGenerator(ngf=4, n_blocks=1).eval()


def photo(width=16, height=12, seed=0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("where", ["same", "inside", "file-beside"])
def test_translate_never_overwrites_or_retranslates_its_inputs(tmp_path, capsys, where):
    from wkd_hf.pipeline import main

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
    from wkd_hf.onnx_export import main

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
    from wkd_hf.onnx_export import export_onnx, main

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
def test_convert_into_an_existing_model_folder_is_refused_and_keeps_it(tmp_path, caplog):
    from wkd_hf.conversion import main

    model = tmp_path / "model"
    tiny_generator().save_pretrained(model)
    (model / "args.json").write_text('{"resolution": 256}')
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    torch.save(tiny_generator(1).state_dict(), tmp_path / "latest_net_G.pth")
    assert main(["--checkpoint", str(tmp_path / "latest_net_G.pth"), "--output_dir",
                 str(model)]) == 1
    assert "not an empty folder" in caplog.text
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    fresh = tmp_path / "fresh"
    fresh.mkdir()  # an empty folder is fine, and gets the whole model at once
    assert main(["--checkpoint", str(tmp_path / "latest_net_G.pth"), "--output_dir",
                 str(fresh)]) == 0
    assert sorted(p.name for p in fresh.iterdir()) == ["config.json",
                                                       "diffusion_pytorch_model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "latest_net_G.pth", "model"]


# ----------------------------------------------------------------------------- 10, 14, 16: loading
def test_subfolder_loads_the_subfolders_own_weights(tmp_path):
    from wkd_hf import load_pretrained_model
    from wkd_hf.pipeline import ImageTranslationPipeline

    root, best = tiny_generator(0), tiny_generator(1)
    root.save_pretrained(tmp_path)
    best.save_pretrained(tmp_path / "best")
    loaded = load_pretrained_model(tmp_path, subfolder="best")
    for key, value in best.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    pipe = ImageTranslationPipeline.from_pretrained(tmp_path, subfolder="best")
    assert torch.equal(pipe.generator.model[1].weight, best.model[1].weight)


def test_integer_weights_are_refused_not_loaded_as_zeros(tmp_path):
    from safetensors.torch import load_file, save_file

    from wkd_hf import load_pretrained_model

    tiny_generator().save_pretrained(tmp_path)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file({k: (v * 100).to(torch.int8) for k, v in load_file(path).items()}, path)
    with pytest.raises(ValueError, match="not floating point .*int8|I8"):
        load_pretrained_model(tmp_path)


@pytest.mark.parametrize("edit, message", [
    ({"_class_name": ["ResnetGenerator"]}, "_class_name must be a class name"),
    ({"ngf": 10**6}, "ngf=1000000; at most 4096"),
    ({"n_blocks": 10**7}, "n_blocks=10000000"),
    ({"ngf": 4096, "n_blocks": 576}, "parameters; at most"),
], ids=["class-list", "ngf", "n_blocks", "parameters"])
def test_absurd_configs_are_refused_before_allocating(tmp_path, edit, message):
    import json

    from wkd_hf import load_pretrained_model

    tiny_generator().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises(ValueError, match=message):
        load_pretrained_model(tmp_path)


# ----------------------------------------------------------------------------- 7, 9, 12, 25: runs
def distill_argv(teacher, data, out, *extra):
    return ["--teacher_model_name_or_path", str(teacher), "--train_data_dir", str(data),
            "--direction", "BtoA", "--output_dir", str(out), "--resolution", "32",
            "--train_batch_size", "2", "--validation_split", "2", "--num_validation_images", "2",
            "--validation_steps", "0", "--report_to", "none", "--student_ngf", "4",
            "--discriminator_ndf", "4", "--wkd_levels", "3", "--seed", "3",
            "--max_train_steps", "1", "--checkpointing_steps", "0", *extra]


def distill(*argv):
    from conftest import run_script
    from wkd_hf.processes import release_output_dirs

    try:
        return run_script("distill", list(argv))
    finally:
        release_output_dirs()


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name != ".wkd_hf.lock"}


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
                              "--direction", "AtoB"))
    assert not (out / "args.json").exists()  # the old one (resolution 64, BtoA) is gone
    with pytest.raises(WKDError, match="unfinished export .*--resume_from_checkpoint latest"):
        load_pretrained_model(out)
    monkeypatch.undo()
    distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--overwrite_output_dir",
                          "--direction", "AtoB"))
    assert json.loads((out / "args.json").read_text())["direction"] == "AtoB"
    load_pretrained_model(out)


# ----------------------------------------------------------------------------- 11, 24: pipeline
def tiny_pipe():
    from wkd_hf.pipeline import ImageTranslationPipeline

    pipe = ImageTranslationPipeline(tiny_generator())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_uint8_tensors_are_read_as_0_255_like_uint8_arrays():
    import numpy as np

    array = np.asarray(photo())  # H x W x 3 uint8
    pipe = tiny_pipe()
    from_array = pipe(array, output_type="pt").images[0]
    from_tensor = pipe(torch.from_numpy(array).permute(2, 0, 1), output_type="pt").images[0]
    assert torch.equal(from_array, from_tensor)


@pytest.mark.parametrize("kind", ["float-0-255", "int64-array", "int64-tensor", "minus-one"])
def test_values_outside_0_1_are_refused_not_clamped(kind):
    import numpy as np

    array = np.asarray(photo())
    image = {"float-0-255": array.astype(np.float32),
             "int64-array": array.astype(np.int64),
             "int64-tensor": torch.from_numpy(array.astype(np.int64)).permute(2, 0, 1),
             "minus-one": torch.from_numpy(array).permute(2, 0, 1).float() / 127.5 - 1}[kind]
    with pytest.raises((ValueError, TypeError), match=r"\[0, 1\]|divide by 255"):
        tiny_pipe()(image)


def test_empty_images_and_dtype_strings(tmp_path):
    import numpy as np

    from wkd_hf.pipeline import ImageTranslationPipeline

    with pytest.raises(ValueError, match="no pixels"):
        tiny_pipe()(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="no pixels"):
        tiny_pipe()(torch.zeros(3, 4, 0))
    tiny_generator().save_pretrained(tmp_path)
    pipe = ImageTranslationPipeline.from_pretrained(tmp_path, torch_dtype="bfloat16")
    assert pipe.generator.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="torch_dtype must be one of"):
        ImageTranslationPipeline.from_pretrained(tmp_path, torch_dtype="float8")


# ----------------------------------------------------------------------------- 13: FID statistics
def test_nan_real_statistics_are_refused_and_json_stays_valid(tmp_path):
    import json

    import numpy as np

    from wkd_hf.metrics import fid
    from wkd_hf.safe_files import finite_or_null

    path = tmp_path / "real.npz"
    np.savez(path, mu=np.full(4, np.nan), sigma=np.eye(4))
    with pytest.raises(ValueError, match="mu hold NaN"):
        fid.load_statistics(path)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.full(2, np.nan), np.eye(2))
    text = json.dumps(finite_or_null({"psnr": float("inf"), "fid": [float("nan"), 1.5]}),
                      allow_nan=False)
    assert json.loads(text) == {"psnr": None, "fid": [None, 1.5]}


# ----------------------------------------------------------------------------- 15, 20, 25: resume
@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory, photo_pairs, pix2pix_teacher):
    out = tmp_path_factory.mktemp("third") / "run"
    distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--max_train_steps", "2",
                          "--checkpointing_steps", "2"))
    return out


def resume_copy(tmp_path, run, edit):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(run, out)
    edit(out / "checkpoint-2")
    return out


def test_a_fifo_in_a_checkpoint_is_refused_not_opened(tmp_path, checkpointed_run, photo_pairs,
                                                      pix2pix_teacher):
    out = resume_copy(tmp_path, checkpointed_run, lambda c: os.mkfifo(c / "optimizer_2.bin"))
    with pytest.raises(WKDError, match="optimizer_2.bin is not a regular file"):
        distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--max_train_steps", "3",
                              "--resume_from_checkpoint", "latest"))


def _write(name, text):
    return lambda folder: (folder / name).write_text(text)


def _drop_schedulers(folder):
    import json

    state = json.loads((folder / "training_state.json").read_text())
    del state["schedulers"]
    (folder / "training_state.json").write_text(json.dumps(state))


def _edit_ngf(folder):
    import json

    saved = json.loads((folder / "args.json").read_text())
    (folder / "args.json").write_text(json.dumps({**saved, "student_ngf": 8}))


@pytest.mark.parametrize("edit, extra, message", [
    (_drop_schedulers, [], "lacks its 'loop' or 'schedulers'"),
    (_write("training_state.json", "[1, 2]"), [], "training_state.json holds a JSON list"),
    (_write("args.json", "[1, 2]"), [], "args.json holds a JSON list"),
    (_write("args.json", "{not json"), [], "args.json is not valid JSON"),
    (_edit_ngf, ["--student_ngf", "8"], "does not fit this run's models .*size mismatch"),
], ids=["no-schedulers", "state-list", "args-list", "args-not-json", "edited-ngf"])
def test_hand_edited_checkpoints_are_one_clear_line(tmp_path, checkpointed_run, photo_pairs,
                                                    pix2pix_teacher, edit, extra, message):
    out = resume_copy(tmp_path, checkpointed_run, edit)
    argv = distill_argv(pix2pix_teacher, photo_pairs, out, "--max_train_steps", "3",
                        "--resume_from_checkpoint", "latest")
    if extra:
        argv[argv.index("--student_ngf") + 1] = extra[1]
    with pytest.raises(WKDError, match=message):
        distill(*argv)


# ----------------------------------------------------------------------------- 19: wkd-profile
def test_profile_at_a_resolution_beyond_memory_is_one_clear_line(tmp_path):
    from wkd_hf.metrics.efficiency import main

    tiny_generator().save_pretrained(tmp_path / "g")
    with pytest.raises(SystemExit, match=r"wkd-profile: error: --resolution 1000000 needs more "
                                         r"memory"):  # a 12 TB input: refused on any machine
        main(["--model", str(tmp_path / "g"), "--resolution", "1000000", "--no_latency"])


# ----------------------------------------------------------------------------- 21: SIGTERM twice
def test_a_second_sigterm_does_not_interrupt_the_clean_stop():
    import signal

    from wkd_hf.processes import stop_with_launcher

    previous = signal.getsignal(signal.SIGTERM)
    try:
        stop_with_launcher()
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # while stopping: ignored, no second interrupt
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- 25: --keep_best
def test_keep_best_that_the_run_cannot_give_is_refused_before_training(tmp_path, photo_pairs,
                                                                       pix2pix_teacher):
    out = tmp_path / "out"
    with pytest.raises(WKDError, match="--keep_best teacher_l1: .*paired data: psnr.*before "
                                       "training"):
        distill(*distill_argv(pix2pix_teacher, photo_pairs, out, "--keep_best", "teacher_l1"))
    assert not (out / "config.json").exists()


# ----------------------------------------------------------------------------- 22: the other rank
def test_a_rank_whose_peer_stopped_prints_one_line(monkeypatch, capsys):
    """Rank 1 of two, when rank 0 stopped on bad data: gloo's error, as torch raises it."""
    import torch.distributed as dist

    from wkd_hf.run import run_cli

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda *a: 2)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("WKD_HF_TRACEBACK", raising=False)

    def main(args):
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection "
                           "closed by peer [127.0.0.1]:29500")

    import signal
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert run_cli(main, lambda: None) == 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err.strip()
    assert err == ("error: process 1 stopped because another process of this run ended: its "
                   "error line is above.")
    monkeypatch.setattr(dist, "get_world_size", lambda *a: 1)  # one process: not ours to hide
    with pytest.raises(RuntimeError, match="Connection closed"):
        run_cli(main, lambda: None)
    signal.signal(signal.SIGTERM, previous)


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
    from wkd_hf.pipeline import main

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
    from wkd_hf.metrics.efficiency import main

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
