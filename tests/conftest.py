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


# ----------------------------------------------------------------------------- script runs
import importlib.util  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def load_script(name: str):
    """Import ``training_scripts/<name>.py`` as a module (its ``parse_args`` and ``main``)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "training_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, argv: list[str]):
    """Run a training script in-process, as ``accelerate launch`` would with one process."""
    module = load_script(name)
    args = module.parse_args(argv)
    module.main(args, argv)
    return args


def _shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"shared data {path} is not available")
    return path


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


TINY_RUN = ["--resolution", "32", "--train_batch_size", "2", "--max_train_steps", "2",
            "--validation_split", "2", "--num_validation_images", "2", "--validation_steps", "0",
            "--checkpointing_steps", "0", "--report_to", "none", "--seed", "0"]


@pytest.fixture(scope="session")
def pix2pix_teacher(tmp_path_factory, facades_subset) -> Path:
    """A tiny pix2pix teacher trained for two steps by the real script (labels -> photo)."""
    out = tmp_path_factory.mktemp("runs") / "teacher"
    run_script("train_teacher", ["--train_data_dir", str(facades_subset), "--direction", "BtoA",
                                 "--ngf", "8", "--n_blocks", "2", "--ndf", "8",
                                 "--output_dir", str(out), *TINY_RUN])
    return out
