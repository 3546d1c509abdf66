"""pix2pix's FCN-score for label -> photo: segment the generated photos with a network trained
on real photos, and compare the segmentation with the input label map.

Facades label maps are colour-coded (JPEG, so the colours are noisy); :func:`derive_palette`
finds the class colours in the training label maps, :func:`colours_to_classes` maps each pixel
to its nearest class colour. Scores (:func:`scores_from_confusion`) are pix2pix's: per-pixel
accuracy, mean per-class accuracy and mean IoU over the classes present in the labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .evaluator_io import load_evaluator, save_evaluator

FCN_FILE = "fcn_evaluator"


def flat_pixels(image: np.ndarray, tolerance: float = 10.0) -> np.ndarray:
    """M x 3 float colours of the pixels of an H x W x 3 image that differ from their four
    neighbours by less than ``tolerance`` in every channel: region interiors, without the blended
    colours JPEG leaves along region edges."""
    im = np.asarray(image, np.float32)
    centre, keep = im[1:-1, 1:-1], np.ones((im.shape[0] - 2, im.shape[1] - 2), bool)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        neighbour = im[1 + dy:im.shape[0] - 1 + dy, 1 + dx:im.shape[1] - 1 + dx]
        keep &= np.abs(centre - neighbour).max(-1) < tolerance
    return centre[keep]


def derive_palette(label_images: Iterable[np.ndarray], num_classes: int, radius: float = 40.0,
                   iterations: int = 5) -> np.ndarray:
    """``num_classes`` x 3 class colours (float, sorted) from H x W x 3 uint8 label maps: the
    most frequent colours of region interiors (:func:`flat_pixels`; peaks of a histogram of
    8-wide bins) at least ``radius`` apart, refined by k-means over those pixels."""
    pixels = np.concatenate([flat_pixels(im)[::5] for im in label_images])
    bins, counts = np.unique((pixels // 8).astype(np.int64), axis=0, return_counts=True)
    centres: list[np.ndarray] = []
    for index in np.argsort(-counts, kind="stable"):
        colour = bins[index] * 8.0 + 4.0
        if all(np.linalg.norm(colour - c) >= radius for c in centres):
            centres.append(colour)
            if len(centres) == num_classes:
                break
    if len(centres) < num_classes:
        raise ValueError(f"found only {len(centres)} distinct label colours, not {num_classes}; "
                         "pass the number of classes the label maps use.")
    palette = np.stack(centres)
    for _ in range(iterations):
        nearest = np.argmin(((pixels[:, None] - palette[None]) ** 2).sum(-1), axis=1)
        palette = np.stack([pixels[nearest == k].mean(0) if (nearest == k).any() else palette[k]
                            for k in range(num_classes)])
    return palette[np.lexsort(palette.T[::-1])]


def colours_to_classes(images: Tensor, palette: Tensor) -> Tensor:
    """N x 3 x H x W label maps in [-1, 1] -> N x H x W class ids (nearest palette colour;
    ``palette``: K x 3 in 0..255)."""
    rgb = (images.float() + 1) * 127.5
    distance = (rgb[:, None] - palette.to(rgb)[None, :, :, None, None]).pow(2).sum(2)
    return distance.argmin(1)


def confusion_matrix(predicted: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """K x K counts, rows = label class, columns = predicted class (int64)."""
    index = labels.flatten().long() * num_classes + predicted.flatten().long()
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores_from_confusion(confusion: Tensor) -> dict[str, float]:
    """Per-pixel accuracy, per-class accuracy and mIoU (classes absent from the labels are left
    out of the class means, as pix2pix's FCN-score does)."""
    c = confusion.double()
    present = c.sum(1) > 0
    true_positive = c.diag()
    class_accuracy = true_positive[present] / c.sum(1)[present]
    union = c.sum(1) + c.sum(0) - true_positive
    iou = true_positive[present] / union[present]
    return {"pixel_accuracy": float(true_positive.sum() / c.sum()),
            "class_accuracy": float(class_accuracy.mean()), "miou": float(iou.mean())}


class SegmentationNet(nn.Module):
    """A small encoder-decoder: N x 3 x R x R images in [-1, 1] -> N x K x R x R logits (R a
    multiple of 8)."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True))

        w = width
        self.down = nn.ModuleList([nn.Sequential(block(3, w, 1), block(w, w, 1)),
                                   block(w, 2 * w, 2), block(2 * w, 4 * w, 2),
                                   nn.Sequential(block(4 * w, 8 * w, 2), block(8 * w, 8 * w, 1))])
        self.up = nn.ModuleList([block(12 * w, 4 * w, 1), block(6 * w, 2 * w, 1),
                                 block(3 * w, w, 1)])
        self.head = nn.Conv2d(w, num_classes, 1)

    def forward(self, images: Tensor) -> Tensor:
        skips = []
        x = images
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        for layer, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = layer(torch.cat([x, skip], 1))
        return self.head(x)


class FCNScore(nn.Module):
    """Segment images and count them against label maps; :meth:`compute` gives the scores.

    ``update(photos, label_maps)``: both N x 3 x H x W in [-1, 1]; photos are resized to the
    network's resolution, label maps resized (nearest) to it before the colour lookup."""

    def __init__(self, net: SegmentationNet, palette: Tensor, resolution: int):
        super().__init__()
        self.net, self.resolution = net.eval(), resolution
        self.register_buffer("palette", torch.as_tensor(palette, dtype=torch.float32))
        k = len(self.palette)
        self.register_buffer("confusion", torch.zeros(k, k, dtype=torch.int64))

    def reset(self) -> None:
        self.confusion.zero_()

    @torch.no_grad()
    def segment(self, photos: Tensor) -> Tensor:
        """N x H x W predicted class ids at the network's resolution."""
        x = F.interpolate(photos.float(), size=(self.resolution,) * 2, mode="bilinear",
                          align_corners=False, antialias=True)
        return self.net(x).argmax(1)

    @torch.no_grad()
    def update(self, photos: Tensor, label_maps: Tensor) -> None:
        labels = colours_to_classes(F.interpolate(label_maps.float(), size=(self.resolution,) * 2,
                                                  mode="nearest"), self.palette)
        self.confusion += confusion_matrix(self.segment(photos), labels, len(self.palette))

    def compute(self) -> dict[str, float]:
        return scores_from_confusion(self.confusion.cpu())


def save_fcn_evaluator(folder: str | Path, net: SegmentationNet, palette: np.ndarray,
                       resolution: int, width: int, record: dict) -> Path:
    config = {"kind": "fcn_score", "num_classes": len(palette), "width": width,
              "resolution": resolution, "palette": np.round(palette, 3).tolist()}
    return save_evaluator(folder, FCN_FILE, net, config, record)


def load_fcn_evaluator(folder: str | Path) -> FCNScore:
    """The :class:`FCNScore` saved by ``train_evaluators.py fcn`` in ``folder``."""
    state, config = load_evaluator(folder, FCN_FILE, "fcn_score")
    net = SegmentationNet(config["num_classes"], config["width"])
    net.load_state_dict(state)
    return FCNScore(net, torch.tensor(config["palette"]), config["resolution"])

