"""Selective-search proposals for R-CNN and Fast R-CNN, with an on-disk cache for training.

ShapeScenes objects are as small as 6 px, and Felzenszwalb's segmentation (inside selective
search) merges such specks into the background at 128 px. Run on the image upsampled 2x (nearest
neighbour), fast mode finds them: on the first 40 test images recall at IoU 0.5 goes from 0.79
(162 proposals per image, 0.14 s) to 0.99 (624 proposals, 0.51 s). The boxes are scaled back to
the original image. This is our choice for small images, not a step of the R-CNN paper.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from course_lib import paths
from course_lib._checks import check_choice, check_number
from course_lib.classical import selective_search
from course_lib.classical.selective_search import MODES

# The files whose code decides the proposals: a change to any of them starts a new cache folder.
SELECTIVE_SEARCH_SOURCES = ("selective_search.py", "similarity.py", "grouping.py")

CACHE_DIR = paths.CACHE_DIR / "proposals"


def _as_uint8(image: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(image, Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image: expected a Tensor[3, H, W] in [0, 1], got shape {tuple(image.shape)}")
        return (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return image


class SelectiveSearchProposer:
    """``proposer(image) -> Tensor[N, 4]``: selective search on the image upsampled ``upsample`` times.

    Args:
        mode: selective search mode (``"single"``, ``"fast"``, ``"quality"``).
        upsample: integer factor of the nearest-neighbour upsampling before the search.
        max_proposals: keep the best-ranked ones (R-CNN uses ~2,000).
    """

    def __init__(self, mode: str = "fast", upsample: int = 2, max_proposals: int = 2000) -> None:
        self.mode = check_choice(mode, MODES, "mode")
        self.upsample = int(check_number(upsample, "upsample", low=1, integer=True))
        self.max_proposals = int(check_number(max_proposals, "max_proposals", low=1, integer=True))

    def __call__(self, image: Tensor | np.ndarray) -> Tensor:
        pixels = _as_uint8(image)  # (H, W, 3)
        if self.upsample > 1:
            pixels = np.repeat(np.repeat(pixels, self.upsample, axis=0), self.upsample, axis=1)
        boxes = selective_search(pixels, mode=self.mode)[: self.max_proposals]  # (N, 4)
        return boxes / self.upsample

    def key(self) -> str:
        """Names the cache folder: mode, upsampling, and a digest of selective search's code."""
        return f"{self.mode}_x{self.upsample}_{selective_search_digest()}"


@functools.cache
def selective_search_digest() -> str:
    """The first 10 hex digits of the sha256 of selective search's source files.

    Part of the proposal cache's key, so that proposals cached before a change to selective search
    are never read after it.
    """
    folder = Path(inspect.getsourcefile(selective_search)).parent
    digest = hashlib.sha256()
    for name in SELECTIVE_SEARCH_SOURCES:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:10]


def cached_proposals(
    dataset,
    indices,
    proposer: SelectiveSearchProposer | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> list[Tensor]:
    """Proposals of ``dataset[i]`` for each ``i``, read from or written to ``cache_dir``.

    The cache is keyed by the dataset's seed and image size and by the proposer's mode and
    upsampling; it lives under ``data/cache`` (git-ignored) and only saves time.
    """
    proposer = proposer or SelectiveSearchProposer()
    folder = (
        Path(cache_dir or CACHE_DIR)
        / f"{type(dataset).__name__}_s{dataset.seed}_{dataset.image_size}px_{proposer.key()}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    result = []
    for index in indices:
        path = folder / f"{int(index):05d}.npy"
        if path.exists():
            boxes = torch.from_numpy(np.load(path))
        else:
            boxes = proposer(dataset.scene(int(index)).image)
            # Written under a name of this process, then renamed: another process reading the
            # cache at the same time (two test workers) never sees half a file.
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            with open(partial, "wb") as file:
                np.save(file, boxes.numpy())
            partial.replace(path)
        result.append(boxes[: proposer.max_proposals])
    return result
