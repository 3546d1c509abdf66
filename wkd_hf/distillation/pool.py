"""CycleGAN's image pool: discriminators see a mix of current and earlier fakes."""

from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """CycleGAN's history of generated images (Shrivastava et al.): the discriminator sees a mix
    of current and past fakes.

    Its randomness comes from its own generator (seeded with ``seed``, default: from torch's
    global seed), not from the global RNG, whose draws depend on when data loaders start; with
    ``state_dict`` (images and generator state) a resumed run replays the pool exactly.
    """

    def __init__(self, pool_size: int = 50, seed: int | None = None):
        self.pool_size = pool_size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(
            torch.initial_seed() % 2**63 if seed is None else seed)

    def query(self, images: Tensor) -> Tensor:
        """images: N x C x H x W (detached) -> N x C x H x W, each either itself or a past fake.

        Stored images follow the incoming batch's device and dtype (a pool restored from a
        checkpoint holds CPU tensors until its first query)."""
        if self.pool_size == 0:
            return images
        self.images = [image.to(images.device, images.dtype) for image in self.images]
        returned = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                returned.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                index = int(torch.randint(0, self.pool_size, (), generator=self.generator))
                returned.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.cat(returned, 0)

    def state_dict(self) -> dict:
        """``{"pool_size": int, "images": [1 x C x H x W], "rng_state": uint8 tensor}``."""
        return {"pool_size": self.pool_size, "images": [image.cpu() for image in self.images],
                "rng_state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.pool_size = state["pool_size"]
        self.images = list(state["images"])
        if state.get("rng_state") is not None:
            self.generator.set_state(state["rng_state"].cpu().to(torch.uint8))

    def snapshot(self) -> list[Tensor]:
        """The stored images (a shallow copy: queries replace entries, never mutate them)."""
        return list(self.images)

    def restore(self, snapshot: list[Tensor]) -> None:
        """Undo the queries made since :meth:`snapshot` (a skipped batch)."""
        self.images = list(snapshot)
