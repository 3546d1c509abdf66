"""The same battery of checks for every network, on tiny configs."""

import json

import pytest
import torch

from wkd_hf.hub_access import HubUnreachableError
from wkd_hf.models import (
    NotAModelFolderError,
    PatchDiscriminator,
    ResnetGenerator,
    SubMobileResnetGenerator,
    UnetGenerator,
    UnknownModelClassError,
    init_weights,
    load_pretrained_model,
)

# name -> (class, tiny config, input size)
CASES = {
    "resnet": (ResnetGenerator, {"ngf": 4, "n_blocks": 2}, 32),
    "resnet_mobile_batch": (
        ResnetGenerator,
        {"ngf": 4, "n_blocks": 2, "block_type": "mobile", "norm_type": "batch"},
        32,
    ),
    "resnet_zero_dropout_nonorm": (
        ResnetGenerator,
        {"ngf": 4, "n_blocks": 1, "use_dropout": True, "padding_type": "zero", "norm_type": "none"},
        32,
    ),
    "sub_mobile": (
        SubMobileResnetGenerator,
        {"channels": [4, 6, 8, 2, 4, 6, 3, 5], "n_blocks": 4, "norm_type": "instance_affine"},
        32,
    ),
    "unet": (UnetGenerator, {"ngf": 4, "num_downs": 5}, 32),
    "unet_instance_dropout": (
        UnetGenerator,
        {"ngf": 4, "num_downs": 6, "norm_type": "instance", "use_dropout": True, "out_channels": 1},
        64,
    ),
    "patch_d": (PatchDiscriminator, {"ndf": 4, "n_layers": 2}, 32),
}


def build(name, seed=0):
    cls, config, size = CASES[name]
    torch.manual_seed(seed)
    model = cls(**config).eval()
    x = torch.rand(
        2, model.config.in_channels, size, size, generator=torch.Generator().manual_seed(1)
    )
    return model, x * 2 - 1


def count(model):
    return sum(p.numel() for p in model.parameters())


def public_config(model):
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


@pytest.mark.parametrize("name", CASES)
def test_output_shape_and_range(name):
    model, x = build(name)
    with torch.no_grad():
        y = model(x)
    if isinstance(model, PatchDiscriminator):  # 32 -> 16 -> 8 (stride 2) -> 7 -> 6 (stride 1)
        assert y.shape == (2, 1, 6, 6)
    else:
        assert y.shape == (2, model.config.out_channels, *x.shape[2:])
        assert y.abs().max() <= 1


@pytest.mark.parametrize("name", CASES)
def test_save_load_round_trip(name, tmp_path):
    model, x = build(name)
    model.save_pretrained(tmp_path)
    assert {"config.json", "diffusion_pytorch_model.safetensors"} <= {
        p.name for p in tmp_path.iterdir()
    }
    for loaded in (type(model).from_pretrained(tmp_path), load_pretrained_model(str(tmp_path))):
        assert type(loaded) is type(model) and not loaded.training
        assert public_config(loaded) == public_config(model)
        with torch.no_grad():
            assert (loaded(x) - model(x)).abs().max().item() == 0


@pytest.mark.parametrize("name", CASES)
def test_config_round_trip(name, tmp_path):
    model, _ = build(name)
    model.save_config(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["_class_name"] == type(model).__name__
    scalars = (str, int, float, bool)
    assert all(isinstance(v, scalars) or all(type(i) is int for i in v)  # or a list of widths
               for k, v in saved.items() if k[0] != "_")
    assert public_config(type(model).from_config(model.config)) == public_config(model)


@pytest.mark.parametrize("name", CASES)
def test_determinism(name):
    (a, x), (b, _) = build(name, seed=3), build(name, seed=3)
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), key
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    c, _ = build(name, seed=4)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


@pytest.mark.parametrize("name", CASES)
def test_features_match_feature_channels(name):
    model, x = build(name)
    with torch.no_grad():
        image, features = model(x, return_features=True)
        assert torch.equal(image, model(x))
    channels = model.feature_channels()
    assert list(features) == list(channels)
    for key, tensor in features.items():
        assert tensor.shape[:2] == (2, channels[key]), key
    if hasattr(model, "default_feature_layers"):
        assert set(model.default_feature_layers()) <= set(channels)


def test_feature_names_and_resolutions():
    resnet, unet = ResnetGenerator(ngf=4, n_blocks=3), UnetGenerator(ngf=4, num_downs=5)
    _, f = resnet(torch.zeros(1, 3, 32, 32), return_features=True)
    assert list(f) == ["down", "block_0", "block_1", "block_2", "up_0", "up_1"]
    assert [t.shape[-1] for t in f.values()] == [8, 8, 8, 8, 16, 32]
    assert resnet.default_feature_layers() == ["block_1", "block_2"]
    assert ResnetGenerator(ngf=4).default_feature_layers() == ["block_4", "block_8"]
    _, f = unet(torch.zeros(2, 3, 32, 32), return_features=True)
    assert list(f) == [f"down_{i}" for i in range(5)] + [f"up_{j}" for j in range(4)]
    assert [t.shape[-1] for t in f.values()] == [16, 8, 4, 2, 1, 2, 4, 8, 16]
    assert f["down_4"].min() >= 0  # encoder features are taken after their (in-place) activation
    assert unet.default_feature_layers() == ["up_1", "up_3"]


