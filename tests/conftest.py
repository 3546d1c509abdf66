"""Shared pytest fixtures."""

import pytest

pytest_plugins = ["data_fixtures"]  # image folders for the wkd_hf.data tests


@pytest.fixture
def hub_offline(monkeypatch, tmp_path):
    """Hub offline with an empty cache. huggingface_hub reads HF_HUB_OFFLINE / HF_HUB_CACHE at import
    time, so the module constants are patched as well as the environment."""
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))


@pytest.fixture
def requested_sleeps(monkeypatch):
    """The seconds each ``time.sleep`` call asked for (none is slept). "Fails fast" means no
    retry back-off: asserted on the requested waits, not on the wall clock, which a loaded or
    slow machine stretches."""
    import time

    asked: list[float] = []
    monkeypatch.setattr(time, "sleep", lambda seconds: asked.append(seconds))
    return asked


def free_port() -> str:
    """A TCP port free on 127.0.0.1 now, for ``accelerate launch --main_process_port``: its
    default, 29500, may be taken by another run (or another test suite) on the machine."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


# ----------------------------------------------------------------------------- script runs
import importlib.util  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _shared(*parts: str) -> Path:
    """data_fixtures._shared: skips without the real data, fails when CI is set. (Imported lazily:
    importing the plugin here, before pytest registers it, would skip its assertion rewriting.)"""
    from data_fixtures import _shared as shared

    return shared(*parts)


def load_script(name: str):
    """Import ``training_scripts/<name>.py`` as a module (its ``parse_args`` and ``main``)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "training_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` as a module (registered, with ``benchmarks/`` on the path,
    since the study's modules import each other)."""
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_script(name: str, argv: list[str]):
    """Run a training script in-process, as ``accelerate launch`` would with one process."""
    module = load_script(name)
    args = module.parse_args(argv)
    module.main(args, argv)
    return args


# ----------------------------------------------------------------------------- repo-made data
# Every end-to-end test runs on these: real photographs that ship inside scikit-image,
# scikit-learn and matplotlib (the demo's, examples/demo_data.py), so any machine can build them.
def _demo_data():
    spec = importlib.util.spec_from_file_location("demo_data", ROOT / "examples" / "demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _photo_crops(demo_data, names, crops: int, size: int = 64):
    """(name, sharp crop, blurred 4x-degraded crop) for ``crops`` random crops of each photo."""
    for name in names:
        rows = demo_data._crops(name, crops, size, 4, seed=0)
        yield from zip(rows["photo"], rows["target"], rows["source"])


@pytest.fixture(scope="session")
def photo_pairs(tmp_path_factory) -> Path:
    """Ten side-by-side AB JPEGs (pix2pix/facades layout, 128x64): A (left) is a sharp 64 px crop
    of one of the demo's ten photos, B (right) the same crop blurred and 4x down/up-sampled, so
    ``--direction BtoA`` learns blur -> sharp, like facades' labels -> photo."""
    demo_data = _demo_data()
    folder = tmp_path_factory.mktemp("photo_pairs") / "train"
    folder.mkdir()
    for i, (name, sharp, blurred) in enumerate(_photo_crops(demo_data, demo_data.PHOTOS, 1)):
        pair = Image.new("RGB", (2 * sharp.width, sharp.height))
        pair.paste(sharp, (0, 0))
        pair.paste(blurred, (sharp.width, 0))
        pair.save(folder / f"{i:02d}_{name}.jpg", quality=90)
    return folder


@pytest.fixture(scope="session")
def photo_domains(tmp_path_factory) -> Path:
    """Unpaired CycleGAN layout (trainA/trainB, 8 JPEGs each, 64 px): A holds blurred crops of four
    photos, B sharp crops of four others (one of them grayscale, like horse2zebra's zebras)."""
    demo_data = _demo_data()
    names = list(demo_data.PHOTOS)
    root = tmp_path_factory.mktemp("photo_domains")
    for domain, photos, blurred in (("trainA", names[:4], True), ("trainB", names[4:8], False)):
        (root / domain).mkdir()
        for i, (name, sharp, soft) in enumerate(_photo_crops(demo_data, photos, 2)):
            image = soft if blurred else sharp
            if domain == "trainB" and i == 7:
                image = image.convert("L")
            image.save(root / domain / f"{i:02d}_{name}.jpg", quality=90)
    return root


# ----------------------------------------------------------------------------- real shared data
# Real-data tests (tests/test_real_data.py, test_data_sources.py) on top: they skip without
# ../shared/data (or $WKD_HF_SHARED_DATA) on a developer machine and fail when CI is set.
@pytest.fixture(scope="session")
def facades_subset(tmp_path_factory) -> Path:
    """Ten real facades training images (side-by-side AB, 512x256) in a folder of their own."""
    source = _shared("facades", "train")
    folder = tmp_path_factory.mktemp("facades") / "train"
    folder.mkdir()
    for path in sorted(source.glob("*.jpg"))[:10]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="session")
def horse2zebra_subset(tmp_path_factory) -> Path:
    """Eight horses and eight zebras (CycleGAN's trainA/trainB layout)."""
    root = tmp_path_factory.mktemp("horse2zebra")
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir()
        for path in sorted(_shared("horse2zebra", domain).glob("*.jpg"))[:8]:
            shutil.copy(path, root / domain / path.name)
    return root


# ----------------------------------------------------------------------------- tiny teachers
TINY_RUN = ["--resolution", "32", "--train_batch_size", "2", "--max_train_steps", "2",
            "--validation_split", "2", "--num_validation_images", "2", "--validation_steps", "0",
            "--checkpointing_steps", "0", "--report_to", "none", "--seed", "0"]


def train_pix2pix_teacher(data: Path, out: Path) -> Path:
    """A tiny pix2pix teacher trained for two steps by the real script (B -> A)."""
    run_script("train_teacher", ["--train_data_dir", str(data), "--direction", "BtoA",
                                 "--ngf", "8", "--n_blocks", "2", "--ndf", "8",
                                 "--output_dir", str(out), *TINY_RUN])
    return out


def train_cycle_teacher(data: Path, out: Path) -> Path:
    """A tiny CycleGAN teacher (both directions) trained for two steps by the real script."""
    run_script("train_teacher", ["--mode", "cycle", "--train_data_dir", str(data),
                                 "--ngf", "8", "--n_blocks", "2", "--ndf", "8", "--pool_size", "3",
                                 "--output_dir", str(out), *TINY_RUN, "--train_batch_size", "1"])
    return out


@pytest.fixture(scope="session")
def pix2pix_teacher(tmp_path_factory, photo_pairs) -> Path:
    """A tiny pix2pix teacher (blur -> sharp) trained for two steps on ``photo_pairs``."""
    return train_pix2pix_teacher(photo_pairs, tmp_path_factory.mktemp("runs") / "teacher")


@pytest.fixture(scope="session")
def cycle_teacher(tmp_path_factory, photo_domains) -> Path:
    """A tiny CycleGAN teacher trained for two steps on ``photo_domains``."""
    return train_cycle_teacher(photo_domains, tmp_path_factory.mktemp("cycle") / "teacher")
