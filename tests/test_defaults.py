"""Every documented distill.py mode runs with its defaults: no optional flag beyond SPEED (tiny
images, two steps, no tracker), on a local image folder (--train_data_dir) and on a Hub-style
parquet dataset (--dataset_name, offline), map-style and --streaming."""

import io
from pathlib import Path

import datasets
import pytest
import torch
from PIL import Image

from conftest import run_script

SPEED = ["--resolution", "32", "--max_train_steps", "2", "--report_to", "none"]
WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny nets on a shared CPU: one torch thread is several times faster (as OMP_NUM_THREADS=1
    in the subprocess tests)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _to_parquet(folder: Path, columns: dict[str, list[Image.Image]]) -> Path:
    """A Hub-style dataset folder: one train parquet file with image columns."""
    folder.mkdir(parents=True)
    rows = {name: [{"bytes": _png(image), "path": None} for image in images]
            for name, images in columns.items()}
    features = datasets.Features({name: datasets.Image() for name in columns})
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        str(folder / "train-00000-of-00001.parquet"))
    return folder


@pytest.fixture(scope="module")
def hub_pairs(tmp_path_factory, photo_pairs) -> Path:
    """photo_pairs as imageA / imageB columns (the layout of e.g. huggan/facades)."""
    images = [Image.open(path) for path in sorted(photo_pairs.glob("*.jpg"))]
    half = [image.width // 2 for image in images]
    return _to_parquet(tmp_path_factory.mktemp("hub") / "pairs", {
        "imageA": [im.crop((0, 0, w, im.height)) for im, w in zip(images, half)],
        "imageB": [im.crop((w, 0, 2 * w, im.height)) for im, w in zip(images, half)]})


@pytest.fixture(scope="module")
def hub_domains(tmp_path_factory, photo_domains) -> Path:
    """photo_domains as two unpaired image columns imageA / imageB."""
    return _to_parquet(tmp_path_factory.mktemp("hub") / "domains", {
        name: [Image.open(path) for path in sorted((photo_domains / f"train{name[-1]}").iterdir())]
        for name in ("imageA", "imageB")})


def _weights(out: Path, mode: str) -> list[Path]:
    folders = [out / "generator_a2b", out / "generator_b2a"] if mode == "cycle" else [out]
    return [folder / WEIGHTS for folder in folders]


@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
@pytest.mark.parametrize("source", ["folder", "hub"])
@pytest.mark.parametrize("mode", ["paired", "teacher_target", "cycle"])
def test_each_mode_runs_with_its_defaults(mode, source, streaming, tmp_path, request):
    paired = mode == "paired"
    teacher = request.getfixturevalue("pix2pix_teacher" if paired else "cycle_teacher")
    data = request.getfixturevalue({("folder", True): "photo_pairs", ("folder", False):
                                    "photo_domains", ("hub", True): "hub_pairs",
                                    ("hub", False): "hub_domains"}[source, paired])
    flag = "--train_data_dir" if source == "folder" else "--dataset_name"
    out = tmp_path / "student"
    argv = ["--teacher_model_name_or_path", str(teacher), flag, str(data), "--output_dir",
            str(out), *(["--mode", mode] if mode != "paired" else []), *SPEED,
            *(["--direction", "BtoA"] if paired and source == "folder" else []),  # the teacher's
            *(["--streaming"] if streaming else [])]
    run_script("distill", argv)
    for weights in _weights(out, mode):
        assert weights.is_file() and weights.stat().st_size > 0, weights
    assert (out / "args.json").is_file()  # written last: the run finished
