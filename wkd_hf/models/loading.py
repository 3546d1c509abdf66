"""Reading saved models: ``config.json``, Hub downloads, weight-file checks, and the checks that
every network's ``from_pretrained`` adds to diffusers' (``CheckedLoadingMixin``).

Errors (all ValueError except ``HubUnreachableError``, an OSError):

- ``NotAModelFolderError``: the folder / repo has no ``config.json`` naming a class.
- ``UnknownModelClassError``: ``config.json``'s ``_class_name`` is not one of ours.
- ``WrongModelClassError``: ``SomeClass.from_pretrained`` on a folder saved for another class.
- ``WeightsMismatchError``: the weights do not fit ``config.json`` (missing, unexpected or
  differently shaped tensors); diffusers would leave random or empty (meta) tensors instead.
- ``CorruptWeightsError``: the weights file is a Git LFS pointer, text, empty or truncated.
- ``HubUnreachableError``: a Hub id was given, the Hub cannot be reached (offline mode, or the
  endpoint does not answer a quick probe) and the file is not in the local cache.
"""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path

from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
)

from ..hub_access import HubUnreachableError, hub_advice, hub_download, hub_unreachable_reason
from ..output_folders import check_export_complete
from ..safe_files import umask_mode

CONFIG_NAME = "config.json"
WEIGHTS_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
# from_pretrained keyword arguments that also choose which config.json is read
HUB_KWARGS = ("revision", "cache_dir", "token")


class NotAModelFolderError(ValueError):
    """The folder or Hub repo is not a saved model (no ``config.json`` with a ``_class_name``)."""


class UnknownModelClassError(ValueError):
    """``config.json`` names a class that is not in ``MODEL_CLASSES``."""


class WrongModelClassError(ValueError):
    """``SomeClass.from_pretrained`` was given a folder saved for another class."""


class WeightsMismatchError(ValueError):
    """The saved weights do not fit the model that ``config.json`` describes."""


class ConfigTooLargeError(ValueError):
    """``config.json`` asks for a network larger than any this project trains."""


SIZE_LIMITS = {"ngf": 4096, "ndf": 4096, "in_channels": 64, "out_channels": 64,
               "n_blocks": 576, "num_downs": 16, "n_layers": 16}
MAX_PARAMETERS = 2**31  # 8 GiB in float32
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


class CorruptWeightsError(ValueError):
    """The weights file is not a readable checkpoint (LFS pointer, text, empty, truncated)."""


