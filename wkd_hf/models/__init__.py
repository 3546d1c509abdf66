"""Networks (diffusers ``ModelMixin, ConfigMixin``) and ``load_pretrained_model``.

To add a family: write ``<family>.py`` with one class following ``ResnetGenerator``
(``CheckedLoadingMixin`` first in its bases, ``forward(x, return_features=False)``,
``feature_channels()``, ``default_feature_layers()``, ``check_input_size(height, width)``) and add
it to ``MODEL_CLASSES`` (and ``GENERATOR_CLASSES``) below.

Errors raised by the loading helpers (catch them by class, or as ValueError / OSError): see
``wkd_hf.models.loading`` (``NotAModelFolderError``, ``UnknownModelClassError``,
``WrongModelClassError``, ``WeightsMismatchError``, ``CorruptWeightsError``: ValueError;
``wkd_hf.hub_access.HubUnreachableError``: OSError).
"""

from __future__ import annotations

import os

from diffusers.models.modeling_utils import ModelMixin

from .discriminator import PatchDiscriminator
from .layers import init_weights
from .loading import (
    CONFIG_NAME,
    HUB_KWARGS,
    CorruptWeightsError,
    NotAModelFolderError,
    UnknownModelClassError,
    WeightsMismatchError,
    WrongModelClassError,
    read_model_config,
)
from .resnet_generator import ResnetGenerator
from .sub_mobile_resnet_generator import SubMobileResnetGenerator
from .unet_generator import UnetGenerator

__all__ = [
    "CONFIG_NAME",
    "GENERATOR_CLASSES",
    "MODEL_CLASSES",
    "CorruptWeightsError",
    "NotAModelFolderError",
    "PatchDiscriminator",
    "ResnetGenerator",
    "SubMobileResnetGenerator",
    "UnetGenerator",
    "UnknownModelClassError",
    "WeightsMismatchError",
    "WrongModelClassError",
    "init_weights",
    "load_pretrained_model",
    "read_model_config",
]

GENERATOR_CLASSES: tuple[type[ModelMixin], ...] = (
    ResnetGenerator,
    SubMobileResnetGenerator,
    UnetGenerator,
)
MODEL_CLASSES: dict[str, type[ModelMixin]] = {
    cls.__name__: cls for cls in (*GENERATOR_CLASSES, PatchDiscriminator)
}


def load_pretrained_model(
    name_or_path: str | os.PathLike,
    subfolder: str | None = None,
    local_files_only: bool | None = None,
    **kwargs,
) -> ModelMixin:
    """Load any of our networks from a ``save_pretrained`` folder or a Hub repo id.

    Reads ``config.json``, picks the class named by its ``_class_name`` and calls that class's
    ``from_pretrained`` (the model comes back in eval mode; call ``.train()`` to train it).

    Args:
        name_or_path: a local folder or a Hub repo id (``"user/model"``).
        subfolder: folder inside it holding the model (e.g. ``"generator"``).
        local_files_only: for Hub ids, only use the local cache (None: download, unless
            ``HF_HUB_OFFLINE`` is set or the Hub does not answer a quick probe: then the cache).
        **kwargs: passed on to diffusers' ``from_pretrained``, e.g. ``torch_dtype``,
            ``revision``, ``cache_dir``, ``token``.

    Raises:
        NotAModelFolderError, UnknownModelClassError, WeightsMismatchError, CorruptWeightsError,
        HubUnreachableError (see ``wkd_hf.models.loading``).
    """
    hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if kwargs.get(key) is not None}
    config = read_model_config(name_or_path, subfolder, local_files_only, **hub_kwargs)
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
    if subfolder:
        kwargs["subfolder"] = subfolder
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    return cls.from_pretrained(name_or_path, **kwargs)
