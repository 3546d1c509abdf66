"""``ImageTranslationPipeline``: images in, translated images out, in the diffusers style.

    from wkd_hf import ImageTranslationPipeline

    pipe = ImageTranslationPipeline.from_pretrained("out/facades-student", torch_dtype=torch.float32)
    images = pipe([Image.open("a.jpg"), Image.open("b.png")], batch_size=8).images  # PIL images

It is a ``diffusers.DiffusionPipeline`` with one component, ``generator`` (any wkd_hf generator, or
an ONNX Runtime stand-in from :func:`wkd_hf.onnx_export.OnnxGenerator`), and two config values,
``resolution`` (the size the generator was trained at, or None) and ``direction`` (``"AtoB"``,
``"BtoA"``, ``"a2b"``, ``"b2a"`` or None). ``save_pretrained`` writes ``model_index.json`` +
``generator/``; :meth:`ImageTranslationPipeline.from_pretrained` also loads every other folder
wkd_hf writes (a student/teacher output folder with ``args.json`` / ``wkd_config.json``, a
CycleGAN folder with ``generator_a2b/`` and ``generator_b2a/``, a bare ``save_pretrained``
folder), a pix2pix / CycleGAN / GAN Compression ``.pth`` checkpoint, or a Hub id of any of these.
``diffusers.DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` loads a saved
pipeline folder too, through the small ``wkd_pipeline.py`` that ``save_pretrained`` writes beside
``model_index.json`` (diffusers' mechanism for pipelines that live outside diffusers).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import BaseOutput

from .hub_access import hub_model_snapshot
from .input_checks import RANGE_HELP, check_values, parse_dtype
from .models.building import load_generator
from .models.layers import size_rule
from .models.loading import NotAModelFolderError
from .names import ARGS_FILE, CYCLE_SUBFOLDERS, WKD_CONFIG_NAME
from .openvino_backend import pipeline_on_backend
from .remote_code import write_component_code
from .safe_files import move_into, partial_folder_beside

PIPELINE_FILE = "wkd_pipeline.py"  # the shim DiffusionPipeline.from_pretrained imports
SIZE_MODES = ("pad", "resize")
OUTPUT_TYPES = ("pil", "np", "pt")
DIRECTIONS = ("AtoB", "BtoA", "a2b", "b2a")
_SHIM = '''"""Lets ``diffusers.DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` load
this folder: the pipeline class lives in the installed ``wkd_hf`` package (pip install wkd_hf)."""

from wkd_hf.pipeline import ImageTranslationPipeline  # noqa: F401
'''

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor


@dataclass
class ImageTranslationPipelineOutput(BaseOutput):
    """``images``: a list of PIL images (``output_type="pil"``), or, for ``"np"`` / ``"pt"``, an
    N x H x W x C float array / N x C x H x W float tensor in [0, 1] when all outputs have one size
    (else a list of per-image arrays / tensors)."""

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor | list


def read_run_metadata(folder: str | os.PathLike) -> dict:
    """``resolution`` and ``direction`` from a wkd_hf output folder's ``args.json`` (and its
    ``mode`` from ``wkd_config.json``); keys are missing where the folder does not say."""
    folder = Path(folder)
    meta: dict[str, Any] = {}
    for name in (ARGS_FILE, WKD_CONFIG_NAME):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        if isinstance(data.get("resolution"), int) and data["resolution"] > 0:
            meta.setdefault("resolution", data["resolution"])
        if data.get("direction") in DIRECTIONS:
            meta.setdefault("direction", data["direction"])
        if isinstance(data.get("mode"), str):
            meta.setdefault("mode", data["mode"])
    return meta


def _read_index(path: Path) -> dict:
    """A saved pipeline's ``model_index.json``; NotAModelFolderError naming it when it is not a
    JSON object (a truncated copy)."""
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        index = err
    if not isinstance(index, dict):
        detail = str(index) if isinstance(index, Exception) else type(index).__name__
        raise NotAModelFolderError(f"{path} is not a pipeline index (a JSON object; {detail}): "
                                   "copy or save the pipeline again")
    return index


def _normalise_direction(direction: str | None) -> str | None:
    if direction is None:
        return None
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS} or None; got {direction!r}")
    return direction


class ImageTranslationPipeline(DiffusionPipeline):
    r"""Image-to-image translation with one pix2pix / CycleGAN generator (no diffusion: a single
    forward pass per batch).

    Args:
        generator: a wkd_hf generator (``ResnetGenerator``, ``UnetGenerator``,
            ``SubMobileResnetGenerator``) or an ``OnnxGenerator``; inputs and outputs in [-1, 1].
        resolution (`int`, *optional*): the size the generator was trained at; with
            ``size_mode="resize"`` images are resized to it (and back).
        direction (`str`, *optional*): which way it translates (``"AtoB"``, ``"BtoA"``, or a CycleGAN
            folder's ``"a2b"`` / ``"b2a"``); informative only.
    """

    model_cpu_offload_seq = "generator"

    def __init__(self, generator, resolution: int | None = None, direction: str | None = None):
        super().__init__()
        if resolution is not None and (isinstance(resolution, bool) or not isinstance(
                resolution, int) or resolution < 1):
            raise ValueError(f"resolution must be a positive int or None; got {resolution!r}")
        self.register_modules(generator=generator)
        self.register_to_config(resolution=resolution, direction=_normalise_direction(direction))

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_generator(cls, generator, resolution: int | None = None,
                       direction: str | None = None) -> ImageTranslationPipeline:
        """Wrap a generator already in memory."""
        return cls(generator=generator, resolution=resolution, direction=direction)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike,
                        subfolder: str | None = None, direction: str | None = None,
                        resolution: int | None = None, torch_dtype: torch.dtype | None = None,
                        device: str | torch.device | None = None,
                        local_files_only: bool | None = None) -> ImageTranslationPipeline:
        """Load a pipeline from a folder, a checkpoint file or a Hub id.

        Accepts a saved pipeline (``model_index.json`` + ``generator/``), a wkd_hf output folder
        (``config.json`` + weights, with ``args.json`` / ``wkd_config.json`` giving resolution and
        direction), a CycleGAN folder (``generator_a2b/``, ``generator_b2a/``: ``direction`` picks
        one, default a2b; or pass ``subfolder``), a bare ``save_pretrained`` folder, an upstream
        ``.pth`` state dict, or a Hub id of any of the folders.

        Args:
            subfolder: the generator's folder inside it (e.g. ``"generator_b2a"``).
            direction: ``"a2b"``/``"AtoB"`` or ``"b2a"``/``"BtoA"`` for CycleGAN folders; otherwise
                overrides the saved direction.
            resolution: overrides the saved training resolution.
            torch_dtype: e.g. ``torch.float16`` / ``torch.bfloat16`` (default: as saved, float32).
            device: where to put the generator (default CPU).
            local_files_only: for Hub ids, use only the local cache.
        """
        direction = _normalise_direction(direction)
        torch_dtype = parse_dtype(torch_dtype)  # also "float16", as diffusers accepts
        path = os.fspath(pretrained_model_name_or_path)
        if not os.path.exists(path):
            path = hub_model_snapshot(path, local_files_only)
        meta: dict[str, Any] = {}
        if os.path.isfile(path):
            model = load_generator(path)
        elif (Path(path) / "model_index.json").is_file() and subfolder is None:
            index = _read_index(Path(path) / "model_index.json")
            model = load_generator(path, "generator")
            meta = {k: index.get(k) for k in ("resolution", "direction") if index.get(k)}
        else:
            meta = read_run_metadata(path)
            if subfolder is None and not (Path(path) / "config.json").is_file() and \
                    (Path(path) / CYCLE_SUBFOLDERS["a2b"]).is_dir():
                key = "b2a" if direction in ("b2a", "BtoA") else "a2b"
                subfolder, direction = CYCLE_SUBFOLDERS[key], direction or key
            elif subfolder in CYCLE_SUBFOLDERS.values() and direction is None:
                direction = subfolder.removeprefix("generator_")
            model = load_generator(path, subfolder)
            if subfolder:
                meta.update(read_run_metadata(Path(path) / subfolder))
        if torch_dtype is not None:  # nn.Module.to: diffusers' would warn about fp32 modules
            model = torch.nn.Module.to(model, torch_dtype)
        if device is not None:
            model = model.to(device)
        model.eval()
        return cls(generator=model, resolution=resolution or meta.get("resolution"),
                   direction=direction or meta.get("direction"))

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False,
                        **kwargs) -> None:
        """``DiffusionPipeline.save_pretrained`` (``model_index.json`` + ``generator/``), plus
        ``wkd_pipeline.py`` so that ``DiffusionPipeline.from_pretrained(dir,
        trust_remote_code=True)`` finds this class. Written into a folder beside
        ``save_directory`` and moved in when complete; ``push_to_hub`` (with diffusers' ``repo_id``,
        ``token``, ``private``, ``commit_message``, ``create_pr``) uploads the finished folder."""
        hub = {k: kwargs.pop(k) for k in ("repo_id", "token", "private", "commit_message",
                                          "create_pr") if k in kwargs}
        target = Path(save_directory)
        partial = partial_folder_beside(target)
        try:
            super().save_pretrained(str(partial), **kwargs)
            index_path = partial / "model_index.json"
            index = json.loads(index_path.read_text(encoding="utf-8"))
            index["_class_name"] = [PIPELINE_FILE.removesuffix(".py"), type(self).__name__]
            index["generator"] = (write_component_code(partial, "generator",
                                                       type(self.generator)) or index["generator"])
            index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n",
                                  encoding="utf-8")
            (partial / PIPELINE_FILE).write_text(_SHIM, encoding="utf-8")
            move_into(partial, target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        if push_to_hub:
            self._push_folder(target, hub)

    def _push_folder(self, folder: Path, hub: dict) -> None:
        """Upload a finished ``save_pretrained`` folder as diffusers' ``push_to_hub`` does."""
        from diffusers.utils.hub_utils import load_or_create_model_card, populate_model_card
        from huggingface_hub import create_repo

        token = hub.get("token")
        repo_id = create_repo(hub.get("repo_id", folder.name), exist_ok=True,
                              private=hub.get("private"), token=token).repo_id
        card = populate_model_card(load_or_create_model_card(repo_id, token=token,
                                                             is_pipeline=True))
        card.save(str(folder / "README.md"))
        self._upload_folder(str(folder), repo_id, token=token,
                            commit_message=hub.get("commit_message"),
                            create_pr=hub.get("create_pr", False))

    def to_backend(self, backend: str, num_threads: int | None = None,
                   precision: str = "f32") -> ImageTranslationPipeline:
        """This pipeline on ``"torch"`` (itself), ``"onnx"`` (ONNX Runtime) or ``"openvino"`` (at
        ``precision`` ``"f32"`` / ``"bf16"``): the generator exported and parity-checked."""
        return pipeline_on_backend(self, backend, num_threads, precision)

    # ------------------------------------------------------------------ running
    @property
    def resolution(self) -> int | None:
        return self.config.resolution

    @property
    def direction(self) -> str | None:
        return self.config.direction

    def _model_dtype_device(self) -> tuple[torch.dtype, torch.device]:
        generator = self.generator
        if isinstance(generator, torch.nn.Module):
            param = next(generator.parameters(), None)
            if param is not None:
                return param.dtype, param.device
        return torch.float32, torch.device("cpu")

    def _channels(self) -> tuple[int, int]:
        config = getattr(self.generator, "config", None) or {}
        get = config.get if isinstance(config, dict) else lambda k, d: getattr(config, k, d)
        return int(get("in_channels", 3)), int(get("out_channels", 3))

    @torch.inference_mode()
    def __call__(self, images: ImageInput | Sequence[ImageInput], batch_size: int = 8,
                 output_type: str = "pil", size_mode: str | None = None,
                 return_dict: bool = True) -> ImageTranslationPipelineOutput | tuple:
        """Translate ``images``.

        Args:
            images: a PIL image (any mode: L, RGB, RGBA, P, I;16, ...), a list of them, a numpy
                array (H x W [x C], uint8 0-255 or float 0-1; N x H x W x C for a batch), a tensor
                (C x H x W or N x C x H x W, float in [0, 1]) or a list of arrays / tensors. Sizes
                may differ from image to image.
            batch_size: images per forward pass.
            output_type: ``"pil"`` (default), ``"np"`` (H x W x C float in [0, 1]) or ``"pt"``
                (C x H x W float in [0, 1]).
            size_mode: ``"resize"``: resize each image to ``resolution`` x ``resolution`` (bicubic),
                translate, resize back; ``"pad"``: reflect-pad each side up to what the network needs
                (ResNet: a multiple of 4; U-Net: of 2**num_downs), translate, crop back. Default:
                ``"resize"`` when the pipeline knows its resolution, else ``"pad"``. Either way
                every output has its input's size.
            return_dict: return an ``ImageTranslationPipelineOutput`` (else a 1-tuple).

        Alpha channels are set aside and put back on the output unchanged; grayscale inputs are
        replicated to the generator's input channels. PIL outputs are RGB (L for 1-channel
        generators), RGBA / LA where the input had transparency.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}; got {output_type!r}")
        size_mode = size_mode or ("resize" if self.resolution else "pad")
        if size_mode not in SIZE_MODES:
            raise ValueError(f"size_mode must be one of {SIZE_MODES}; got {size_mode!r}")
        if size_mode == "resize" and not self.resolution:
            raise ValueError("size_mode='resize' needs the pipeline's resolution (pass "
                             "resolution= to from_pretrained)")
        in_channels, out_channels = self._channels()
        items = [_to_tensor(image, in_channels) for image in _as_list(images)]
        if not items:
            raise ValueError("no images given")
        dtype, device = self._model_dtype_device()
        multiple, minimum = size_rule(self.generator)
        prepared = [self._prepare(rgb, size_mode, multiple, minimum) for rgb, _ in items]

        outputs: list[torch.Tensor | None] = [None] * len(items)
        groups: dict[tuple[int, int], list[int]] = {}
        for index, (tensor, _) in enumerate(prepared):
            groups.setdefault(tuple(tensor.shape[-2:]), []).append(index)
        chunks = [idx[i:i + batch_size] for idx in groups.values()
                  for i in range(0, len(idx), batch_size)]
        for chunk in self.progress_bar(chunks):
            batch = torch.stack([prepared[i][0] for i in chunk]).to(device=device, dtype=dtype)
            result = self.generator(batch * 2 - 1)
            result = ((result.float().clamp(-1, 1) + 1) / 2).cpu()
            for i, out in zip(chunk, result):
                outputs[i] = self._restore(out, prepared[i][1], size_mode)
        return self._finish(outputs, [alpha for _, alpha in items], out_channels, output_type,
                            return_dict)

    def _prepare(self, image: torch.Tensor, size_mode: str, multiple: int, minimum: int
                 ) -> tuple[torch.Tensor, tuple]:
        """C x H x W in [0, 1] -> what the network takes, and how to undo it."""
        height, width = image.shape[-2:]
        if size_mode == "resize":
            size = self.resolution
            if size % multiple or size < minimum:
                size = max(minimum, -(-size // multiple) * multiple)
            resized = _resize(image, (size, size))
            return resized, ("resize", (height, width))
        target_h = max(minimum, -(-height // multiple) * multiple)
        target_w = max(minimum, -(-width // multiple) * multiple)
        top, left = (target_h - height) // 2, (target_w - width) // 2
        pads = (left, target_w - width - left, top, target_h - height - top)
        if any(pads):
            reflectable = max(pads[:2]) < width and max(pads[2:]) < height
            image = F.pad(image[None], pads, mode="reflect" if reflectable else "replicate")[0]
        return image, ("pad", (top, left, height, width))

    @staticmethod
    def _restore(output: torch.Tensor, undo: tuple, size_mode: str) -> torch.Tensor:
        if undo[0] == "resize":
            return _resize(output, undo[1]).clamp(0, 1)
        top, left, height, width = undo[1]
        return output[:, top:top + height, left:left + width]

    @staticmethod
    def _finish(outputs, alphas, out_channels, output_type, return_dict):
        if output_type == "pil":
            images = [_to_pil(out, alpha) for out, alpha in zip(outputs, alphas)]
        else:
            with_alpha = [torch.cat([out, alpha]) if alpha is not None else out
                          for out, alpha in zip(outputs, alphas)]
            same = len({tuple(t.shape) for t in with_alpha}) == 1
            images = torch.stack(with_alpha) if same else with_alpha
            if output_type == "np":
                images = images.permute(0, 2, 3, 1).numpy() if same else [
                    t.permute(1, 2, 0).numpy() for t in images]
        return ImageTranslationPipelineOutput(images=images) if return_dict else (images,)


# ----------------------------------------------------------------------------- helpers
def _as_list(images) -> list:
    if isinstance(images, torch.Tensor):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, PIL.Image.Image):
        return [images]
    if isinstance(images, (list, tuple)):
        return list(images)
    raise TypeError(f"images must be a PIL image, numpy array, tensor or a list of them; got "
                    f"{type(images).__name__}")


def _to_tensor(image, in_channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One image -> (C x H x W float in [0, 1] with the generator's channels, alpha or None)."""
    if isinstance(image, PIL.Image.Image):
        image = _pil_to_array(image)
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3:
            raise ValueError(f"an image array must be H x W or H x W x C; got shape {array.shape}")
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / 255.0
        elif array.dtype == np.uint16:
            array = array.astype(np.float32) / 65535.0
        elif array.dtype.kind not in "f":
            raise TypeError(RANGE_HELP.format(f"a {array.dtype} array"))
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)
    elif isinstance(image, torch.Tensor):
        if image.dtype == torch.uint8:  # torchvision.io.read_image
            tensor = image.detach().cpu().float() / 255.0
        elif image.is_floating_point():
            tensor = image.detach().float().cpu()
        else:
            raise TypeError(RANGE_HELP.format(f"a {image.dtype} tensor"))
        if tensor.ndim == 2:
            tensor = tensor[None]
        if tensor.ndim != 3:
            raise ValueError(f"an image tensor must be C x H x W; got shape {tuple(tensor.shape)}")
    else:
        raise TypeError(f"cannot translate a {type(image).__name__}; pass PIL images, numpy "
                        "arrays or tensors")
    check_values(tensor)
    channels = tensor.shape[0]
    if channels not in (1, 2, 3, 4):
        raise ValueError(f"an image must have 1-4 channels (L, LA, RGB, RGBA); got {channels}")
    alpha = None
    if channels in (2, 4):
        tensor, alpha = tensor[:-1], tensor[-1:].clamp(0, 1)
    tensor = tensor.clamp(0, 1)
    if tensor.shape[0] == 1 and in_channels > 1:
        tensor = tensor.expand(in_channels, -1, -1)
    elif tensor.shape[0] == 3 and in_channels == 1:  # ITU-R 601 luma, as PIL's convert("L")
        tensor = (tensor * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
    elif tensor.shape[0] != in_channels:
        raise ValueError(f"the generator takes {in_channels} channels; the image has "
                         f"{tensor.shape[0]}")
    return tensor.contiguous(), alpha


def _pil_to_array(image: PIL.Image.Image) -> np.ndarray:
    """Any PIL mode -> H x W x {1,2,3,4} uint8 (or float for 16/32-bit modes)."""
    mode = image.mode
    if mode in ("RGB", "L", "RGBA", "LA"):
        return np.asarray(image)
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        return (array / top).astype(np.float32)
    if mode == "F":
        return np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    has_alpha = mode.endswith("A") or "transparency" in image.info  # LA, PA, RGBA; not LAB
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=size, mode="bicubic", align_corners=False,
                         antialias=True)[0]


def _to_pil(image: torch.Tensor, alpha: torch.Tensor | None) -> PIL.Image.Image:
    channels = image if alpha is None else torch.cat([image, alpha])
    array = (channels * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(array.shape[2])
    if mode is None:  # more than 3 output channels: keep the first 3
        array, mode = array[:, :, :3], "RGB"
    if array.shape[2] == 1:
        array = array[:, :, 0]
    return PIL.Image.fromarray(np.ascontiguousarray(array))
