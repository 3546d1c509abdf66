"""Import pytorch-CycleGAN-and-pix2pix (and GAN Compression) checkpoints as ``wkd_hf`` models.

Our networks keep upstream's module layout, so importing is: read the state dict safely, infer the
architecture from its keys and shapes, load it with ``strict=True``, ``save_pretrained``.

Supported: state dicts (``.pth``/``.pt``/``.bin``/``.safetensors``, ``module.`` prefix or not) of
upstream's ``ResnetGenerator``, ``UnetGenerator`` and ``NLayerDiscriminator``, and of GAN
Compression's full-width ResNet, ``MobileResnetGenerator`` and compressed
``SubMobileResnetGenerator`` (per-stage widths, read from the conv shapes); also folders or Hub
repos holding such a state dict (e.g. huggan-style ``pytorch_model.bin`` + ``config.json``).
Git LFS pointers, text files and truncated files given as checkpoints are named as such.
Not supported, with an explanation: huggan's own PyTorch-GAN models (``GeneratorUNet``,
``GeneratorResNet``, ``Discriminator``), which differ in kind, not in names: no biases, instance
norm, encoder dropout and an Upsample head (U-Net); Upsample + 3x3 conv instead of transposed
convs (ResNet); a ZeroPad2d and four stride-2 layers (discriminator).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Mapping
from typing import Any

import torch
from diffusers.models.modeling_utils import ModelMixin
from huggingface_hub.errors import EntryNotFoundError

from .hub_access import hub_download
from .models import (
    MODEL_CLASSES,
    PatchDiscriminator,
    ResnetGenerator,
    SubMobileResnetGenerator,
    UnetGenerator,
    load_pretrained_model,
    read_model_config,
)
from .models.loading import weights_file_problem
from .output_folders import check_new_folder, write_new_folder

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("pytorch_model.bin", "model.safetensors")  # looked for in folders and Hub repos
WRAPPER_KEYS = ("state_dict", "model", "netG", "generator")  # {"state_dict": {...}, "epoch": 3}
CHECKPOINT_EXTENSIONS = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
EXPECTED_LAYOUTS = (
    "pix2pix ResnetGenerator: 'model.1.weight' (7x7 conv), 'model.10.conv_block.1.weight', ...",
    "pix2pix UnetGenerator: 'model.model.0.weight', 'model.model.1.model.1.weight', ...",
    "pix2pix NLayerDiscriminator: 'model.0.weight' (4x4 conv), 'model.2.weight', ...",
)


class UnsafeCheckpointError(ValueError):
    """The checkpoint is a pickle carrying code or arbitrary objects; it was not unpickled."""


class UnrecognizedCheckpointError(ValueError):
    """The state dict matches none of the supported layouts, or does not fit the inferred one."""


def load_checkpoint_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict: safetensors, or ``torch.load(weights_only=True)`` for anything else.
    Git LFS pointers, text and empty files are refused first, each with what to do about it."""
    path = os.fspath(path)
    problem = weights_file_problem(path)
    if problem:
        raise UnrecognizedCheckpointError(problem)
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except SafetensorError as err:
            raise UnrecognizedCheckpointError(
                f"{path!r} is not a readable safetensors file (truncated or corrupt: {err}); "
                "download or save it again"
            ) from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - weights_only: nothing ran; any failure is a bad file
        if not isinstance(err, pickle.UnpicklingError) or "GLOBAL" not in str(err):
            raise UnrecognizedCheckpointError(  # torch names a blocked GLOBAL when it refuses code
                f"{path!r} is not a readable PyTorch checkpoint (truncated, corrupt or another "
                f"format: {_blocked_global(err) or type(err).__name__}); download or save it again"
            ) from err
        raise UnsafeCheckpointError(
            f"refused to load {path!r}: it is a pickle holding more than tensors (a whole model "
            "object, or code that would run on load), and unpickling it could execute arbitrary "
            "code. This is a security refusal, not a bug. If you trust the file, re-save it as a "
            "plain state dict in a separate Python session, e.g. `torch.save(torch.load(path, "
            "weights_only=False).state_dict(), 'clean.pth')`, and convert that. "
            f"(torch: {_blocked_global(err)})"
        ) from err
    return _as_state_dict(obj, path)


