"""The study's picture strips: one column of outputs on fixed test images, beside the inputs
(and the targets), at the evaluation size."""

from __future__ import annotations

from pathlib import Path

NUM_PICTURES = 4


def picture_inputs(study: str, s: dict, shared: Path):
    """The first NUM_PICTURES test images (sorted by name): N x 3 x R x R in [-1, 1], and the
    targets (None for unpaired data)."""
    import numpy as np
    import torch
    from PIL import Image

    def tensor(image: Image.Image, size: int) -> torch.Tensor:
        array = np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), np.float32)
        return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1

    if study == "facades":
        files = sorted((shared / "facades" / "test").glob("*.jpg"), key=lambda p: int(p.stem))
        images = [Image.open(f) for f in files[:NUM_PICTURES]]
        size = s["resolution"]
        halves = [(im.crop((im.width // 2, 0, im.width, im.height)),
                   im.crop((0, 0, im.width // 2, im.height))) for im in images]
        return (torch.stack([tensor(label, size) for label, _ in halves]),
                torch.stack([tensor(photo, size) for _, photo in halves]))
    files = sorted((shared / "horse2zebra" / "testA").glob("*.jpg"))[:NUM_PICTURES]
    return torch.stack([tensor(Image.open(f), s["h2z_resolution"]) for f in files]), None


def save_pictures(study: str, name: str, model_path: Path, s: dict, shared: Path,
                  folder: Path) -> list[Path]:
    """``folder/<name>.png`` (the model's outputs) and ``input.png`` (+ ``target.png``)."""
    import torch

    from wkd_hf.models.building import load_generator
    from wkd_hf.recipes import image_grid

    inputs, targets = picture_inputs(study, s, shared)
    model = load_generator(str(model_path)).eval()
    with torch.inference_mode():
        outputs = model(inputs).clamp(-1, 1)
    columns = {"input": inputs, name: outputs}
    if targets is not None:
        columns["target"] = targets
    paths = []
    for column, images in columns.items():
        path = folder / f"{column}.png"
        image_grid({column: images}).save(path)
        paths.append(path)
    return paths
