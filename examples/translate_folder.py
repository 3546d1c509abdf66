#!/usr/bin/env python
"""Translate a folder of images with a student from the Hub (or any local output folder).

    python examples/translate_folder.py --model your-username/facades-student \
        --input photos/ --output translated/ [--backend onnx]

The same as ``wkd-translate --model ... --input ... --output ...``, written out with the
pipeline so you can adapt it. Offline, pass a local folder (e.g. demo_output/students/wkd).
"""

import argparse
from pathlib import Path

import torch
from PIL import Image

from wkd_hf import ImageTranslationPipeline
from wkd_hf.cli import one_line_errors

one_line_errors("translate_folder.py")  # a failure is one `error:` line, not a traceback

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--model", required=True, help="Hub id or folder of a wkd_hf student")
parser.add_argument("--input", required=True, help="folder of images")
parser.add_argument("--output", required=True)
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
parser.add_argument("--backend", choices=("torch", "onnx"), default="torch")
args = parser.parse_args()

pipe = ImageTranslationPipeline.from_pretrained(args.model, device=args.device)
if args.backend == "onnx":  # export once (parity-checked) and run in ONNX Runtime
    from wkd_hf.onnx_export import onnx_pipeline

    pipe = onnx_pipeline(pipe, device=args.device)
print(f"{type(pipe.generator).__name__}, trained at {pipe.resolution or '?'} px, "
      f"direction {pipe.direction or '?'}")
files = sorted(p for p in Path(args.input).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
out = Path(args.output)
out.mkdir(parents=True, exist_ok=True)
for start in range(0, len(files), 8):  # 8 images per forward pass
    chunk = files[start:start + 8]
    for path, image in zip(chunk, pipe([Image.open(p) for p in chunk], batch_size=8).images):
        image.save(out / f"{path.stem}.png")
print(f"wrote {len(files)} images to {out}")
