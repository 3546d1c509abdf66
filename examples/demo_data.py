"""Build the demo's small, real, paired dataset offline: noisy -> clean (denoising).

The photographs ship inside installed packages (scikit-image, scikit-learn, matplotlib), so no
network is needed. Each sample is a random square crop of one photo (side 1x-3x its size, resized
to it, random horizontal flip): ``target`` is the clean crop, ``source`` the same crop plus seeded
Gaussian noise of standard deviation ``noise_sigma`` (in [0, 1] units), clipped and rounded to 8
bits. Noise is high-frequency: exactly what wavelet distillation's high bands are about.

The split is **by photo**: the ``test`` crops come only from ``test_photos``, which never appear in
``train``. Train crops are ``resolution`` px (cheap to train on); test crops ``test_resolution`` px
(the generators are fully convolutional, so they are evaluated and shown larger). Output: ``train-00000-of-00001.parquet``, ``test-00000-of-00001.parquet`` (columns
``source``/``target`` as ``datasets.Image()``, ``photo`` as string), ``README.md`` (provenance) and
``build_info.json`` (settings; a later call with the same settings reuses the files).

    python examples/demo_data.py --output_dir demo_output/data
"""

from __future__ import annotations

import argparse
import json
import logging
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)
FORMAT_VERSION = 3  # bump when the degradation or the crop sampling changes


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if name == "stereo_motorcycle" else image  # left view only

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib.cbook import get_sample_data

    with get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


