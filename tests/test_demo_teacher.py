"""`make demo` distils from the committed teacher (`make demo-teacher` writes it once), and the
demo's training crops carry colour augmentation (channel order), so the teacher has seen colours
such as the test flower's teal."""

import dataclasses
import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT

MIN_GAIN_DB = 5.0  # PSNR over the noisy input, per held-out photo
MAX_CAST = 8.0  # grey levels: mean error of any RGB channel over a photo's crops (old teacher: 9.0)


def _module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_train_crops_are_channel_permutations_of_clean_crops_and_test_crops_are_not():
    demo_data = _module("demo_data")
    plain = demo_data._crops("coffee", 24, 32, 0.0, seed=0)
    coloured = demo_data._crops("coffee", 24, 32, 0.0, seed=0, colour=True)
    orders = set()
    for a, b in zip(plain["target"], coloured["target"]):
        a, b = np.asarray(a), np.asarray(b)
        # Same crop, same flip: b's channels are a's in some order (an independent check).
        order = tuple(next(j for j in range(3) if np.array_equal(b[..., i], a[..., j]))
                      for i in range(3))
        assert sorted(order) == [0, 1, 2]
        orders.add(order)
    assert len(orders) >= 4  # several of the 6 orders, not a fixed swap


def _fake_teacher(folder, settings, demo):
    folder.mkdir(parents=True)
    for name in demo.TEACHER_FILES:
        (folder / name).write_text("{}")
    (folder / "demo_settings.json").write_text(json.dumps(dataclasses.asdict(settings)))


def test_demo_distils_from_the_committed_teacher_and_trains_one_only_without_it(
        tmp_path, monkeypatch):
    demo = _module("demo")
    launched = []
    monkeypatch.setattr(demo, "launch", lambda script, flags, **kw: launched.append(
        (script, flags.get("teacher_model_name_or_path"))))
    monkeypatch.setattr(demo, "launch_together", lambda jobs: launched.extend(
        (script, flags.get("teacher_model_name_or_path")) for script, flags in jobs.values()))
    settings = demo.DemoSettings()
    committed = tmp_path / "demo_teacher"
    _fake_teacher(committed, settings, demo)
    monkeypatch.setattr(demo, "TEACHER_DIR", committed)
    demo.train_all(tmp_path / "data", tmp_path / "out", settings)
    assert launched == [("distill.py", committed), ("distill.py", committed)]
    # Other data or teacher settings: that teacher does not fit; the demo trains its own first.
    launched.clear()
    other = dataclasses.replace(settings, teacher_steps=settings.teacher_steps + 1)
    demo.train_all(tmp_path / "data", tmp_path / "out", other)
    assert [script for script, _ in launched] == ["train_teacher.py", "distill.py", "distill.py"]
    assert launched[1][1] == tmp_path / "out" / "teacher"


def test_publish_copies_the_teacher_files_beside_then_renames(tmp_path):
    demo = _module("demo")
    run = tmp_path / "teacher_run"
    run.mkdir()
    for name in demo.TEACHER_FILES:
        if name != "demo_settings.json":
            (run / name).write_text(name)
    (run / "args.json").write_text(json.dumps({"output_dir": str(run),
                                               "train_data_dir": str(tmp_path / "data")}))
    target = tmp_path / "examples" / "demo_teacher"
    (target).mkdir(parents=True)
    (target / "stale.txt").write_text("old")
    demo.publish_teacher(run, demo.DemoSettings(), target)
    assert sorted(p.name for p in target.iterdir()) == sorted(demo.TEACHER_FILES)
    assert not target.with_name("demo_teacher.partial").exists()
    assert "make demo-teacher" in (target / "README.md").read_text()  # the card says how
    assert str(tmp_path) not in (target / "args.json").read_text()  # no local absolute paths
    assert demo.committed_teacher(demo.DemoSettings(), target) == target


def test_committed_teacher_matches_the_demo_settings():
    demo = _module("demo")
    if not (demo.TEACHER_DIR / "demo_settings.json").is_file():
        pytest.skip("no committed demo teacher yet (make demo-teacher)")
    assert demo.committed_teacher(demo.DemoSettings()) == demo.TEACHER_DIR


def _held_out_crops(tmp_path, demo):
    """The demo's 128 px test crops (independent of the train crops: one train crop suffices)."""
    settings = demo.DemoSettings()
    demo_data = _module("demo_data")
    data = demo_data.build_demo_dataset(
        tmp_path / "data", resolution=settings.resolution, crops_per_photo=1,
        test_resolution=settings.test_resolution,
        test_crops_per_photo=settings.test_crops_per_photo, noise_sigma=settings.noise_sigma)
    test = data["test"]
    to_tensor = lambda images: torch.stack([  # noqa: E731  N x 3 x H x W in [-1, 1]
        torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
        for image in images])
    return to_tensor(test["source"]), to_tensor(test["target"]), list(test["photo"])


def test_committed_teacher_beats_its_input_clearly_and_keeps_the_colours(tmp_path):
    """What a reader of the demo's picture checks: much less noise than the input on both
    held-out photos, and no colour cast (the earlier teacher turned the flower's teal navy:
    mean error R +9.0, G -8.6 grey levels)."""
    demo = _module("demo")
    if not (demo.TEACHER_DIR / "demo_settings.json").is_file():
        pytest.skip("no committed demo teacher yet (make demo-teacher)")
    from wkd_hf.models import load_pretrained_model

    source, target, photos = _held_out_crops(tmp_path, demo)
    teacher = load_pretrained_model(str(demo.TEACHER_DIR)).eval()
    with torch.no_grad():
        output = teacher(source).clamp(-1, 1)
    for photo in ("chelsea", "flower"):
        rows = [i for i, p in enumerate(photos) if p == photo]
        psnr = lambda x: float((10 * torch.log10(  # noqa: E731  images in [-1, 1]: peak 2
            4 / (x[rows] - target[rows]).pow(2).mean(dim=(1, 2, 3)))).mean())
        assert psnr(output) > psnr(source) + MIN_GAIN_DB, photo
        cast = (output[rows] - target[rows]).mean(dim=(0, 2, 3)) * 127.5  # grey levels, per RGB
        assert cast.abs().max() < MAX_CAST, (photo, cast)


def test_students_side_by_side_fail_with_one_line_naming_the_log(tmp_path):
    demo = _module("demo")
    jobs = {tmp_path / "good.log": ("distill.py", {"help": ""}),  # --help: exits 0
            tmp_path / "bad.log": ("distill.py", {"no_such_flag": 1})}
    with pytest.raises(SystemExit) as failure:
        demo.launch_together(jobs)
    message = str(failure.value)
    assert message.startswith("error:") and str(tmp_path / "bad.log") in message
    assert "good.log" not in message and "\n" not in message
    assert "no_such_flag" in (tmp_path / "bad.log").read_text()  # the child's own output is there
