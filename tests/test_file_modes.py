"""Files and folders written beside, then renamed, get the modes a plain open / mkdir gives under
the umask (mkstemp's 0o600 / mkdtemp's 0o700 would hide weights, cards and results from others)."""

import os
import stat

import pytest

from wkd_hf.output_folders import write_new_folder
from wkd_hf.safe_files import write_text_beside


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_text_beside_gives_the_umask_mode(tmp_path, umask_022):
    path = write_text_beside(tmp_path / "results.json", "{}")
    assert _mode(path) == 0o644
    with open(tmp_path / "plain.json", "w") as handle:  # what open() gives, independently
        handle.write("{}")
    assert _mode(path) == _mode(tmp_path / "plain.json")


def test_write_new_folder_gives_the_umask_mode(tmp_path, umask_022):
    folder = write_new_folder(tmp_path / "model", lambda tmp: (tmp / "config.json").write_text("{}"))
    (tmp_path / "plain").mkdir()
    assert _mode(folder) == _mode(tmp_path / "plain") == 0o755
    assert _mode(folder / "config.json") == 0o644


def test_a_saved_pipeline_folder_gives_the_umask_mode(tmp_path, umask_022):
    from wkd_hf.models import ResnetGenerator
    from wkd_hf.pipeline import ImageTranslationPipeline

    pipe = ImageTranslationPipeline(ResnetGenerator(ngf=4, n_blocks=1), resolution=32)
    pipe.save_pretrained(tmp_path / "pipe")
    (tmp_path / "plain").mkdir()
    assert _mode(tmp_path / "pipe") == _mode(tmp_path / "plain") == 0o755


def test_a_written_space_folder_gives_the_umask_mode(tmp_path):
    from wkd_hf.models import ResnetGenerator
    from wkd_hf.space import writer

    ResnetGenerator(ngf=4, n_blocks=1).save_pretrained(tmp_path / "student")
    previous = os.umask(0o027)  # not 0o022: a fixed chmod 0o755 would pass that
    try:
        out = writer.write_space(tmp_path / "space", str(tmp_path / "student"))
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(previous)
    assert _mode(out) == _mode(tmp_path / "plain") == 0o750


def test_saved_weights_give_the_umask_mode(tmp_path):
    """safetensors writes its file 0o600; a saved model (alone, or in a pipeline) gets 0o640
    under umask 027, as open() would give, for others to load."""
    from wkd_hf.models import PatchDiscriminator, ResnetGenerator
    from wkd_hf.pipeline import ImageTranslationPipeline

    previous = os.umask(0o027)
    try:
        ResnetGenerator(ngf=4, n_blocks=1).save_pretrained(tmp_path / "generator")
        PatchDiscriminator(ndf=4, n_layers=1).save_pretrained(tmp_path / "discriminator")
        pipe = ImageTranslationPipeline(ResnetGenerator(ngf=4, n_blocks=1), resolution=32)
        pipe.save_pretrained(tmp_path / "pipe")
        with open(tmp_path / "plain", "w") as handle:
            handle.write("{}")
    finally:
        os.umask(previous)
    weights = sorted(tmp_path.rglob("diffusion_pytorch_model.safetensors"))
    assert len(weights) == 3
    for path in weights:
        assert _mode(path) == _mode(tmp_path / "plain") == 0o640, path