def _blocked_global(err: Exception) -> str:
    """The line of torch's refusal naming what was blocked (else its most specific line)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    specific = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (specific or lines or [""])[0]


def _as_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Unwrap ``{"state_dict": ...}``-style containers and strip a DataParallel ``module.``."""
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        nested = [k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)]
        nested = nested or [k for k, v in obj.items() if isinstance(v, Mapping)]
        if len(nested) != 1:
            raise UnrecognizedCheckpointError(
                f"{source!r} holds a {type(obj).__name__} with keys {list(obj)[:10]}, not a state "
                "dict of tensors; save the network's `state_dict()` alone"
            )
        logger.info("Using the state dict stored under %r in %s", nested[0], source)
        return _as_state_dict(obj[nested[0]], source)
    if not isinstance(obj, Mapping):
        raise UnrecognizedCheckpointError(
            f"{source!r} holds a {type(obj).__name__}, not a state dict (name -> tensor)"
        )
    state_dict = dict(obj)
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    return state_dict


def _conv_indices(state_dict: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    """Sorted ``(\\d+)`` captures of ``pattern`` over keys holding a 4-d (conv) weight."""
    matches = [(re.fullmatch(pattern, key), value) for key, value in state_dict.items()]
    return sorted(int(m.group(1)) for m, value in matches if m and value.ndim == 4)


def _conv(sd: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    """``sd[key]``, which must be a 4-d conv weight: (out, in, k, k), or (in, out, k, k) for a
    transposed conv."""
    value = sd.get(key)
    if not isinstance(value, torch.Tensor) or value.ndim != 4:
        found = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else "missing"
        raise UnrecognizedCheckpointError(
            f"{key!r} should be a 4-d conv weight but is {found}: the key names follow the "
            "pix2pix layout, the tensors do not (another network, or an edited state dict)"
        )
    return value


def _norm_type(state_dict: Mapping[str, torch.Tensor], norm_key: str, conv_key: str) -> str:
    """Batch norm has affine weights and running stats; affine instance norm only the weights;
    upstream's instance norm has neither but its convs have a bias; else no norm."""
    if f"{norm_key}.weight" in state_dict:
        return "batch" if f"{norm_key}.running_mean" in state_dict else "instance_affine"
    return "instance" if f"{conv_key}.bias" in state_dict else "none"


def _stage_widths(sd: Mapping[str, torch.Tensor], n: int, sep: int) -> list[int]:
    """GAN Compression's 8 stage widths ``c`` (see ``SubMobileResnetGenerator``) from the conv
    shapes of a mobile ResNet with ``n`` blocks whose separable convs sit at ``conv_block.<sep>``;
    a stage without blocks (n < 7) repeats the previous width. ``[ngf] * 8`` is the full width."""
    c = [_conv(sd, "model.1.weight").shape[0], _conv(sd, "model.4.weight").shape[0] // 2]
    c.append(_conv(sd, "model.7.weight").shape[0] // 4)
    for first in (0, 3, 6):  # blocks 0-2, 3-5, 6-8 share a width
        key = f"model.{10 + first}.conv_block.{sep}.conv.2.weight"
        c.append(_conv(sd, key).shape[0] // 4 if first < n else c[-1])
    c.append(_conv(sd, f"model.{10 + n}.weight").shape[1] // 2)  # ConvTranspose: (in, out, k, k)
    c.append(_conv(sd, f"model.{13 + n}.weight").shape[1])
    return c


def _infer_resnet(sd: Mapping[str, torch.Tensor]) -> tuple[type, dict]:
    blocks = sorted({int(k.split(".")[1]) for k in sd if re.match(r"model\.\d+\.conv_block\.", k)})
    n = len(blocks)
    if blocks != list(range(10, 10 + n)) or f"model.{17 + n}.weight" not in sd:
        raise UnrecognizedCheckpointError(
            f"ResNet-like state dict, but residual blocks sit at model.{blocks} (expected "
            f"consecutive from model.10) or the output conv model.{17 + n} is missing"
        )
    config = {
        "in_channels": _conv(sd, "model.1.weight").shape[1],
        "out_channels": _conv(sd, f"model.{17 + n}.weight").shape[0],
        "ngf": _conv(sd, "model.1.weight").shape[0],
        "n_blocks": n,
        "norm_type": _norm_type(sd, "model.2", "model.1"),
        "block_type": "resnet",
        "padding_type": "reflect",
        "use_dropout": False,
    }
    if n == 0:  # nothing to read the block layout from
        return ResnetGenerator, config
    mobile = any(k.startswith("model.10.conv_block.") and ".conv.0." in k for k in sd)
    suffix = r"\.conv\.0\.weight" if mobile else r"\.weight"
    convs = tuple(_conv_indices(sd, r"model\.10\.conv_block\.(\d+)" + suffix))
    # (first conv, second conv) -> (padding, dropout); reflect/replicate look the same: reflect.
    layouts = {(1, 5): ("reflect", False), (1, 6): ("reflect", True), (0, 3): ("zero", False)}
    layouts[(0, 4)] = ("zero", True)
    if mobile:  # GAN Compression's mobile block always has a Dropout slot
        layouts = {(1, 6): ("reflect", False), (0, 4): ("zero", False)}
    if convs not in layouts:
        raise UnrecognizedCheckpointError(f"unexpected residual block layout: convs at {convs}")
    padding_type, use_dropout = layouts[convs]
    if use_dropout:  # GAN Compression's ResNet also has the slot, at a rate it does not record
        logger.info("Residual blocks have a Dropout slot: use_dropout=True (pix2pix: rate 0.5)")
    config.update(block_type="mobile" if mobile else "resnet", padding_type=padding_type)
    channels = _stage_widths(sd, n, convs[0]) if mobile else None
    if channels and len(set(channels)) > 1:  # a compressed (per-stage width) mobile ResNet
        logger.info("Per-stage widths %s: GAN Compression's SubMobileResnetGenerator (config_str "
                    "%s)", channels, "_".join(map(str, channels)))
        del config["ngf"], config["block_type"]
        return SubMobileResnetGenerator, {**config, "channels": channels}
    return ResnetGenerator, {**config, "use_dropout": use_dropout}


def _infer_unet(sd: Mapping[str, torch.Tensor]) -> tuple[type, dict]:
    prefixes = ["model.model.", "model.model.1.model."]  # level 0, level 1, then +"3.model."
    while f"{prefixes[-1]}1.weight" in sd:
        prefixes.append(prefixes[-1] + "3.model.")
    num_downs = len(prefixes) - 1
    if num_downs < 5 or "model.model.3.weight" not in sd:
        raise UnrecognizedCheckpointError(
            f"U-Net-like state dict with {num_downs} levels (at least 5 expected) or without the "
            "output conv 'model.model.3.weight'"
        )
    for prefix in prefixes[:-1]:  # the last prefix is the one that was not found
        _conv(sd, prefix + ("0.weight" if prefix == prefixes[0] else "1.weight"))
    norm_type = _norm_type(sd, prefixes[1] + "2", prefixes[1] + "1")
    # Upstream appends Dropout after the up path of a level: it shifts no index, so the weights
    # cannot tell. Follow upstream's defaults: pix2pix (batch norm) trains with dropout, CycleGAN
    # (instance norm) with --no_dropout.
    use_dropout = norm_type == "batch"
    logger.info("U-Net dropout leaves no trace in the weights: use_dropout=%s, upstream's default "
                "for a %s-norm U-Net (pix2pix: batch + dropout; CycleGAN: instance, no dropout); "
                "override with --use_dropout", use_dropout, norm_type)
    return UnetGenerator, {
        "in_channels": _conv(sd, "model.model.0.weight").shape[1],
        "out_channels": _conv(sd, "model.model.3.weight").shape[1],  # ConvTranspose: (in, out, ..)
        "ngf": _conv(sd, "model.model.0.weight").shape[0],
        "num_downs": num_downs,
        "norm_type": norm_type,
        "use_dropout": use_dropout,
    }


def _not_a_patchgan(sd: Mapping[str, torch.Tensor], convs: list[int]) -> str | None:
    """Why the ``model.<i>`` convs cannot be an NLayerDiscriminator's (all 4x4, each taking the
    previous one's output channels), or None."""
    for i in convs:
        if tuple(sd[f"model.{i}.weight"].shape[2:]) != (4, 4):
            shape = tuple(sd[f"model.{i}.weight"].shape)
            return f"model.{i}.weight has shape {shape}, but a PatchGAN's convs are all 4x4"
    for a, b in zip(convs, convs[1:]):
        out_a, in_b = sd[f"model.{a}.weight"].shape[0], sd[f"model.{b}.weight"].shape[1]
        if in_b != out_a:
            return (f"model.{b} takes {in_b} channels but model.{a} gives {out_a} (a transposed "
                    "conv, whose weight is (in, out, k, k)?)")
    return None


def _infer_discriminator(sd: Mapping[str, torch.Tensor]) -> tuple[type, dict]:
    convs = _conv_indices(sd, r"model\.(\d+)\.weight")
    n_layers = len(convs) - 2
    if convs == [0, 2, 5, 8, 12]:
        raise UnrecognizedCheckpointError(
            "this is the huggan / PyTorch-GAN Discriminator (four stride-2 layers, ZeroPad2d, "
            "bias-free last conv), not pix2pix's NLayerDiscriminator: its layout cannot be mapped"
        )
    why = _not_a_patchgan(sd, convs)
    if why:
        raise UnrecognizedCheckpointError(
            f"a flat 'model.<i>' state dict that is not a PatchGAN discriminator: {why}. It "
            "looks like a generator of a layout wkd_hf does not know. Expected one of: "
            + " | ".join(EXPECTED_LAYOUTS)  # one line: the CLIs print the first line only
        )
    if n_layers < 1 or convs != [0] + [2 + 3 * k for k in range(n_layers + 1)]:
        raise UnrecognizedCheckpointError(
            f"PatchGAN-like state dict (4x4 convs) but with convs at model.{convs}; "
            "NLayerDiscriminator's sit at model.0, 2, 5, 8, ..."
        )
    return PatchDiscriminator, {
        "in_channels": sd["model.0.weight"].shape[1],
        "ndf": sd["model.0.weight"].shape[0],
        "n_layers": n_layers,
        "norm_type": _norm_type(sd, "model.3", "model.2"),
    }


def _block_resnet_error(sd: Mapping[str, torch.Tensor]) -> UnrecognizedCheckpointError:
    """A ResNet whose residual blocks are ``model.<i>.block.``: PyTorch-GAN's GeneratorResNet
    (huggan) when it upsamples with Upsample + 3x3 conv, else an unknown variant."""
    blocks = sorted({int(k.split(".")[1]) for k in sd if re.match(r"model\.\d+\.block\.", k)})
    after = blocks[-1] + 1  # pix2pix: a ConvTranspose here; PyTorch-GAN: Upsample, then a conv
    if f"model.{after}.weight" not in sd and f"model.{after + 1}.weight" in sd:
        return UnrecognizedCheckpointError(
            "this is huggan / PyTorch-GAN's GeneratorResNet (residual blocks 'model.<i>.block.', "
            "Upsample + 3x3 conv instead of transposed convs); its architecture differs from "
            "pix2pix's (see wkd_hf.conversion's docstring) and its weights cannot be mapped"
        )
    return UnrecognizedCheckpointError(
        f"a ResNet whose residual blocks are keyed 'model.<i>.block.' (at model.{blocks}), where "
        "pix2pix uses 'model.<i>.conv_block.', and that upsamples at "
        f"model.{after}: not a layout wkd_hf knows. If it is pix2pix's ResnetGenerator under "
        "another name, rename '.block.' to '.conv_block.' in the state dict and convert again"
    )


def infer_architecture(state_dict: Mapping[str, torch.Tensor]) -> tuple[type[ModelMixin], dict]:
    """The wkd_hf class and config kwargs whose module layout matches ``state_dict``.

    Reads the family from the key structure, channels from conv shapes, norm from which parameters
    exist, dropout from index shifts (ResNet) or upstream's defaults (U-Net: it leaves no trace).
    Raises ``UnrecognizedCheckpointError`` otherwise.
    """
    sd = _as_state_dict(state_dict, "state dict")
    stem = sd.get("model.1.weight")
    if "down1.model.0.weight" in sd:
        raise UnrecognizedCheckpointError(
            "this is huggan / PyTorch-GAN's GeneratorUNet ('down1.model...'); its architecture "
            "differs from pix2pix's (see wkd_hf.conversion's docstring) and its weights cannot be "
            "mapped onto UnetGenerator"
        )
    if any(re.match(r"model\.\d+\.block\.", k) for k in sd):
        raise _block_resnet_error(sd)
    if isinstance(stem, torch.Tensor) and stem.ndim == 4 and stem.shape[-1] == 7:
        cls, config = _infer_resnet(sd)
    elif "model.model.0.weight" in sd:
        cls, config = _infer_unet(sd)
    elif "model.0.weight" in sd and sd["model.0.weight"].ndim == 4:
        cls, config = _infer_discriminator(sd)
    else:
        raise UnrecognizedCheckpointError(
            "the state dict matches no supported layout. Expected one of: "
            + " | ".join(EXPECTED_LAYOUTS)  # one line: the CLIs print the first line only
            + f". Found {len(sd)} keys, first: {list(sd)[:8]}"
        )
    return cls, config


def _fit_norm_buffers(sd: dict[str, torch.Tensor], model: torch.nn.Module) -> dict:
    """Drop legacy instance-norm running stats (as upstream's loader does); add missing
    ``num_batches_tracked`` (checkpoints from PyTorch < 0.4.1)."""
    expected = model.state_dict()
    sd = {k: v for k, v in sd.items() if k in expected or k.rsplit(".", 1)[-1] not in NORM_BUFFERS}
    for key, value in expected.items():
        if key.endswith(".num_batches_tracked") and key not in sd:
            sd[key] = value
    return sd


def _config_or_empty(path: str) -> dict:
    """config.json of a folder or Hub repo ({} when it has none); Hub errors propagate."""
    try:
        return read_model_config(path)
    except ValueError:  # NotAModelFolderError: no / unreadable config.json
        return {}


def _read_source(checkpoint: str | os.PathLike) -> dict[str, torch.Tensor] | ModelMixin:
    """A file, a folder, or a Hub repo id -> its state dict (or, for our own folders, the model)."""
    path = os.fspath(checkpoint)
    if os.path.isfile(path):
        return load_checkpoint_file(path)
    if not os.path.isdir(path) and not re.fullmatch(r"[\w.-]+/[\w.-]+", path):
        raise FileNotFoundError(f"{path!r} is neither a file, a folder nor a Hub repo id")
    config = _config_or_empty(path)
    if config.get("_class_name") in MODEL_CLASSES:
        return load_pretrained_model(path)  # already a wkd_hf model
    if config:
        logger.info("Found config.json (the weights decide the architecture): %s", config)
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        files = [n for n in WEIGHT_FILES if n in names]
        files = files or [n for n in names if n.endswith(CHECKPOINT_EXTENSIONS)]
        if len(files) != 1:
            raise UnrecognizedCheckpointError(
                f"{path!r} should hold one checkpoint ({', '.join(WEIGHT_FILES)} or one "
                f"{'/'.join(CHECKPOINT_EXTENSIONS)} file); found {names[:15]}; pass the file itself"
            )
        return load_checkpoint_file(os.path.join(path, files[0]))
    for filename in WEIGHT_FILES:
        try:
            return load_checkpoint_file(hub_download(path, filename))
        except EntryNotFoundError:
            continue
    raise UnrecognizedCheckpointError(f"Hub repo {path!r} has none of {WEIGHT_FILES}")


def _build_and_load(sd: dict[str, torch.Tensor], overrides: Mapping[str, Any] | None) -> ModelMixin:
    """The inferred model with ``sd`` loaded strictly."""
    cls, config = infer_architecture(sd)
    config.update(overrides or {})
    model = cls(**config)
    try:
        model.load_state_dict(_fit_norm_buffers(sd, model), strict=True)
    except RuntimeError as err:
        raise UnrecognizedCheckpointError(
            f"inferred {cls.__name__}({config}), but the weights do not fit it "
            f"(a pruned or custom variant?): {' '.join(str(err).split())[:600]}"  # one line
        ) from err
    return model


def convert_pix2pix_checkpoint(
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor],
    output_dir: str | os.PathLike | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> ModelMixin:
    """Load a pix2pix / CycleGAN / GAN Compression checkpoint as a wkd_hf model (in eval mode).

    Args:
        checkpoint: a state dict, a checkpoint file, a folder holding one, or a Hub repo id.
        output_dir: if given, ``save_pretrained`` the model there (config.json + safetensors).
        overrides: config values to force over the inferred ones, for what weights do not record
            (e.g. ``{"use_dropout": False}`` for a batch-norm U-Net trained without dropout).

    Raises:
        UnsafeCheckpointError, UnrecognizedCheckpointError, and the loading errors of
        ``wkd_hf.models`` (e.g. ``HubUnreachableError``).
    """
    if output_dir is not None:
        check_new_folder(output_dir)
    if isinstance(checkpoint, Mapping):
        source = _as_state_dict(checkpoint, "state dict")
    else:
        source = _read_source(checkpoint)
    if isinstance(source, ModelMixin):
        model = source
    else:
        where = "" if isinstance(checkpoint, Mapping) else f"{os.fspath(checkpoint)!r}: "
        try:
            model = _build_and_load(source, overrides)
        except UnrecognizedCheckpointError as err:
            raise UnrecognizedCheckpointError(f"{where}{err}") from err
    model.eval()
    if output_dir is not None:
        write_new_folder(output_dir, model.save_pretrained)
    return model


def describe(model: ModelMixin) -> str:
    """``ClassName(key=value, ...): N parameters`` for logs."""
    args = ", ".join(f"{k}={v!r}" for k, v in model.config.items() if not k.startswith("_"))
    params = sum(p.numel() for p in model.parameters())
    return f"{type(model).__name__}({args}): {params:,} parameters"
