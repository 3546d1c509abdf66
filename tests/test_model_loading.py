"""Loading networks from files, folders and Hub ids: unreadable files, folders whose config.json
does not match the weights or the class, non-generators given as generators, and a Hub that cannot
be reached (no network is ever used: offline mode, or an endpoint on a closed local port)."""

import json
import shutil

import pytest
import torch

from wkd_hf.conversion import UnrecognizedCheckpointError, convert_pix2pix_checkpoint
from wkd_hf.hub_access import HubUnreachableError
from wkd_hf.models import (
    CorruptWeightsError,
    PatchDiscriminator,
    ResnetGenerator,
    SubMobileResnetGenerator,
    UnetGenerator,
    WeightsMismatchError,
    WrongModelClassError,
    load_pretrained_model,
)
from wkd_hf.models.building import build_discriminator, load_generator
from wkd_hf.recipes import check_teacher_fits_data

LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:0ab6b7a4312a94187078a631608d89f2d5ab8036e4469b4a56508cf27faf3e78\n"
               b"size 2078637\n")
WEIGHTS = "diffusion_pytorch_model.safetensors"


def saved(tmp_path, model, name="model"):
    model.save_pretrained(tmp_path / name)
    return tmp_path / name


# ----------------------------------------------------------------------------- unreadable files
@pytest.mark.parametrize("name", ["latest_net_G.pth", "net_G.safetensors"])
def test_git_lfs_pointer_says_what_it_is(name, tmp_path):
    (tmp_path / name).write_bytes(LFS_POINTER)
    for load in (convert_pix2pix_checkpoint, load_generator):
        with pytest.raises(ValueError, match=f"(?s){name}.*Git LFS pointer.*git lfs pull"):
            load(str(tmp_path / name))


def test_text_file_named_pth(tmp_path):
    (tmp_path / "latest_net_G.pth").write_text("<!DOCTYPE html><html>404: Not Found</html>\n")
    with pytest.raises(UnrecognizedCheckpointError,
                       match="latest_net_G.pth.*text file.*DOCTYPE html.*Download"):
        convert_pix2pix_checkpoint(tmp_path / "latest_net_G.pth")


def test_corrupt_safetensors_for_converter_teacher_and_discriminator(tmp_path):
    good = saved(tmp_path, PatchDiscriminator(ndf=4, n_layers=1)) / WEIGHTS
    broken = tmp_path / "net_D.safetensors"
    broken.write_bytes(good.read_bytes()[:200])
    pattern = "net_D.safetensors.*not a readable safetensors file.*again"
    with pytest.raises(UnrecognizedCheckpointError, match=pattern):
        convert_pix2pix_checkpoint(broken)
    with pytest.raises(ValueError, match=pattern):
        load_generator(str(broken))
    with pytest.raises(ValueError, match=pattern):
        build_discriminator(6, 4, 1, init_from=str(broken))


@pytest.mark.parametrize("content, shown", [(b"", "empty"), (LFS_POINTER, "Git LFS pointer"),
                                            (b"\x00\x01garbage" * 20, "truncated or corrupt")])
def test_unreadable_weights_in_a_model_folder(content, shown, tmp_path):
    folder = saved(tmp_path, ResnetGenerator(ngf=4, n_blocks=1))
    (folder / WEIGHTS).write_bytes(content)
    for load in (load_pretrained_model, ResnetGenerator.from_pretrained, load_generator):
        with pytest.raises(CorruptWeightsError, match=f"{WEIGHTS}.*{shown}"):
            load(str(folder))


# ----------------------------------------------------------------------------- config vs weights
@pytest.mark.parametrize("change, shown", [
    ({"n_blocks": 3}, "missing tensors: model.12.conv_block"),
    ({"n_blocks": 1}, "unexpected tensors: model.11.conv_block"),
    ({"ngf": 8}, "model.1.bias expected shape"),
    ({"norm_type": "batch"}, "missing tensors: model.10.conv_block.2.bias"),
])  # fmt: skip
def test_config_that_does_not_match_the_weights_fails(change, shown, tmp_path):
    folder = saved(tmp_path, ResnetGenerator(ngf=4, n_blocks=2))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    for load in (load_pretrained_model, ResnetGenerator.from_pretrained):
        with pytest.raises(WeightsMismatchError, match=f"model'.*do not match.*{shown}"):
            load(str(folder))


