#!/usr/bin/env python
"""Export a student to ONNX (dynamic batch and size), check it, and run it in ONNX Runtime.

    python examples/export_onnx.py --model STUDENT --output student.onnx [--image photo.jpg]

The export runs a parity check against PyTorch on real photos (max abs difference <= 1e-4, or
it raises). ``wkd-export-onnx --model STUDENT --output student.onnx`` does the same.
"""

import argparse
import time

from PIL import Image

from wkd_hf import ImageTranslationPipeline, OnnxGenerator, export_onnx
from wkd_hf.cli import one_line_errors

one_line_errors("export_onnx.py")  # a failure is one `error:` line, not a traceback

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--model", required=True, help="Hub id, folder or .pth of a generator")
parser.add_argument("--output", default="student.onnx")
parser.add_argument("--image", default=None, help="translate this image with the .onnx file")
args = parser.parse_args()

pipe = ImageTranslationPipeline.from_pretrained(args.model)
report = export_onnx(pipe.generator, args.output, resolution=pipe.resolution or 256,
                     metadata={"resolution": pipe.resolution, "direction": pipe.direction})
print(f"wrote {report.path}: max abs diff vs PyTorch {report.max_abs_diff:.1e} on "
      f"{report.checked_shapes}")

if args.image:  # the .onnx file alone is enough from here on (metadata carries the size rule)
    onnx_pipe = ImageTranslationPipeline(OnnxGenerator(args.output), resolution=pipe.resolution)
    start = time.perf_counter()
    result = onnx_pipe(Image.open(args.image)).images[0]
    print(f"ONNX Runtime: {(time.perf_counter() - start) * 1e3:.0f} ms")
    result.save("translated_onnx.png")
    print("wrote translated_onnx.png")
