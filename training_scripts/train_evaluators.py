#!/usr/bin/env python
"""Train the evaluator networks of ``evaluate.py --metrics fcn,domain`` (seeded, CPU, minutes).

    python training_scripts/train_evaluators.py fcn --data_dir facades --output_dir ev
    python training_scripts/train_evaluators.py domain --data_dir horse2zebra --output_dir ev

fcn: pix2pix's FCN-score protocol for label -> photo. A segmentation network learns real photos
-> label maps on the ``train/`` side-by-side images (left: photo, right: colour-coded labels; the
class colours are derived from the training label maps). domain: a classifier of ``trainA/``
(class 0, the source domain) vs ``trainB/`` (class 1, the target). Only train images are used
for training; the test images (``test/``, ``testA/`` + ``testB/``) give the accuracy written
beside the weights (``<name>.json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wkd_hf.metrics.domain_classifier import DomainClassifier, save_domain_evaluator
from wkd_hf.metrics.fcn_score import (
    SegmentationNet,
    colours_to_classes,
    confusion_matrix,
    derive_palette,
    save_fcn_evaluator,
    scores_from_confusion,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"error: {folder} is not a folder; pass --data_dir with the layout "
                         "described in --help.")
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"error: {folder} holds no image ({', '.join(IMAGE_SUFFIXES)}); pass "
                         "--data_dir with the layout described in --help.")
    return files


def to_tensor(image, size: int, resample) -> torch.Tensor:
    """PIL image -> 3 x size x size uint8."""
    array = np.asarray(image.convert("RGB").resize((size, size), resample))
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def side_by_side(folder: Path, size: int) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Photos (N x 3 x size x size uint8, bicubic) and the label halves (full size, for the
    palette and the nearest-resized class maps)."""
    from PIL import Image

    photos, labels = [], []
    for path in image_files(folder):
        with Image.open(path) as im:
            w, h = im.size
            photos.append(to_tensor(im.crop((0, 0, w // 2, h)), size, Image.BICUBIC))
            labels.append(np.asarray(im.crop((w // 2, 0, w, h)).convert("RGB")))
    return torch.stack(photos), labels


def class_maps(labels: list[np.ndarray], palette: np.ndarray, size: int) -> torch.Tensor:
    """N x size x size class ids: nearest palette colour, then nearest resize."""
    maps = []
    for label in labels:
        rgb = torch.from_numpy(label.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        classes = colours_to_classes(rgb, torch.from_numpy(palette).float())
        maps.append(F.interpolate(classes[None].float(), size=(size, size), mode="nearest")[0, 0])
    return torch.stack(maps).long()


def as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1


def batches(count: int, batch_size: int, generator: torch.Generator):
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Flip the images (N x ... x W) where ``mask`` (N) is True: the one augmentation."""
    return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def fit(net, inputs, targets, args, loss_fn) -> list[float]:
    """Adam, random flips, ``args.steps`` steps of ``args.batch_size``; returns the losses."""
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    losses, start = [], time.perf_counter()
    net.train()
    for step, index in zip(range(args.steps), batches(len(inputs), args.batch_size, generator)):
        mask = torch.rand(len(index), generator=generator) < 0.5
        x = flip(as_float(inputs[index]), mask)
        y = flip(targets[index], mask) if targets.dim() > 1 else targets[index]
        loss = loss_fn(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}/{args.steps}: loss {np.mean(losses[-100:]):.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return losses


@torch.no_grad()
def predict(net, inputs: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Class ids: per pixel (N x H x W) for a segmentation net, per image (N) for a classifier."""
    net.eval()
    return torch.cat([net(as_float(inputs[i:i + batch_size])).argmax(1)
                      for i in range(0, len(inputs), batch_size)])


def train_fcn(args) -> dict:
    photos, labels = side_by_side(args.data_dir / "train", args.resolution)
    palette = derive_palette(labels, args.num_classes)
    targets = class_maps(labels, palette, args.resolution)
    net = SegmentationNet(args.num_classes, args.width)
    losses = fit(net, photos, targets, args, F.cross_entropy)
    test_photos, test_labels = side_by_side(args.data_dir / "test", args.resolution)
    test_targets = class_maps(test_labels, palette, args.resolution)
    confusion = confusion_matrix(predict(net, test_photos), test_targets, args.num_classes)
    record = {"test_scores_on_real_photos": scores_from_confusion(confusion),
              "train_images": len(photos), "test_images": len(test_photos),
              **common_record(args, losses)}
    save_fcn_evaluator(args.output_dir, net, palette, args.resolution, args.width, record)
    return record


def domain_images(folder: Path, size: int) -> torch.Tensor:
    from PIL import Image

    images = []
    for path in image_files(folder):
        with Image.open(path) as im:
            images.append(to_tensor(im, size, Image.BICUBIC))
    return torch.stack(images)


def train_domain(args) -> dict:
    a, b = (domain_images(args.data_dir / f"train{d}", args.resolution) for d in "AB")
    inputs, targets = torch.cat([a, b]), torch.cat([torch.zeros(len(a)), torch.ones(len(b))]).long()
    net = DomainClassifier(args.width)
    losses = fit(net, inputs, targets, args, F.cross_entropy)
    test_a, test_b = (domain_images(args.data_dir / f"test{d}", args.resolution) for d in "AB")
    accuracy = {f"test{d}": float((predict(net, x) == label).float().mean())
                for d, x, label in (("A", test_a, 0), ("B", test_b, 1))}
    record = {"test_accuracy": accuracy,
              "test_accuracy_mean": float(np.mean(list(accuracy.values()))),
              "train_images": {"trainA": len(a), "trainB": len(b)},
              "test_images": {"testA": len(test_a), "testB": len(test_b)},
              **common_record(args, losses)}
    save_domain_evaluator(args.output_dir, net, args.resolution, args.width, record)
    return record


def common_record(args, losses: list[float]) -> dict:
    return {"seed": args.seed, "steps": args.steps, "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "final_train_loss": float(np.mean(losses[-50:])),
            "command": "python training_scripts/train_evaluators.py " + " ".join(sys.argv[1:])}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("kind", choices=("fcn", "domain"),
                        help="fcn: segmentation net (label -> photo); domain: A-vs-B classifier.")
    parser.add_argument("--data_dir", type=Path, required=True,
                        help="fcn: a folder with train/ and test/ side-by-side photo|label "
                             "images; domain: trainA/ trainB/ testA/ testB/ (required).")
    parser.add_argument("--output_dir", type=Path, required=True,
                        help="Where <name>.safetensors and <name>.json go (required).")
    parser.add_argument("--resolution", type=int, default=64,
                        help="Square size the evaluator sees (a multiple of 16; default 64).")
    parser.add_argument("--num_classes", type=int, default=12,
                        help="fcn: label colours (CMP facades: 12).")
    parser.add_argument("--width", type=int, default=None,
                        help="Network width (default 16).")
    parser.add_argument("--steps", type=int, default=None,
                        help="Training steps (default: 1500).")
    parser.add_argument("--batch_size", type=int, default=16, help="Images per step.")
    parser.add_argument("--learning_rate", type=float, default=2e-3,
                        help="Adam's rate, cosine-decayed to 0.")
    parser.add_argument("--seed", type=int, default=0, help="Initialisation, order and flips.")
    args = parser.parse_args(argv)
    args.width = args.width or 16
    args.steps = args.steps or 1500
    if args.resolution < 16 or args.resolution % 16:
        parser.error(f"--resolution must be a multiple of 16, got {args.resolution}")
    for name in ("steps", "batch_size", "width", "num_classes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    record = (train_fcn if args.kind == "fcn" else train_domain)(args)
    scores = record.get("test_scores_on_real_photos") or record["test_accuracy"]
    print(f"Saved to {args.output_dir}; on test: {scores}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