def test_mobile_blocks_are_depthwise_separable():
    mobile = ResnetGenerator(ngf=8, n_blocks=2, block_type="mobile")
    depthwise = [m for m in mobile.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 4 and all(m.groups == m.in_channels == 32 for m in depthwise)
    assert count(mobile) < count(ResnetGenerator(ngf=8, n_blocks=2)) / 2


def test_parameter_counts():
    teacher, student = count(ResnetGenerator(ngf=64)), count(ResnetGenerator(ngf=24))
    assert teacher == 11_378_179
    assert student == 1_605_699  # 1.606M
    assert round(round(teacher / 1e6, 3) / round(student / 1e6, 3), 2) == 7.08  # the paper's 7.08x
    assert count(ResnetGenerator(ngf=16)) == 715_651
    assert count(ResnetGenerator(ngf=16, block_type="mobile")) == 137_347
    assert count(PatchDiscriminator(ndf=64)) == 2_768_705  # 2.77M
    assert count(PatchDiscriminator(ndf=32)) == 696_225  # ~0.69-0.70M, the paper's 4x smaller D


@pytest.mark.parametrize(
    "cls, kwargs, shown",
    [
        (ResnetGenerator, {"norm_type": "group"}, "'group'"),
        (ResnetGenerator, {"block_type": "dense"}, "'dense'"),
        (ResnetGenerator, {"padding_type": "circular"}, "'circular'"),
        (ResnetGenerator, {"ngf": 0}, "ngf must be an integer >= 1; got 0"),
        (ResnetGenerator, {"n_blocks": 2.5}, "got 2.5"),
        (ResnetGenerator, {"use_dropout": "yes"}, "'yes'"),
        (UnetGenerator, {"num_downs": 4}, "num_downs must be an integer >= 5; got 4"),
        (UnetGenerator, {"norm_type": "layer"}, "'layer'"),
        (PatchDiscriminator, {"n_layers": 0}, "got 0"),
        (PatchDiscriminator, {"in_channels": -1}, "got -1"),
    ],
)
def test_bad_config_values_raise(cls, kwargs, shown):
    with pytest.raises(ValueError, match=shown):
        cls(**kwargs)


def test_init_weights():
    model = PatchDiscriminator(ndf=8)
    with pytest.raises(ValueError, match="'uniform'"):
        init_weights(model, init_type="uniform")
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.bias.abs().max() == 0 and (bn.weight - 1).abs().max() < 0.2
    assert 0.01 < model.model[0].weight.std() < 0.03


def test_load_pretrained_model_errors(tmp_path):
    (tmp_path / "latest_net_G.pth").write_bytes(b"")
    with pytest.raises(NotAModelFolderError, match="latest_net_G.pth.*wkd-convert"):
        load_pretrained_model(str(tmp_path))
    with pytest.raises(NotAModelFolderError, match="no such folder"):
        load_pretrained_model(str(tmp_path), subfolder="generator")
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(UnknownModelClassError, match="'UNet2DModel'.*ResnetGenerator"):
        load_pretrained_model(str(tmp_path))


def test_load_pretrained_model_subfolder(tmp_path):
    model = PatchDiscriminator(ndf=4)
    model.save_pretrained(tmp_path / "discriminator")
    loaded = load_pretrained_model(str(tmp_path), subfolder="discriminator")
    assert isinstance(loaded, PatchDiscriminator)


def test_load_pretrained_model_offline_hub_id(hub_offline):
    with pytest.raises(HubUnreachableError, match="'nobody/no-model'.*HF_HUB_OFFLINE=1"):
        load_pretrained_model("nobody/no-model")
    with pytest.raises(OSError):  # catchable as OSError
        load_pretrained_model("nobody/no-model", local_files_only=True)
    with pytest.raises(NotAModelFolderError, match="neither an existing folder"):
        load_pretrained_model("./no/such/folder/here")


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][0] is not PatchDiscriminator])
def test_check_input_size(name):
    model, x = build(name)
    model.check_input_size(*x.shape[2:])  # the battery's input size fits
    multiple = 2**model.config.num_downs if isinstance(model, UnetGenerator) else 4
    with pytest.raises(ValueError, match=f"{type(model).__name__} needs .*multiples of {multiple}"):
        model.check_input_size(x.shape[2] + 2, x.shape[3])
    with pytest.raises(ValueError, match="got 0x"):
        model.check_input_size(0, x.shape[3])
    with pytest.raises(ValueError, match="multiples"):
        model.check_input_size("32", 32)