def test_from_pretrained_of_another_class_fails(tmp_path):
    unet = saved(tmp_path, UnetGenerator(ngf=4, num_downs=5), "unet")
    with pytest.raises(WrongModelClassError, match="holds a UnetGenerator.*not a ResnetGenerator"):
        ResnetGenerator.from_pretrained(unet)
    with pytest.raises(WrongModelClassError, match="not a SubMobileResnetGenerator"):
        SubMobileResnetGenerator.from_pretrained(unet)
    model, info = UnetGenerator.from_pretrained(unet, output_loading_info=True)
    assert isinstance(model, UnetGenerator) and not info["missing_keys"]


def test_discriminator_given_as_a_generator(tmp_path):
    folder = saved(tmp_path, PatchDiscriminator(ndf=4, n_layers=1), "discriminator")
    with pytest.raises(ValueError, match="is a PatchDiscriminator, not a generator"):
        load_generator(str(folder))
    with pytest.raises(ValueError, match="PatchDiscriminator, not a generator"):
        check_teacher_fits_data(PatchDiscriminator(ndf=4))
    assert build_discriminator(6, 4, 1, init_from=str(folder)).config.ndf == 4


# ----------------------------------------------------------------------------- the Hub
def _loaders():
    return (load_pretrained_model, ResnetGenerator.from_pretrained, convert_pix2pix_checkpoint,
            load_generator)


def test_hub_id_in_offline_mode_fails_fast(hub_offline, requested_sleeps):
    for load in _loaders():
        with pytest.raises(HubUnreachableError,
                           match="'nobody/no-model'.*HF_HUB_OFFLINE=1.*Unset HF_HUB_OFFLINE"):
            load("nobody/no-model")  # offline: unset it, not `hf download` (offline too)
        assert sum(requested_sleeps) < 1  # no retry back-off


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    """Not offline, but the endpoint is a closed local port; empty cache."""
    import huggingface_hub.constants as hub_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    return tmp_path / "hub_cache"


def test_hub_id_with_unreachable_endpoint_fails_fast(unreachable_hub, requested_sleeps):
    for load in _loaders():
        with pytest.raises(HubUnreachableError,
                           match="'nobody/no-model'.*127.0.0.1:9 does not.*Check the network"):
            load("nobody/no-model")
        assert sum(requested_sleeps) < 1  # no retry back-off


def test_hub_id_with_unreachable_endpoint_uses_the_cache(unreachable_hub, tmp_path,
                                                         requested_sleeps):
    model = ResnetGenerator(ngf=4, n_blocks=1)
    repo = unreachable_hub / "models--someone--tiny"
    model.save_pretrained(repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    loaded = load_pretrained_model("someone/tiny")
    assert sum(requested_sleeps) < 1  # no retry back-off
    assert torch.equal(loaded.model[1].weight, model.model[1].weight)
    shutil.rmtree(repo / "snapshots")
    with pytest.raises(HubUnreachableError):
        load_pretrained_model("someone/tiny")


# ----------------------------------------------------------------------------- from_pretrained args
def test_load_pretrained_model_passes_torch_dtype(tmp_path):
    folder = saved(tmp_path, ResnetGenerator(ngf=4, n_blocks=1))
    model = load_pretrained_model(str(folder), torch_dtype=torch.float64)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert {p.dtype for p in load_pretrained_model(str(folder)).parameters()} == {torch.float32}


def test_load_pretrained_model_passes_revision_and_cache_dir(unreachable_hub, tmp_path):
    """config.json and the weights both come from the asked revision in the asked cache."""
    cache = tmp_path / "own_cache"
    repo = cache / "models--someone--tiny"
    (repo / "refs").mkdir(parents=True)
    for ref, commit, ngf in (("main", "a" * 40, 4), ("v1", "b" * 40, 8)):
        ResnetGenerator(ngf=ngf, n_blocks=1).save_pretrained(repo / "snapshots" / commit)
        (repo / "refs" / ref).write_text(commit)
    assert load_pretrained_model("someone/tiny", cache_dir=str(cache)).config.ngf == 4
    model = load_pretrained_model("someone/tiny", cache_dir=str(cache), revision="v1")
    assert model.config.ngf == 8 and model.model[1].weight.shape[0] == 8
    with pytest.raises(HubUnreachableError):  # not in the default cache
        load_pretrained_model("someone/tiny", revision="v1")