# ----------------------------------------------------------------------------- files
def weights_file_problem(path: str | os.PathLike) -> str | None:
    """What makes ``path`` unusable as a weights file (a Git LFS pointer, a text file, an empty
    file), with the fix; None when it looks like binary weights."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(256)
    if not head:
        return f"{path!r} is an empty file (an interrupted download?); download or save it again"
    if head.startswith(LFS_POINTER_PREFIX):
        return (
            f"{path!r} is a Git LFS pointer (a small text file standing in for the weights), not "
            "the weights: the repository was cloned without Git LFS. Run `git lfs install` and "
            "`git lfs pull` in the clone, or download the file itself from the repository (its "
            "LFS download link, or `hf download` for a Hub repo)"
        )
    try:  # an incremental decoder tolerates a character cut at the end of ``head``
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return None
    if any(ch < " " and ch not in "\t\n\r" for ch in text):  # binary
        return None
    return (
        f"{path!r} is a text file, not a readable PyTorch checkpoint (it starts with "
        f"{text[:60]!r}; an HTML error page or a saved link?). Download the binary checkpoint "
        "again"
    )


def _weights_problem(folder: str) -> str | None:
    """``weights_file_problem`` of the weights file saved in ``folder``, if there is one."""
    for name in WEIGHTS_NAMES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            problem = weights_file_problem(path)
            return problem or (
                f"{path!r} is not a readable weights file (truncated or corrupt); download or "
                "save the model again"
            )
    return None


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
    **hub_kwargs,
) -> dict:
    """The ``config.json`` of a saved model folder or Hub repo, as a dict (``hub_kwargs``: see
    ``hub_download``)."""
    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        folder = os.path.join(path, subfolder) if subfolder else path
        config_file = os.path.join(folder, CONFIG_NAME)
        if not os.path.isfile(config_file):
            found = _listing(folder)
            raise NotAModelFolderError(
                f"{folder!r} is not a model folder: expected {CONFIG_NAME} and "
                "diffusion_pytorch_model.safetensors (as train_teacher.py, distill.py and "
                f"save_pretrained write them), found {found}."
                " For a pix2pix/CycleGAN checkpoint, convert it first with `wkd-convert`."
            )
    elif os.path.exists(path):
        raise NotAModelFolderError(
            f"{path!r} is a file, not a model folder; for a .pth checkpoint use `wkd-convert`"
        )
    else:
        try:
            config_file = hub_download(path, CONFIG_NAME, subfolder, local_files_only, **hub_kwargs)
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
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise NotAModelFolderError(f"{config_file!r} is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise NotAModelFolderError(f"{config_file!r} holds {type(config).__name__}, not an object")
    if not isinstance(config.get("_class_name", ""), str):
        raise NotAModelFolderError(f"{config_file!r}: _class_name must be a class name (a "
                                   f"string); got {config['_class_name']!r:.80}")
    return config


def check_config_bounds(cls, config: dict, where: str) -> None:
    """Refuse a ``config.json`` asking for an absurd network before anything is allocated: each
    size within ``SIZE_LIMITS`` (far above the reference recipes' values), then the parameter
    count of the network built on the meta device (no memory) within ``MAX_PARAMETERS``."""
    import torch

    for key, limit in SIZE_LIMITS.items():
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            raise ConfigTooLargeError(f"{where}: config.json asks for {key}={value}; at most "
                                      f"{limit} is accepted (fix config.json)")
    try:
        with torch.device("meta"):
            model = cls.from_config({k: v for k, v in config.items() if not k.startswith("_")})
    except (TypeError, ValueError) as err:
        raise NotAModelFolderError(f"{where}: config.json does not describe a {cls.__name__} "
                                   f"({str(err)[:200]}); fix config.json") from None
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMETERS:
        raise ConfigTooLargeError(f"{where}: config.json describes a {cls.__name__} of {count:,} "
                                  f"parameters; at most {MAX_PARAMETERS:,} are accepted")


def _check_local_folder(folder: str, where: str) -> None:
    """An unfinished export is refused; integer tensors (a quantised file) where the network
    has float weights are refused instead of being cast to zeros."""
    check_export_complete(folder)
    path = os.path.join(folder, WEIGHTS_NAMES[0])
    if not os.path.isfile(path) or weights_file_problem(path):
        return
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, "pt") as handle:
            wrong = [(key, handle.get_slice(key).get_dtype()) for key in handle.keys()
                     if handle.get_slice(key).get_dtype() not in FLOAT_DTYPES
                     and not key.endswith("num_batches_tracked")]
    except (SafetensorError, OSError):
        return  # reported by from_pretrained (CorruptWeightsError)
    if wrong:
        key, dtype = wrong[0]
        raise WeightsMismatchError(
            f"{where}: {len(wrong)} weight tensor(s) are not floating point (e.g. {key}: "
            f"{dtype}; a quantised file?); they would load as wrong values. Save the model in "
            "float32, float16 or bfloat16.")


# ----------------------------------------------------------------------------- from_pretrained
def _names(keys: list[str], limit: int = 6) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(sorted(keys)[:limit]) + more


def _check_loading_info(where: str, class_name: str, info: dict) -> None:
    """Raise ``WeightsMismatchError`` if diffusers left tensors missing, unused or misshapen."""
    missing, unexpected = info.get("missing_keys", []), info.get("unexpected_keys", [])
    mismatched = [key for key, *_ in info.get("mismatched_keys", [])]
    if not (missing or unexpected or mismatched or info.get("error_msgs")):
        return
    parts = [f"missing tensors: {_names(missing)}"] if missing else []
    parts += [f"unexpected tensors: {_names(unexpected)}"] if unexpected else []
    parts += [f"tensors of another shape: {_names(mismatched)}"] if mismatched else []
    parts += [str(msg) for msg in info.get("error_msgs", [])[:2]]
    raise WeightsMismatchError(
        f"{where}: the weights do not match the {class_name} that config.json describes ("
        + "; ".join(parts)
        + "). config.json and the weights come from different models: save (or train) the model "
        "again, or fix config.json."
    )


class CheckedLoadingMixin:
    """Put before ``ModelMixin``: ``from_pretrained`` refuses a folder saved for another class,
    weights that do not fit ``config.json`` and unreadable weight files, each with a clear
    ValueError (diffusers would warn and return random or meta tensors), and fails fast with
    ``HubUnreachableError`` for a Hub id when the Hub cannot be reached and nothing is cached."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        path = os.fspath(pretrained_model_name_or_path)
        subfolder = kwargs.get("subfolder")
        where = repr(path) + (f" (subfolder {subfolder!r})" if subfolder else "")
        is_local = os.path.isdir(path)
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if kwargs.get(key) is not None}
        config = read_model_config(path, subfolder, kwargs.get("local_files_only"), **hub_kwargs)
        if not is_local and kwargs.get("local_files_only") is None and hub_unreachable_reason():
            kwargs["local_files_only"] = True  # the cache or nothing, without retries
        found = config.get("_class_name")
        if found is not None and found != cls.__name__:
            raise WrongModelClassError(
                f"{where} holds a {found} (config.json's _class_name), not a {cls.__name__}: load "
                f"it with {found}.from_pretrained, or with wkd_hf.load_pretrained_model, which "
                "picks the class"
            )
        check_config_bounds(cls, config, where)
        load_from = path
        if is_local and subfolder:  # diffusers would take the weights of `path` itself if any
            load_from = os.path.join(path, kwargs.pop("subfolder"))
        if is_local:
            _check_local_folder(load_from, where)
        want_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(load_from, output_loading_info=True, **kwargs)
        except ValueError as err:  # diffusers: "Cannot load ... expected shape ..., but got ..."
            detail = str(err).split(". If you want")[0].replace("Cannot load  because ", "")
            raise WeightsMismatchError(
                f"{where}: the weights do not match the {cls.__name__} that config.json "
                f"describes ({detail}); save (or train) the model again, or fix "
                "config.json"
            ) from err
        except OSError as err:
            folder = os.path.join(path, subfolder) if subfolder else path
            problem = _weights_problem(folder) if is_local else None
            if problem:
                raise CorruptWeightsError(problem) from err
            if not is_local and (why := hub_unreachable_reason()):
                raise HubUnreachableError(
                    f"could not reach the Hub for {path!r} ({why}) and its weights are not in "
                    f"the local cache. {hub_advice('pass a local folder', cache=False)}"
                ) from err
            raise
        _check_loading_info(where, cls.__name__, info)
        return (model, info) if want_info else model

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``ModelMixin.save_pretrained``; the weight files then get the mode a plain ``open``
        gives under the umask (safetensors writes them 0o600: a model saved for others to use
        would be unreadable to them)."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        for path in Path(save_directory).glob("diffusion_pytorch_model*"):
            if path.is_file() and not path.is_symlink():
                os.chmod(path, umask_mode())
        return result
