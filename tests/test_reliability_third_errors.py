"""Third reliability pass, silent wrong results and tracebacks: subfolders, integer weights,
absurd configs, image value ranges, NaN statistics, hand-edited checkpoints, FIFOs, signals and
peers end with one clear error (tiny nets, 32 px; data: ``photo_pairs``)."""

import os

import pytest
import torch
from third_pass_helpers import (
    distill,
    distill_argv,
    photo,
    tiny_generator,
    tiny_pipe,
)

from conftest import free_port
from wkd_hf.errors import WKDError


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


def test_uint8_tensors_are_read_as_0_255_like_uint8_arrays():
    import numpy as np

    array = np.array(photo())  # H x W x 3 uint8
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
    from wkd_hf.cli.profile import main

    tiny_generator().save_pretrained(tmp_path / "g")
    with pytest.raises(SystemExit, match=r"wkd-profile: error: --resolution 1000000 needs more "
                                         r"memory"):  # a 12 TB input: refused on any machine
        main(["--model", str(tmp_path / "g"), "--resolution", "1000000", "--no_latency"])


# ----------------------------------------------------------------------------- 21: SIGTERM twice
SECOND_SIGTERM = """
import os, signal
from wkd_hf.processes import stop_with_launcher
stop_with_launcher()
try:
    os.kill(os.getpid(), signal.SIGTERM)
except KeyboardInterrupt as stop:
    print("stopped:", stop)
os.kill(os.getpid(), signal.SIGTERM)  # while stopping: ignored, no second interrupt
print("ignored: True")  # reached only if the second signal raised nothing
"""


def test_a_second_sigterm_does_not_interrupt_the_clean_stop():
    """In a fresh process: signals sent to the test runner itself crashed it once other tests had
    loaded native thread pools (ONNX Runtime, OpenVINO)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("ACCELERATE_MIXED_PRECISION", "TORCHELASTIC_RUN_ID")}
    result = subprocess.run([sys.executable, "-c", SECOND_SIGTERM], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stopped: signal SIGTERM" in result.stdout
    assert "ignored: True" in result.stdout


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


def test_two_processes_with_bad_images_end_with_error_lines_not_tracebacks(
        tmp_path, photo_pairs, pix2pix_teacher):
    """Item 22 for real: two gloo ranks, 8 of 20 files truncated. The rank that counts them
    prints the clear line; its peer, whose collective loses the connection, prints one line."""
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    for i, path in enumerate(sorted(p for p in photo_pairs.rglob("*") if p.is_file()) * 2):
        payload = path.read_bytes()
        (data / f"{i:02d}{path.suffix}").write_bytes(payload[:300] if i < 8 else payload)
    argv = distill_argv(pix2pix_teacher, data, tmp_path / "out")
    argv[argv.index("--max_train_steps") + 1] = "40"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--main_process_port", free_port(),
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--quiet", "training_scripts/distill.py", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONWARNINGS": "ignore"}
    env.pop("WKD_HF_TRACEBACK", None)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode != 0
    assert "images could not be decoded" in result.stderr, result.stderr[-3000:]
    assert "Traceback (most recent call last)" not in result.stderr, result.stderr[-3000:]
    assert "Connection closed by peer" not in result.stderr


SIGTERM_WHILE_REPORTING = """
import os, signal, sys
from wkd_hf import run

def peer_gone(error):  # torchrun's SIGTERM arrives while the error is being reported
    os.kill(os.getpid(), signal.SIGTERM)
    return True

def main(args):
    raise RuntimeError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer")

run.peer_gone = peer_gone
sys.exit(run.run_cli(main, lambda: None))
"""


def test_the_launchers_sigterm_does_not_break_the_error_line():
    """Two ranks: when one exits on its error, the launcher sends SIGTERM to the other while it
    reports the lost connection; that signal must not turn the one line into a traceback."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("ACCELERATE_MIXED_PRECISION", "TORCHELASTIC_RUN_ID", "WKD_HF_TRACEBACK")}
    result = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_REPORTING], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "stopped because another process of this run ended" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
