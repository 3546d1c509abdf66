"""What the Space runs, without Gradio: the student / teacher pipelines of each direction, their
params and MACs, and one translation of an uploaded file with its measured latency."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import PIL.Image
import PIL.ImageOps
import torch

from ..data.images import get_max_image_pixels
from ..hub_access import hub_model_snapshot
from ..metrics.efficiency import count_macs, count_parameters
from ..names import CYCLE_SUBFOLDERS
from ..pipeline import ImageTranslationPipeline

DEFAULT_MAX_SIDE = 1024  # longer inputs are resized (with a note): a visitor's 24 MP photo on CPU
CYCLE_DIRECTIONS = ("a2b", "b2a")
DIRECTION_ALIASES = {"AtoB": "a2b", "BtoA": "b2a"}


@dataclass
class Network:
    """One loaded generator: its pipeline (run with ``size_mode``: None = the pipeline's default),
    params, and MACs per image by the H x W it ran at (counted once per size)."""

    source: str
    pipe: ImageTranslationPipeline
    params: int
    size: tuple[int, int]  # its training resolution (else 256 x 256): the warm-up size
    size_mode: str | None = None
    macs_by_size: dict = field(default_factory=dict)

    def macs(self, size: tuple[int, int]) -> int:
        """MACs of one forward pass at ``size`` (H, W), by :func:`count_macs`."""
        if size not in self.macs_by_size:
            in_channels, _ = self.pipe._channels()
            self.macs_by_size[size] = count_macs(self.pipe.generator, size, in_channels)
        return self.macs_by_size[size]


def local_folder(source: str, local_files_only: bool | None = None) -> str:
    """``source`` itself when it exists here, else its Hub snapshot (json + weights)."""
    return source if os.path.exists(source) else hub_model_snapshot(source, local_files_only)


def is_cycle_folder(folder: str) -> bool:
    """A CycleGAN output folder: ``generator_a2b/`` and ``generator_b2a/``, no top-level model."""
    path = Path(folder)
    return path.is_dir() and not (path / "config.json").is_file() and all(
        (path / sub).is_dir() for sub in CYCLE_SUBFOLDERS.values())


def load_network(source: str, direction: str | None, device: str = "cpu",
                 size_mode: str | None = None) -> Network:
    """``ImageTranslationPipeline.from_pretrained(source, direction=...)`` and its param count."""
    pipe = ImageTranslationPipeline.from_pretrained(source, direction=direction, device=device)
    pipe.set_progress_bar_config(disable=True)
    side = pipe.resolution or 256
    return Network(source, pipe, count_parameters(pipe.generator), (side, side), size_mode)


def default_device() -> str:
    """``cuda`` on a GPU Space, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_networks(student: str, teacher: str | None = None, device: str | None = None,
                  local_files_only: bool | None = None, size_mode: str | None = None
                  ) -> dict[str, dict[str, Network]]:
    """``{direction label: {"teacher": Network, "student": Network}}``: both directions of a
    CycleGAN student (``"a2b"``, ``"b2a"``), else one entry (the student's direction, or
    ``"translate"``). A CycleGAN teacher is loaded in the student's direction. ``device``:
    default :func:`default_device`; ``size_mode``: how each upload is fitted to the networks
    (``"resize"`` to the training resolution, ``"pad"`` to what they accept; None: the
    pipeline's default)."""
    device = device or default_device()
    student_dir = local_folder(student, local_files_only)
    teacher_dir = local_folder(teacher, local_files_only) if teacher else None
    if is_cycle_folder(student_dir):
        directions: list[str | None] = list(CYCLE_DIRECTIONS)
    else:
        directions = [None]
    networks: dict[str, dict[str, Network]] = {}
    for direction in directions:
        pair = {"student": load_network(student_dir, direction, device, size_mode)}
        label = direction or pair["student"].pipe.direction or "translate"
        if teacher_dir:
            cycle_direction = DIRECTION_ALIASES.get(label, label)
            teacher_direction = cycle_direction if is_cycle_folder(teacher_dir) and \
                cycle_direction in CYCLE_DIRECTIONS else None
            pair = {"teacher": load_network(teacher_dir, teacher_direction, device, size_mode),
                    **pair}
        networks[label] = pair
    return networks


class NotAnImageError(ValueError):
    """An upload that PIL cannot read as an image; the message is shown in the page."""


def open_upload(path: str | os.PathLike, max_side: int = DEFAULT_MAX_SIDE
                ) -> tuple[PIL.Image.Image, str]:
    """The uploaded file as a PIL image (any mode, EXIF orientation applied) and a note: empty,
    or what was resized when its longer side passes ``max_side``. Files over the project's
    pixel cap (``wkd_hf.data.images.get_max_image_pixels``, 64 MP) are refused before decoding."""
    name = Path(path).name
    limit = get_max_image_pixels()
    try:
        with PIL.Image.open(path) as handle:
            width, height = handle.size
            if limit is not None and width * height > limit:
                raise NotAnImageError(f"{name} is {width}x{height} ({width * height / 1e6:.0f} "
                                      f"megapixels): more than this demo decodes "
                                      f"({limit / 1e6:.0f}); upload a smaller image.")
            handle.load()
            image = PIL.ImageOps.exif_transpose(handle) or handle.copy()
    except NotAnImageError:
        raise
    except PIL.Image.DecompressionBombError:
        raise NotAnImageError(f"{name} has too many pixels to decode safely; upload a smaller "
                              "image.") from None
    except Exception as err:  # noqa: BLE001 - PIL raises many types for non-images
        kind = "not an image PIL can read" if isinstance(err, PIL.UnidentifiedImageError) else \
            f"a broken image ({type(err).__name__})"
        raise NotAnImageError(f"{name} is {kind}. Upload a photo (PNG, JPEG, WebP, BMP, TIFF, "
                              "...).") from None
    width, height = image.size
    if max(width, height) <= max_side:
        return image, ""
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = image.resize(size, PIL.Image.Resampling.LANCZOS)
    return image, (f"The upload ({width}x{height}) was resized to {size[0]}x{size[1]}: this demo "
                   f"takes at most {max_side} px per side.")


def translate_timed(network: Network, image: PIL.Image.Image
                    ) -> tuple[PIL.Image.Image, float, tuple[int, int]]:
    """The translated image (the input's size), the wall-clock milliseconds of the whole pipeline
    call (pre-processing, forward pass, post-processing) on this machine, and the H x W the
    generator ran at (recorded by a forward pre-hook)."""
    ran_at = []
    hook = network.pipe.generator.register_forward_pre_hook(
        lambda module, args: ran_at.append(tuple(args[0].shape[-2:])))
    try:
        start = time.perf_counter()
        output = network.pipe(image, size_mode=network.size_mode).images[0]
        elapsed = (time.perf_counter() - start) * 1000.0
    finally:
        hook.remove()
    return output, elapsed, ran_at[0]


def hardware() -> str:
    """Where the Space runs, e.g. ``cpu, 2 threads`` or ``cuda (NVIDIA H100)``."""
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name()})"
    threads = torch.get_num_threads()
    return f"cpu, {threads} thread{'s' * (threads != 1)}"


def describe(role: str, network: Network, latency_ms: float, size: tuple[int, int]
             ) -> str:
    """One line under an output image: latency, params, MACs at the size the network ran at."""
    height, width = size
    return (f"**{role}**: {latency_ms:.1f} ms on this Space ({hardware()}) | "
            f"{network.params / 1e6:.3f} M params | {network.macs(size) / 1e9:.3f} GMACs at "
            f"{width}x{height}")


def warm_up(networks: dict[str, dict[str, Network]]) -> None:
    """One untimed call per network, so the first visitor's latency is not the first call's."""
    for pair in networks.values():
        for network in pair.values():
            height, width = network.size
            network.pipe(PIL.Image.new("RGB", (width, height)), size_mode=network.size_mode)
