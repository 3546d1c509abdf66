"""Networks (diffusers ``ModelMixin, ConfigMixin``) and ``load_pretrained_model``.

To add a family: write ``<family>.py`` with one class following ``ResnetGenerator``
(``forward(x, return_features=False)``, ``feature_channels()``, ``default_feature_layers()``) and
add it to ``MODEL_CLASSES`` below.

Errors raised by the loading helpers (catch them by class, or as ValueError / OSError):

- ``NotAModelFolderError`` (ValueError): the folder / repo has no ``config.json`` naming a class.
- ``UnknownModelClassError`` (ValueError): ``config.json``'s ``_class_name`` is not one of ours.
- ``HubUnreachableError`` (OSError): a Hub id was given but the Hub cannot be reached (offline
  mode, no network) and the file is not in the local cache.
"""

from __future__ import annotations

import json
import os

import huggingface_hub
from diffusers.models.modeling_utils import ModelMixin
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
)

from .discriminator import PatchDiscriminator
from .layers import init_weights
from .resnet_generator import ResnetGenerator
from .unet_generator import UnetGenerator

__all__ = [
    "MODEL_CLASSES",
    "HubUnreachableError",
    "NotAModelFolderError",
    "PatchDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "UnknownModelClassError",
    "hub_download",
    "init_weights",
    "load_pretrained_model",
]

MODEL_CLASSES: dict[str, type[ModelMixin]] = {
    cls.__name__: cls for cls in (ResnetGenerator, UnetGenerator, PatchDiscriminator)
}
CONFIG_NAME = "config.json"


class NotAModelFolderError(ValueError):
    """The folder or Hub repo is not a saved model (no ``config.json`` with a ``_class_name``)."""


class UnknownModelClassError(ValueError):
    """``config.json`` names a class that is not in ``MODEL_CLASSES``."""


class HubUnreachableError(OSError):
    """A Hub download failed because the Hub cannot be reached and nothing is cached."""


def hub_download(
    repo_id: str, filename: str, subfolder: str | None = None, local_files_only: bool | None = None
) -> str:
    """``huggingface_hub.hf_hub_download`` whose offline / network failures become one clear
    ``HubUnreachableError``. A file missing from a reachable repo raises huggingface_hub's
    ``EntryNotFoundError`` as usual."""
    kwargs = {"subfolder": subfolder} if subfolder else {}
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    try:
        return huggingface_hub.hf_hub_download(repo_id, filename, **kwargs)
    except (OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError, TimeoutError) as err:
        if huggingface_hub.constants.is_offline_mode():
            why = "HF_HUB_OFFLINE=1 is set"
        elif local_files_only:
            why = "local_files_only=True"
        else:
            why = "no network"
        raise HubUnreachableError(
            f"could not reach the Hub for {repo_id!r} ({why}) and {filename!r} is not in the local "
            f"cache; pass a local folder, or run `hf download {repo_id}` first"
        ) from err


def _listing(folder: str, limit: int = 15) -> str:
    if not os.path.isdir(folder):
        return "no such folder"
    names = sorted(os.listdir(folder))
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{names[:limit]}{more}" if names else "an empty folder"


def read_model_config(
    name_or_path: str | os.PathLike,
    subfolder: str | None = None,
    local_files_only: bool | None = None,
) -> dict:
    """The ``config.json`` of a saved model folder or Hub repo, as a dict."""
    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        folder = os.path.join(path, subfolder) if subfolder else path
        config_file = os.path.join(folder, CONFIG_NAME)
        if not os.path.isfile(config_file):
            found = _listing(folder)
            raise NotAModelFolderError(
                f"{folder!r} is not a model folder: expected {CONFIG_NAME} and "
                f"diffusion_pytorch_model.safetensors (as written by save_pretrained), found {found}."
                " For a pix2pix/CycleGAN checkpoint, convert it first with `wkd-convert`."
            )
    elif os.path.exists(path):
        raise NotAModelFolderError(
            f"{path!r} is a file, not a model folder; for a .pth checkpoint use `wkd-convert`"
        )
    else:
        try:
            config_file = hub_download(path, CONFIG_NAME, subfolder, local_files_only)
        except HFValidationError as err:
            raise NotAModelFolderError(
                f"{path!r} is neither an existing folder nor a valid Hub repo id ('user/model')"
            ) from err
        except EntryNotFoundError as err:
            where = f"{path}/{subfolder}" if subfolder else path
            raise NotAModelFolderError(f"Hub repo {where!r} has no {CONFIG_NAME}") from err
    with open(config_file, encoding="utf-8") as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as err:
            raise NotAModelFolderError(f"{config_file!r} is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise NotAModelFolderError(f"{config_file!r} holds {type(config).__name__}, not an object")
    return config


def load_pretrained_model(
    name_or_path: str | os.PathLike,
    subfolder: str | None = None,
    local_files_only: bool | None = None,
) -> ModelMixin:
    """Load any of our networks from a ``save_pretrained`` folder or a Hub repo id.

    Reads ``config.json``, picks the class named by its ``_class_name`` and calls that class's
    ``from_pretrained`` (the model comes back in eval mode; call ``.train()`` to train it).

    Args:
        name_or_path: a local folder or a Hub repo id (``"user/model"``).
        subfolder: folder inside it holding the model (e.g. ``"generator"``).
        local_files_only: for Hub ids, only use the local cache (None: huggingface_hub's default,
            which follows ``HF_HUB_OFFLINE``).

    Raises:
        NotAModelFolderError, UnknownModelClassError, HubUnreachableError (see the module doc).
    """
    config = read_model_config(name_or_path, subfolder, local_files_only)
    class_name = config.get("_class_name")
    if class_name is None:
        raise NotAModelFolderError(
            f"config.json of {os.fspath(name_or_path)!r} has no '_class_name'; expected one of "
            f"{sorted(MODEL_CLASSES)} (keys found: {sorted(config)[:10]})"
        )
    cls = MODEL_CLASSES.get(class_name)
    if cls is None:
        raise UnknownModelClassError(
            f"config.json of {os.fspath(name_or_path)!r} names class {class_name!r}, which wkd_hf "
            f"does not provide; known classes: {sorted(MODEL_CLASSES)}"
        )
    kwargs = {"subfolder": subfolder} if subfolder else {}
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    return cls.from_pretrained(name_or_path, **kwargs)