# The photos: all load offline (none needs pooch). Left out: skimage's retina (mostly black
# border), colorwheel/logo (synthetic), the motorcycle's right view (near-duplicate of the left).
PHOTOS: dict[str, Callable[[], np.ndarray]] = {  # name -> H x W x 3 uint8 array
    "astronaut": _skimage("astronaut"),
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "motorcycle": _skimage("stereo_motorcycle"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "china": _sklearn("china.jpg"),
    "grace_hopper": _grace_hopper,
    "chelsea": _skimage("chelsea"),
    "flower": _sklearn("flower.jpg"),
}
# Provenance and licence as each package documents it (docstrings, sklearn's images/README.txt).
CREDITS: dict[str, str] = {
    "astronaut": ("scikit-image `data.astronaut`: astronaut Eileen Collins, NASA Great Images "
                  "database; no known copyright restrictions (public domain)."),
    "coffee": ("scikit-image `data.coffee`: coffee cup, courtesy of Pikolo Espresso Bar; CC0 by "
               "the photographer (Rachel Michetti)."),
    "rocket": ("scikit-image `data.rocket`: launch of DSCOVR on Falcon 9, captured by SpaceX and "
               "released into the public domain."),
    "motorcycle": ("scikit-image `data.stereo_motorcycle` (left view): Middlebury 2014 stereo "
                   "benchmark (Nesic, Westling, Wang, Kitajima, Krathwohl, Scharstein), "
                   "downsampled 4x by scikit-image."),
    "hubble_deep_field": ("scikit-image `data.hubble_deep_field`: Hubble eXtreme Deep Field, "
                          "NASA; may be freely used (public domain)."),
    "immunohistochemistry": ("scikit-image `data.immunohistochemistry`: IHC-stained colonic "
                             "glands, Center for Microscopy And Molecular Imaging (CMMI); no "
                             "known copyright restrictions."),
    "china": ("scikit-learn `load_sample_image('china.jpg')`: CC BY 2.0, Flickr user "
              "danielbuechele, retrieved by Robert Layton."),
    "grace_hopper": ("matplotlib sample data `grace_hopper.jpg`: official U.S. Navy portrait of "
                     "Grace Hopper (a U.S. government work; matplotlib documents no licence)."),
    "chelsea": ("scikit-image `data.chelsea`: Chelsea the cat; CC0 by the photographer "
                "(Stefan van der Walt)."),
    "flower": ("scikit-learn `load_sample_image('flower.jpg')`: CC BY 2.0, Flickr user vultilion "
               "(scikit-learn's README names danielbuechele), retrieved by Robert Layton."),
}
# `load_dataset(output_dir)` finds the splits from these names. The README deliberately has no
# `configs:` block: with one, datasets' cache key ignores the files' mtimes, so a rebuilt folder
# (or another folder of the same name) would load stale cached data.
SPLIT_FILES = {"train": "train-00000-of-00001.parquet", "test": "test-00000-of-00001.parquet"}
FEATURES = datasets.Features(
    {"source": datasets.Image(), "target": datasets.Image(), "photo": datasets.Value("string")}
)


def add_noise(target: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    """``target`` plus Gaussian noise (std ``sigma`` in [0, 1] units), clipped, 8-bit."""
    clean = np.asarray(target, dtype=np.float64)
    noisy = clean + rng.normal(0.0, 255.0 * sigma, clean.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def permute_channels(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``image`` (RGB) with its channels in one of the 6 orders, drawn uniformly (colour
    augmentation: the 8 train photos alone never show, e.g., the test flower's teal)."""
    return Image.fromarray(np.asarray(image)[..., rng.permutation(3)])


def _crops(name: str, n: int, resolution: int, sigma: float, seed: int,
           colour: bool = False) -> dict[str, list]:
    photo = Image.fromarray(np.ascontiguousarray(PHOTOS[name]()[..., :3]))
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])  # per photo: split-independent
    colours = np.random.default_rng([seed, zlib.crc32(name.encode()), 1])  # crops stay the same
    rows: dict[str, list] = {"source": [], "target": [], "photo": []}
    for _ in range(n):
        side = min(int(resolution * rng.uniform(1.0, 3.0)), *photo.size)
        left = int(rng.integers(0, photo.width - side + 1))
        top = int(rng.integers(0, photo.height - side + 1))
        crop = photo.crop((left, top, left + side, top + side))
        target = crop.resize((resolution, resolution), Image.Resampling.LANCZOS, reducing_gap=3.0)
        if rng.random() < 0.5:
            target = target.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if colour:
            target = permute_channels(target, colours)
        rows["source"].append(add_noise(target, sigma, rng))
        rows["target"].append(target)
        rows["photo"].append(name)
    return rows


def _load(output_dir: Path) -> datasets.DatasetDict:
    files = {split: str(output_dir / f) for split, f in SPLIT_FILES.items()}
    return datasets.load_dataset("parquet", data_files=files, features=FEATURES)


def build_demo_dataset(
    output_dir: str | Path,
    resolution: int = 64,
    crops_per_photo: int = 48,
    test_resolution: int = 128,
    test_crops_per_photo: int = 16,
    noise_sigma: float = 0.15,
    seed: int = 0,
    test_photos: Sequence[str] = ("chelsea", "flower"),
    colour_augment: bool = True,
) -> datasets.DatasetDict:
    """Build (or reuse) the paired demo set in ``output_dir``; returns splits ``train``/``test``.

    ``train``: ``crops_per_photo`` RGB ``resolution`` px crops of each photo not in
    ``test_photos``; ``test``: ``test_crops_per_photo`` ``test_resolution`` px crops of each
    photo in ``test_photos``. ``colour_augment``: each train crop's RGB channels in a random
    order (``permute_channels``); test crops keep their colours.
    """
    if min(resolution, test_resolution, crops_per_photo, test_crops_per_photo) < 1:
        raise ValueError("resolutions and crop counts must be positive")
    if not 0.0 <= noise_sigma <= 1.0:
        raise ValueError(f"noise_sigma ({noise_sigma}) must be in [0, 1]")
    unknown = sorted(set(test_photos) - PHOTOS.keys())
    if unknown or not set(test_photos) or set(test_photos) == PHOTOS.keys():
        raise ValueError(f"test_photos must be a proper, non-empty subset of {list(PHOTOS)}; "
                         f"got {list(test_photos)}")
    splits = {"train": [p for p in PHOTOS if p not in test_photos],
              "test": [p for p in PHOTOS if p in test_photos]}
    sizes = {"train": (resolution, crops_per_photo), "test": (test_resolution, test_crops_per_photo)}
    info = {"format_version": FORMAT_VERSION, "sizes": sizes, "noise_sigma": noise_sigma,
            "seed": seed, "photos": splits, "colour_augment": colour_augment}
    output_dir = Path(output_dir)
    info_file = output_dir / "build_info.json"
    if (info_file.is_file() and json.loads(info_file.read_text()) == json.loads(json.dumps(info))
            and all((output_dir / f).is_file() for f in SPLIT_FILES.values())):
        logger.info("Reusing the demo dataset in %s (same settings)", output_dir)
        return _load(output_dir)

    output_dir.mkdir(parents=True, exist_ok=True)
    info_file.unlink(missing_ok=True)  # a half-written build must not look complete
    for split, names in splits.items():
        rows: dict[str, list] = {"source": [], "target": [], "photo": []}
        for name in names:
            for key, values in _crops(name, sizes[split][1], sizes[split][0], noise_sigma,
                                      seed, colour_augment and split == "train").items():
                rows[key] += values
        dataset = datasets.Dataset.from_dict(rows, features=FEATURES)
        dataset.to_parquet(output_dir / SPLIT_FILES[split])
    colour = "; each train crop's RGB channels in a random order" if colour_augment else ""
    credits = "\n".join(f"- **{name}** ({split}): {CREDITS[name]}"
                        for split, names in splits.items() for name in names)
    (output_dir / "README.md").write_text(f"""---
license: other
---
# wkd_hf demo data: noisy -> clean (Gaussian noise, sigma {noise_sigma:g})

Built by `examples/demo_data.py` from photographs that ship inside scikit-image, scikit-learn and
matplotlib. Random square crops (side 1x-3x the crop size, resized with Lanczos, random horizontal
flip, seed {seed}{colour}): `train` has {crops_per_photo} crops of {resolution} px per photo, `test`
{test_crops_per_photo} crops of {test_resolution} px per photo. `target` is the clean crop;
`source` is the same crop plus Gaussian noise of standard deviation {noise_sigma:g} (in [0, 1]
units, i.e. {255 * noise_sigma:.1f} grey levels), clipped and rounded to 8 bits. The split is by
photo: `test` photos never appear in `train`. Each photo keeps its own licence:

{credits}
""")
    info_file.write_text(json.dumps(info, indent=2) + "\n")
    return _load(output_dir)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--crops_per_photo", type=int, default=48)
    parser.add_argument("--test_resolution", type=int, default=128)
    parser.add_argument("--test_crops_per_photo", type=int, default=16)
    parser.add_argument("--noise_sigma", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data = build_demo_dataset(args.output_dir, args.resolution, args.crops_per_photo,
                              args.test_resolution, args.test_crops_per_photo, args.noise_sigma,
                              args.seed)
    logger.info("Demo dataset in %s: %s", Path(args.output_dir).resolve(),
                ", ".join(f"{split} {len(ds)}" for split, ds in data.items()))


if __name__ == "__main__":
    main()
