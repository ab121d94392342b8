"""Every detector of the course behind one call, ``detector(images) -> detections``, for the leaderboard.

Three kinds of detector, one interface (:class:`Detector`):

* the zoo's one-stage detectors and Faster R-CNN: ``model(images)`` as they are;
* R-CNN and Fast R-CNN: ``model(images, proposals=...)``, with selective search run on each image
  when no proposals are passed, so that a timing counts the whole pipeline;
* HOG + SVM (Dalal and Triggs 2005): not in the zoo, because it trains in seconds. It is trained
  on the spot by ``recipes/shape_detector.py`` with the settings of notebook 03 (``HOG_SETTINGS``,
  seeded), and its training time is measured there.

Each detector also says what decides its detections (``key``: the checkpoint's sha256, the
selective search code and settings, or the HOG settings), which names the leaderboard's cache.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib import zoo
from course_lib.classical import sliding_window
from course_lib.models.proposals import SelectiveSearchProposer
from course_lib.recipes import shape_detector

__all__ = [
    "HOG_SETTINGS", "PROPOSAL_DETECTORS", "Detector", "detector_key", "hog_svm_detector", "zoo_detector",
]

# Notebook 03's call, train_shape_detectors(num_images=100, num_mining_images=25), with the seed spelled out.
HOG_SETTINGS = {"num_images": 100, "num_mining_images": 25, "seed": 0}
PROPOSAL_DETECTORS = ("rcnn", "fast_rcnn")  # selective search outside the network


@dataclass
class Detector:
    """``detector(images, proposals=None) -> [{"boxes" Tensor[D, 4] xyxy, "scores" Tensor[D], "labels"}]``.

    Attributes:
        name: the leaderboard name (``"hog_svm"``, ``"rcnn"``, ...).
        predict: ``(images, proposals or None) -> detections``, the model's own call.
        parameters: learned numbers (for HOG + SVM, the SVMs' weights and biases).
        train_minutes: the zoo record's training time, or the measured one for HOG + SVM.
        key: what decides the detections (names the cache).
        uses_proposals: True for R-CNN and Fast R-CNN (selective search proposals).
        model: the underlying ``nn.Module``, or for HOG + SVM the ``{label: SlidingWindowDetector}``.
    """

    name: str
    predict: Callable[[list[Tensor], list[Tensor] | None], list[dict[str, Tensor]]]
    parameters: int
    train_minutes: float
    key: str
    uses_proposals: bool = False
    model: object = None

    @torch.no_grad()
    def __call__(
        self, images: list[Tensor], proposals: list[Tensor] | None = None
    ) -> list[dict[str, Tensor]]:
        """Detections of each image (``list[Tensor[3, H, W]]`` in [0, 1]).

        Args:
            images: the images.
            proposals: for R-CNN and Fast R-CNN, ``list[Tensor[N, 4]]`` (e.g. from ``cached_proposals``);
                None runs selective search on each image. Other detectors refuse them.
        """
        if not isinstance(images, list | tuple):
            raise TypeError(f"images: expected a list of Tensor[3, H, W], got {type(images).__name__}")
        if proposals is not None and not self.uses_proposals:
            raise ValueError(f"proposals: expected None for {self.name} (it finds its own regions), "
                             f"got {type(proposals).__name__}")
        if not images:
            return []
        return self.predict(list(images), proposals)

    def __repr__(self) -> str:
        return (f"Detector({self.name!r}, {self.parameters:,} parameters, "
                f"{self.train_minutes:.1f} training minutes, key {self.key!r})")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _source_digest(*modules) -> str:
    return _digest("".join(inspect.getsource(module) for module in modules))


def detector_key(name: str) -> str:
    """What decides the detections of ``name``, without loading it (see the module docstring)."""
    if name == "hog_svm":
        settings = {**HOG_SETTINGS, **shape_detector.SHAPE_DETECTOR_ARGS}
        code = _source_digest(shape_detector, sliding_window)
        return "hog_" + _digest(json.dumps(settings, sort_keys=True) + code)
    key = zoo.entry(name)["sha256"][:16]
    if name in PROPOSAL_DETECTORS:
        key += "_" + SelectiveSearchProposer().key()
    return key


def zoo_detector(name: str) -> Detector:
    """A zoo model as a :class:`Detector` (its checkpoint's sha256 is checked by ``zoo.load``)."""
    model = zoo.load(name).eval()
    uses_proposals = name in PROPOSAL_DETECTORS

    def predict(images: list[Tensor], proposals: list[Tensor] | None) -> list[dict[str, Tensor]]:
        if uses_proposals:  # proposals=None: the model runs its own SelectiveSearchProposer
            return model(images, proposals=proposals)
        return model(images)

    parameters = sum(parameter.numel() for parameter in model.parameters())
    return Detector(name, predict, parameters, float(zoo.entry(name)["train_minutes"]), detector_key(name),
                    uses_proposals, model)


def hog_svm_detector() -> Detector:
    """HOG + linear SVM, one per class, trained now (about a second on one core) and measured.

    Deterministic: the training crops are drawn from ``HOG_SETTINGS["seed"]`` and the SVMs are
    fitted by LinearSVC's primal solver with ``random_state=0``.

    Returns:
        A :class:`Detector` whose ``train_minutes`` is the measured training time and whose
        ``parameters`` count each class's SVM weights and bias (HOG itself learns nothing).
    """
    start = time.perf_counter()
    detectors = shape_detector.train_shape_detectors(**HOG_SETTINGS)
    minutes = (time.perf_counter() - start) / 60
    parameters = sum(d.svm.coef_.size + d.svm.intercept_.size for d in detectors.values())

    def predict(images: list[Tensor], proposals: list[Tensor] | None) -> list[dict[str, Tensor]]:
        return [shape_detector.detect_shapes(detectors, image) for image in images]

    return Detector("hog_svm", predict, int(parameters), minutes, detector_key("hog_svm"), False, detectors)
