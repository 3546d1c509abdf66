"""``wkd-translate``: a folder (or file) of images through a saved generator, on PyTorch, ONNX
Runtime or OpenVINO."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import PIL.Image
import PIL.ImageOps
import torch
from tqdm.auto import tqdm

from ..input_checks import DTYPES, check_output_apart
from ..onnx_export import OnnxGenerator, onnx_pipeline
from ..openvino_backend import OpenVinoGenerator
from ..pipeline import DIRECTIONS, SIZE_MODES, ImageTranslationPipeline
from ..safe_files import write_beside
from . import guarded, parse_device

# ----------------------------------------------------------------------------- wkd-translate
PROG = "wkd-translate"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


def _translate_args(argv: Sequence[str] | None):

    p = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="Translate a folder (or one file) of images with a wkd_hf generator.")
    p.add_argument("--model", required=True,
                   help="Hub id or folder (output folder, saved pipeline, CycleGAN folder), a "
                        ".pth checkpoint, or an exported .onnx file.")
    p.add_argument("--subfolder", default=None, help="e.g. generator_b2a.")
    p.add_argument("--direction", default=None, choices=DIRECTIONS,
                   help="CycleGAN folders: which generator (default a2b).")
    p.add_argument("--input", required=True, help="An image file, or a folder (searched "
                   "recursively; files that are not readable images are skipped and listed).")
    p.add_argument("--output", required=True, help="Folder for the translated PNGs (the input's "
                   "sub-folders are kept).")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--backend", choices=("torch", "onnx", "openvino"), default="torch",
                   help="onnx / openvino: export once (with the parity check) and run in ONNX "
                        "Runtime / OpenVINO (CPU).")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                   help="torch backend: weights and compute dtype; openvino: float32 or "
                        "bfloat16 compute.")
    p.add_argument("--size_mode", choices=SIZE_MODES, default=None,
                   help="resize to the training resolution and back, or pad to what the network "
                        "needs and crop back (default: resize when the resolution is known).")
    p.add_argument("--resolution", type=int, default=None,
                   help="Override the model's training resolution.")
    p.add_argument("--num_threads", type=int, default=None, help="CPU threads.")
    p.add_argument("--no_progress", action="store_true", help="No progress bar.")
    return p.parse_args(argv)


def _find_images(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"--input {root} does not exist")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _output_names(files: list[Path], root: Path) -> dict[Path, Path]:
    names: dict[Path, Path] = {}
    taken: set[Path] = set()
    for path in files:
        relative = path.relative_to(root) if root.is_dir() else Path(path.name)
        out = relative.with_suffix(".png")
        if out in taken:
            out = relative.with_name(f"{relative.stem}_{relative.suffix.lstrip('.')}.png")
        taken.add(out)
        names[path] = out
    return names


def _load_for_cli(args) -> ImageTranslationPipeline:
    device = parse_device(args.device)
    if args.model.endswith(".onnx") and os.path.isfile(args.model):
        if args.backend == "openvino":
            generator = OpenVinoGenerator(args.model, args.num_threads, _ov_precision(args))
        else:
            generator = OnnxGenerator(args.model, args.num_threads, device=device.type)
        meta = generator.metadata
        resolution = args.resolution or (int(meta["resolution"]) if meta.get("resolution") else None)
        return ImageTranslationPipeline(generator, resolution=resolution,
                                        direction=meta.get("direction") or args.direction)
    pipe = ImageTranslationPipeline.from_pretrained(
        args.model, subfolder=args.subfolder, direction=args.direction,
        resolution=args.resolution,
        torch_dtype=DTYPES[args.dtype] if args.backend == "torch" else None,
        device=device if args.backend == "torch" else None)
    if args.backend == "onnx":
        pipe = onnx_pipeline(pipe, args.num_threads, device=device.type)
    elif args.backend == "openvino":
        pipe = pipe.to_backend("openvino", args.num_threads, _ov_precision(args))
    return pipe


def _ov_precision(args) -> str:
    if args.device != "cpu" or args.dtype == "float16":
        raise ValueError("--backend openvino runs on --device cpu with --dtype float32 or "
                         f"bfloat16; got --device {args.device} --dtype {args.dtype}")
    return args.dtype


def main(argv: Sequence[str] | None = None) -> int:
    """``wkd-translate``: translated PNGs in ``--output``; unreadable inputs are skipped and
    listed; a fatal problem is one ``error:`` line (exit 1), never a traceback."""
    args = _translate_args(argv)
    return guarded(PROG, lambda: _translate(args))


def _translate(args: argparse.Namespace) -> int:
    """Translate every readable image of ``--input``; raises on a fatal problem."""
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1; got {args.batch_size}")
    if args.num_threads is not None:
        if args.num_threads < 1:
            raise ValueError(f"--num_threads must be >= 1; got {args.num_threads}")
        torch.set_num_threads(args.num_threads)
    root = Path(args.input)
    files = _find_images(root)
    if not files:
        raise ValueError(f"--input {root} holds no files")
    names = _output_names(files, root)
    output = Path(args.output)
    check_output_apart(root, output, files, names)
    output.mkdir(parents=True, exist_ok=True)
    pipe = _load_for_cli(args)
    pipe.set_progress_bar_config(disable=True)
    skipped: list[tuple[Path, str]] = []
    done = 0
    bar = tqdm(total=len(files), unit="img", disable=args.no_progress, desc="translating")
    for start in range(0, len(files), args.batch_size):
        chunk, images = [], []
        for path in files[start:start + args.batch_size]:
            try:
                with PIL.Image.open(path) as handle:
                    handle.load()  # upright, as training read its photos (EXIF orientation)
                    images.append(PIL.ImageOps.exif_transpose(handle))
                chunk.append(path)
            except Exception as err:  # noqa: BLE001 - any unreadable file is skipped
                skipped.append((path, f"{type(err).__name__}: {err}".splitlines()[0][:200]))
        if images:
            results = pipe(images, batch_size=args.batch_size, size_mode=args.size_mode).images
            for path, image in zip(chunk, results):
                target = output / names[path]
                target.parent.mkdir(parents=True, exist_ok=True)
                with write_beside(target, replace_link=True) as partial:  # a link is
                    image.save(partial, format="PNG")  # replaced, never written through
            done += len(images)
        bar.update(len(files[start:start + args.batch_size]))
    bar.close()
    print(f"translated {done} image(s) into {output}"
          + (f"; skipped {len(skipped)} unreadable file(s):" if skipped else ""))
    for path, reason in skipped:
        print(f"  skipped {path}: {reason}")
    if done == 0:
        print(f"{PROG}: error: no readable image in --input", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
