"""``distill.py --mode cycle`` in two real processes (accelerate launch, CPU, gloo) on the unpaired
``photo_domains``: one output folder, every file written once, loadable by ``from_pretrained``,
and a run resumed from its checkpoint ends bit-identical to an uninterrupted one (each rank's RNG
state and CycleGAN image pools restored).

"Written once" is observed, not inferred: a ``sitecustomize`` on PYTHONPATH installs an audit hook
(``sys.addaudithook``) in every process that records each open-for-writing, rename and removal
under the output folder with the process's RANK. (Writes done in C/C++/Rust, e.g. torch.save's
zip writer or safetensors, raise no audit event; their files are checked by name and loading.)"""

import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, TINY_RUN, free_port
from wkd_hf import ResnetGenerator, WKDConfig
from wkd_hf.models import PatchDiscriminator

WATCH = r"""
import atexit, json, os, sys
_root = os.environ.get("WKD_WATCH_DIR")
if _root:
    _root, _events, _busy = os.path.realpath(_root), [], [False]

    def _record(event, args):
        if _busy[0]:
            return
        _busy[0] = True
        try:
            if event == "open" and not isinstance(args[0], int):
                mode, flags = args[1] or "", args[2] or 0
                if not (set(mode) & set("wax+") or flags & (os.O_WRONLY | os.O_RDWR)):
                    return
                paths = [args[0]]
            elif event in ("os.rename", "os.replace", "os.remove", "shutil.rmtree"):
                paths = [args[0]] + ([args[1]] if event in ("os.rename", "os.replace") else [])
            else:
                return
            for path in paths:
                path = os.path.realpath(os.fsdecode(path))
                if path == _root or path.startswith(_root + os.sep):
                    _events.append([os.environ.get("RANK", "launcher"), event,
                                    os.path.relpath(path, _root)])
        finally:
            _busy[0] = False

    def _dump():
        _busy[0] = True
        with open(os.path.join(os.environ["WKD_WATCH_LOG"], f"{os.getpid()}.json"), "w") as f:
            json.dump(_events, f)

    sys.addaudithook(_record)
    atexit.register(_dump)
"""

EXPORT = {"README.md", "args.json", "wkd_config.json", "samples_a2b.png", "samples_b2a.png",
          "generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b"}


def launch_cycle(teacher, data, out, *extra, env=None):
    """``accelerate launch`` of ``distill.py --mode cycle`` on two CPU processes (gloo)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--main_process_port", free_port(),
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", str(ROOT / "training_scripts" / "distill.py"),
               "--mode", "cycle", "--teacher_model_name_or_path", str(teacher),
               "--train_data_dir", str(data), "--output_dir", str(out), *TINY_RUN,
               "--student_ngf", "4", "--discriminator_ndf", "4", "--wkd_levels", "3",
               # pool_size 1: from step 2 on, each query may swap in the rank's stored fake, so
               # a resumed run only matches if every rank gets its own pool back.
               "--pool_size", "1", "--lr_scheduler", "constant", "--train_batch_size", "1",
               *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    errors = [line for line in result.stderr.splitlines() if "Error" in line or "error:" in line]
    assert result.returncode == 0, "\n".join(errors[:20]) + "\n" + result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, photo_domains, cycle_teacher):
    """Two steps on two processes, checkpoint at step 2, with every process's writes recorded."""
    root = tmp_path_factory.mktemp("ddp_cycle")
    out, hook, log = root / "out", root / "hook", root / "watch"
    hook.mkdir()
    log.mkdir()
    (hook / "sitecustomize.py").write_text(WATCH)
    python_path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    launch_cycle(cycle_teacher, photo_domains, out, "--checkpointing_steps", "2",
                 env={"PYTHONPATH": python_path, "WKD_WATCH_DIR": str(out),
                      "WKD_WATCH_LOG": str(log)})
    events = [tuple(e) for f in sorted(log.glob("*.json")) for e in json.loads(f.read_text())]
    return out, events


def test_two_processes_cycle_write_every_file_once(two_process_run):
    out, events = two_process_run
    # One export, one checkpoint and the final validation's grids: no temporary or per-rank
    # copies left.
    assert {p.name for p in out.iterdir()} == EXPORT | {"checkpoint-2", "validation"}
    assert {p.name for p in (out / "validation").iterdir()} == {"step-2_a2b.png",
                                                                "step-2_b2a.png"}
    assert not list(out.rglob(".*")) and not list(out.rglob("*.tmp"))
    ranks = {rank for rank, _, _ in events}
    assert "0" in ranks and ranks <= {"0", "1", "launcher"}, events  # the hook ran in the ranks
    others = [e for e in events if e[0] != "0" and not e[2].startswith(".checkpoint-2.tmp")]
    assert not others, others  # the export and the checkpoint's shared files: main process only
    writes = Counter(path for _, event, path in events if event == "open")
    assert writes and max(writes.values()) == 1, writes  # no file is written twice
    for name in ("README.md", "args.json", "wkd_config.json", "samples_a2b.png"):
        assert writes[name] == 1, writes
    renames = [(rank, path) for rank, event, path in events if event in ("os.rename", "os.replace")]
    assert renames.count(("0", "checkpoint-2")) == 1 and {r for r, _ in renames} == {"0"}, renames
    # Each rank's RNG state is in the checkpoint (a resumed run continues both streams).
    checkpoint = {p.name for p in (out / "checkpoint-2").iterdir()}
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= checkpoint, checkpoint
    for sub in ("generator_a2b", "generator_b2a"):
        generator = ResnetGenerator.from_pretrained(out, subfolder=sub)
        assert generator.config.ngf == 4 and generator.config.norm_type == "instance"
    for sub in ("discriminator_a", "discriminator_b"):
        assert PatchDiscriminator.from_pretrained(out / sub).config.ndf == 4
    assert WKDConfig.load(out).mode == "cycle"
    assert json.loads((out / "args.json").read_text())["train_batch_size"] == 1


# Guards: pools load on the CPU (safetensors refuses "cpu:0") and replay with their own RNG.
def test_two_processes_cycle_resume_matches_an_uninterrupted_run(tmp_path, two_process_run,
                                                                 photo_domains, cycle_teacher):
    resumed = tmp_path / "resumed"
    shutil.copytree(two_process_run[0], resumed)
    launch_cycle(cycle_teacher, photo_domains, resumed, "--max_train_steps", "4",
                 "--checkpointing_steps", "2", "--resume_from_checkpoint", "latest")
    reference = tmp_path / "reference"
    launch_cycle(cycle_teacher, photo_domains, reference, "--max_train_steps", "4")
    for sub in ("generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b"):
        expected = load_file(reference / sub / "diffusion_pytorch_model.safetensors")
        got = load_file(resumed / sub / "diffusion_pytorch_model.safetensors")
        assert expected.keys() == got.keys()
        for key in expected:
            assert torch.equal(expected[key], got[key]), f"{sub}.{key} differs after resume"
