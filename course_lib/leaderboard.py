"""Every detector of the course on the same test scenes: COCO metrics, time per image, size, training time.

Usage::

    from course_lib import leaderboard
    rows = leaderboard.leaderboard()             # every available detector, the 200 test scenes
    print(leaderboard.format_table(rows))
    recall, precision = leaderboard.pr_curve("retinanet")

The detections of each detector on a split are cached under ``data/cache/leaderboard``
(git-ignored), in a file named by the detector, the split, the number of scenes and what decides
the detections (``recipes/leaderboard_adapters.detector_key``: the checkpoint's sha256, selective
search's code and settings, the HOG settings), so a second run only re-times the detectors. R-CNN
and Fast R-CNN read their proposals from ``cached_proposals`` (the cache notebooks 05-08 share);
timed, they run selective search on each image, so their time per image is the whole pipeline.

``limit=0`` (no scenes) gives empty results: ``run`` returns ``[]`` and ``leaderboard`` no rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from course_lib import nb, paths, zoo
from course_lib._checks import check_number
from course_lib.data import ShapeScenes
from course_lib.data.coco import save_coco_json, to_coco_json
from course_lib.metrics import evaluate_detections, pr_curves, to_coco
from course_lib.models.proposals import cached_proposals
from course_lib.recipes.detection import scenes
from course_lib.recipes.leaderboard_adapters import Detector, detector_key, hog_svm_detector, zoo_detector

__all__ = ["DETECTORS", "METRICS", "Detector", "DetectorInfo", "available", "detect_all", "evaluate_on",
           "format_table", "leaderboard", "load_detector", "pr_curve", "run", "seconds_per_image",
           "write_image_folder"]

CACHE_DIR = paths.CACHE_DIR / "leaderboard"
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "AR100")  # of evaluate_detections' 12 (no large objects here)


@dataclass(frozen=True)
class DetectorInfo:
    """A detector of the lecture: its leaderboard name, title, year and idea in one line."""

    name: str
    title: str
    year: int
    idea: str


DETECTORS = (  # in the lecture's order
    DetectorInfo("hog_svm", "HOG + SVM", 2005, "HOG of windows slid over a pyramid; a linear SVM per class"),
    DetectorInfo("rcnn", "R-CNN", 2014, "selective search; each region warped through the CNN; SVMs"),
    DetectorInfo("fast_rcnn", "Fast R-CNN", 2015, "one CNN pass per image; RoI pooling of selective search"),
    DetectorInfo("faster_rcnn", "Faster R-CNN", 2015, "a region proposal network on the shared features"),
    DetectorInfo("yolo_v1", "YOLO v1", 2016, "one pass: each grid cell predicts boxes and classes"),
    DetectorInfo("ssd", "SSD", 2016, "default boxes on maps of several strides; classes and offsets"),
    DetectorInfo("retinanet", "RetinaNet", 2017, "FPN, dense anchors; the focal loss tames easy background"),
    DetectorInfo("detr", "DETR", 2020, "a transformer's queries matched one-to-one to objects; no NMS"),
    DetectorInfo("centernet", "CenterNet", 2019, "objects as points: a heatmap peak per object, its size"),
)
_INFO = {info.name: info for info in DETECTORS}


def _check_name(name: str) -> DetectorInfo:
    if name not in _INFO:
        raise ValueError(f"name: expected one of {', '.join(map(repr, _INFO))}, got {name!r}")
    if name != "hog_svm" and name not in zoo.available():
        raise ValueError(f"{name}: expected a detector in the zoo, got one not trained yet; available: "
                         f"{', '.join(map(repr, available()))}")
    return _INFO[name]


def available() -> list[str]:
    """The names of ``DETECTORS`` that can run now (HOG + SVM and those in the zoo), in lecture order."""
    shipped = set(zoo.available())
    return [info.name for info in DETECTORS if info.name == "hog_svm" or info.name in shipped]


def load_detector(name: str) -> Detector:
    """The detector ``name`` as a uniform ``detector(images) -> detections`` (see ``leaderboard_adapters``).

    HOG + SVM is not in the zoo: it is trained here (about a second) and its minutes are measured.
    """
    _check_name(name)
    return hog_svm_detector() if name == "hog_svm" else zoo_detector(name)


def detect_all(detector: Detector, images: Sequence[Tensor], proposals: Sequence[Tensor] | None = None,
               batch_size: int = 8) -> list[dict[str, Tensor]]:
    """``detector`` on ``images`` in batches of ``batch_size``; one detection dict per image."""
    results = []
    for start in range(0, len(images), batch_size):
        batch = list(images[start : start + batch_size])
        boxes = None if proposals is None else list(proposals[start : start + batch_size])
        results.extend(detector(batch, proposals=boxes))
    return results


def _scene_count(split: str, limit: int | None) -> int:
    total = len(ShapeScenes.split(split))
    if limit is None:
        return total
    return min(int(check_number(limit, "limit", low=0, integer=True)), total)


def run(name: str, split: str = "test", limit: int | None = None,
        cache_dir: str | os.PathLike | None = None) -> list[dict[str, Tensor]]:
    """Detections of ``name`` on the first ``limit`` scenes of ``split`` (all if None), cached on disk.

    Args:
        name: one of ``DETECTORS``' names.
        split: a ShapeScenes split.
        limit: the number of scenes (an int >= 0; 0 gives ``[]``).
        cache_dir: where to keep the detections (``CACHE_DIR`` by default).

    Returns:
        One ``{"boxes": Tensor[D, 4] xyxy px, "scores": Tensor[D], "labels": Tensor[D] in 1..5}`` per scene.
    """
    _check_name(name)
    count = _scene_count(split, limit)
    if count == 0:
        return []
    path = Path(cache_dir or CACHE_DIR) / f"{name}_{split}_{count}_{detector_key(name)}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    detector = load_detector(name)
    images = [image for image, _ in scenes(split, count)]
    proposals = cached_proposals(ShapeScenes.split(split), range(count)) if detector.uses_proposals else None
    detections = detect_all(detector, images, proposals)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # this process's own
    torch.save(detections, partial)
    partial.replace(path)  # an interrupted run leaves no half-written cache
    return detections


def seconds_per_image(detector: Detector, images: Sequence[Tensor], repeats: int = 2) -> float:
    """The whole pipeline's time on one image, best of ``repeats`` on one thread, mean over ``images``.

    R-CNN and Fast R-CNN run selective search inside the timed call. The minimum of a few runs is
    what survives a busy machine (``nb.best_time``).

    Raises:
        ValueError: if ``images`` is empty (a mean over no image has no value).
    """
    if len(images) == 0:
        raise ValueError("images: expected at least one image to time, got 0")
    return sum(nb.best_time(lambda image=image: detector([image]), repeats) for image in images) / len(images)


def leaderboard(names: Iterable[str] | None = None, split: str = "test", limit: int | None = None,
                timing_images: int = 5, cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """One row per detector: COCO metrics on the same scenes, time per image, parameters, training time.

    Args:
        names: detectors in the order wanted (default: ``available()``, the lecture's order).
        split, limit, cache_dir: as in :func:`run`.
        timing_images: time on the first this-many scenes of ``split`` (0: not timed, ``ms_per_image`` None).

    Returns:
        Dicts with ``name``, ``title``, ``year``, the ``METRICS`` (-1 where no object counts),
        ``ms_per_image``, ``parameters_m`` (millions) and ``train_minutes`` (the zoo record's; for
        HOG + SVM, measured now). ``[]`` when ``limit`` is 0 or ``names`` is empty.
    """
    names = available() if names is None else list(names)
    for name in names:
        _check_name(name)
    timing_images = int(check_number(timing_images, "timing_images", low=0, integer=True))
    count = _scene_count(split, limit)
    if count == 0:
        return []
    targets = [target for _, target in scenes(split, count)]
    timing_scenes = [image for image, _ in scenes(split, min(timing_images, count))] if timing_images else []
    rows = []
    for name in names:
        stats = evaluate_detections(run(name, split, count, cache_dir), targets)
        detector = load_detector(name)
        seconds = seconds_per_image(detector, timing_scenes) if timing_scenes else None
        info = _INFO[name]
        rows.append({"name": name, "title": info.title, "year": info.year,
                     **{metric: stats[metric] for metric in METRICS},
                     "ms_per_image": None if seconds is None else 1000 * seconds,
                     "parameters_m": detector.parameters / 1e6, "train_minutes": detector.train_minutes})
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """The leaderboard as an aligned text table, one line per row (``-`` for a missing value)."""
    columns = [("detector", "title", "{}"), ("year", "year", "{}"),
               *[(metric, metric, "{:.3f}") for metric in METRICS],
               ("ms/image", "ms_per_image", "{:.1f}"), ("params (M)", "parameters_m", "{:.3f}"),
               ("train (min)", "train_minutes", "{:.2f}")]

    def cell(row: dict, key: str, form: str) -> str:
        value = row.get(key)
        return "-" if value is None or (key in METRICS and value < 0) else form.format(value)

    table = [[header for header, _, _ in columns]]
    table += [[cell(row, key, form) for _, key, form in columns] for row in rows]
    widths = [max(len(line[k]) for line in table) for k in range(len(columns))]
    lines = ["  ".join(text.ljust(width) if k == 0 else text.rjust(width)
                       for k, (text, width) in enumerate(zip(line, widths, strict=True))) for line in table]
    return "\n".join(lines)


def pr_curve(name: str, split: str = "test", limit: int | None = None, iou_threshold: float = 0.5,
             cache_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One precision-recall curve of ``name``: COCO's per-class curves averaged over the classes.

    ``metrics.pr_curves`` gives each class's interpolated precision at the 101 recall points
    0:0.01:1 (100 detections per image, all areas); this is their mean at each point, so its own
    mean is AP50 at ``iou_threshold=0.5`` (AP at that IoU in general).

    Returns:
        ``(recall ndarray[101], precision ndarray[101])``; empty arrays when no scene has an object.
    """
    _check_name(name)
    count = _scene_count(split, limit)
    targets = [target for _, target in scenes(split, count)]
    curves = pr_curves(*to_coco(run(name, split, count, cache_dir), targets), iou_threshold)
    if not curves:
        return np.zeros(0), np.zeros(0)
    recall = next(iter(curves.values()))[0]
    return recall, np.mean([precision for _, precision in curves.values()], axis=0)  # (101,)


def write_image_folder(folder: str | os.PathLike, split: str = "test",
                       indices: Iterable[int] = range(8)) -> tuple[Path, Path]:
    """Write scenes of ``split`` as PNG files and a COCO json, as a user's own data set would come.

    Image ids are the scene indices (files ``{index:06d}.png``). No masks are exported, so each
    ``area`` is the box's, as when the scenes are evaluated directly.

    Returns:
        ``(root, ann_file)``, ready for ``course_lib.data.coco.CocoDetection(root, ann_file)``.
    """
    dataset = ShapeScenes.split(split)
    items = []
    for index in indices:
        image, target = dataset[int(index)]
        items.append((image, {"boxes": target["boxes"], "labels": target["labels"], "image_id": int(index)}))
    root, ann_file = Path(folder) / "images", Path(folder) / "annotations.json"
    save_coco_json(to_coco_json(items, image_dir=root, include_masks=False), ann_file)
    return root, ann_file


def evaluate_on(detector: Detector, dataset, batch_size: int = 8) -> dict[str, float]:
    """The 12 COCO numbers of ``evaluate_detections`` for ``detector`` on any ``(image, target)`` dataset.

    R-CNN and Fast R-CNN run selective search on each image (no cache: the images may be anyone's).
    """
    images, targets = [], []
    for index in range(len(dataset)):
        image, target = dataset[index]
        images.append(image)
        targets.append({key: target[key] for key in ("boxes", "labels", "area", "iscrowd") if key in target})
    return evaluate_detections(detect_all(detector, images, batch_size=batch_size), targets)
