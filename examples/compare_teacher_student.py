#!/usr/bin/env python
"""Teacher and student side by side in one image, each labelled with its measured latency.

    python examples/compare_teacher_student.py --teacher TEACHER --student STUDENT \
        --image photo.jpg [--output comparison.png]

TEACHER / STUDENT: Hub ids, output folders (CycleGAN folders: add --direction b2a for the other
way) or pix2pix / CycleGAN .pth checkpoints.
"""

import argparse
import statistics
import time

import torch
from PIL import Image, ImageDraw

from wkd_hf import ImageTranslationPipeline
from wkd_hf.cli import one_line_errors

one_line_errors("compare_teacher_student.py")  # a failure is one `error:` line, not a traceback

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
for flag in ("--teacher", "--student", "--image"):
    parser.add_argument(flag, required=True)
parser.add_argument("--direction", default=None, choices=("a2b", "b2a"))
parser.add_argument("--output", default="comparison.png")
parser.add_argument("--repeats", type=int, default=5)
args = parser.parse_args()

image = Image.open(args.image).convert("RGB")
tiles, labels = [image], ["input"]
for role in ("teacher", "student"):
    pipe = ImageTranslationPipeline.from_pretrained(getattr(args, role), direction=args.direction)
    pipe.set_progress_bar_config(disable=True)
    pipe(image)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = pipe(image).images[0]
        times.append((time.perf_counter() - start) * 1e3)
    params = sum(p.numel() for p in pipe.generator.parameters()) / 1e6
    tiles.append(result)
    labels.append(f"{role}: {params:.2f}M params, {statistics.median(times):.0f} ms "
                  f"({torch.get_num_threads()} threads)")

width, height = image.size
sheet = Image.new("RGB", (3 * width, height + 24), "white")
draw = ImageDraw.Draw(sheet)
for i, (tile, label) in enumerate(zip(tiles, labels)):
    sheet.paste(tile, (i * width, 24))
    draw.text((i * width + 4, 6), label, fill="black")
sheet.save(args.output)
print("\n".join(labels[1:]), f"\nwrote {args.output}")
