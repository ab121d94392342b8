"""COCO json in and out, so the course's code reads a user's own COCO-format data unchanged.

Format (Lin et al. 2014, "Microsoft COCO: Common Objects in Context", and cocodataset.org/#format-data):
``{"images": [{"id", "file_name", "height", "width"}], "annotations": [{"id", "image_id",
"category_id", "bbox": [x, y, w, h], "area", "iscrowd", "segmentation"?}], "categories": [{"id",
"name"}]}``. ``bbox`` is in pixels with ``(x, y)`` the top-left corner, which is the xyxy box
``[x, y, x + w, y + h]``. Annotation ids start at 1: pycocotools' evaluation treats id 0 as
"unmatched".

Choices kept simple on purpose: ``area`` is the mask's pixel count when the dataset has masks,
else the box area; masks are stored as compressed RLE (pycocotools' ``mask.encode``), never as
polygons; every annotation is ``iscrowd: 0``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torch import Tensor

from course_lib._checks import check_boxes, check_tensor
from course_lib.data.shapes import CLASSES


def to_coco_json(
    dataset,
    image_dir: str | os.PathLike | None = None,
    categories: Sequence[str] = CLASSES,
    include_masks: bool = True,
) -> dict:
    """Export a detection dataset to a COCO dict, optionally writing its images as PNG files.

    Args:
        dataset: yields ``(image Tensor[3, H, W] in [0, 1], target)`` with ``target["boxes"]``
            (``Tensor[N, 4]`` xyxy), ``target["labels"]`` (``Tensor[N]``), optionally
            ``target["masks"]`` (``Tensor[N, H, W]``) and ``target["image_id"]`` (default: the index).
        image_dir: where to write ``{image_id:06d}.png`` (created if needed); None writes nothing.
        categories: names indexed by label, index 0 being the background (not exported).
        include_masks: store each mask as RLE ``segmentation`` (when the dataset has masks).

    Returns:
        The COCO dict (``info``, ``images``, ``annotations``, ``categories``).
    """
    if image_dir is not None:
        Path(image_dir).mkdir(parents=True, exist_ok=True)
    images, annotations, seen_ids = [], [], set()
    for index in range(len(dataset)):
        image, target = dataset[index]
        check_tensor(image, "image")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image {index}: expected a Tensor[3, H, W], got shape {tuple(image.shape)}")
        image_id = int(target.get("image_id", index))
        if image_id in seen_ids:
            raise ValueError(f"image {index}: expected unique image ids, got {image_id} twice")
        seen_ids.add(image_id)
        height, width = image.shape[1:]
        file_name = f"{image_id:06d}.png"
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        if image_dir is not None:
            pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)  # (H, W, 3)
            Image.fromarray(pixels.numpy()).save(Path(image_dir) / file_name)
        boxes = check_boxes(target["boxes"], "target['boxes']", allow_degenerate=False)
        labels = target["labels"].tolist()
        masks = target.get("masks")
        for k, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            if not (x2 > x1 and y2 > y1):  # else load_coco_json would refuse the file
                raise ValueError(f"image {index}: expected x2 > x1 and y2 > y1, got box {[x1, y1, x2, y2]}")
            if not 0 < labels[k] < len(categories):
                raise ValueError(
                    f"image {index}: expected labels in 1..{len(categories) - 1}, got {labels[k]}"
                )
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": labels[k],
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": float(masks[k].sum()) if masks is not None else (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
            }
            if masks is not None and include_masks:
                rle = mask_utils.encode(np.asfortranarray(masks[k].numpy().astype(np.uint8)))
                annotation["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            annotations.append(annotation)
    return {
        "info": {"description": f"exported by course_lib from {type(dataset).__name__}"},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": label, "name": name, "supercategory": "shape"}
            for label, name in enumerate(categories)
            if label > 0
        ],
    }


def save_coco_json(coco: dict, path: str | os.PathLike) -> None:
    """Write a COCO dict to ``path`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco))


def load_coco_json(path: str | os.PathLike) -> dict:
    """Read a COCO json file and check it, so a slip in a hand-written file shows at once.

    Each image needs a unique int ``id`` >= 0, a ``file_name`` and int ``height``, ``width`` >= 1;
    each category a unique int ``id`` >= 0 and a ``name``; each annotation a unique int ``id`` >= 1
    (pycocotools' evaluation reads 0 as "unmatched"), an ``image_id`` among the images, a
    ``category_id`` among the categories but 0 (the background of torchvision's detectors) and a
    ``bbox`` of 4 finite numbers with ``w > 0`` and ``h > 0`` (torchvision's detectors reject
    degenerate boxes); ``area`` is finite and >= 0, ``iscrowd`` 0 or 1. Boxes running past their
    image are for ``CocoDetection`` to clip.

    Raises:
        ValueError: naming the file and the image, category or annotation id, or the line and
            column of invalid JSON (chained to the ``json.JSONDecodeError``).
    """
    try:
        coco = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: expected valid JSON, got {error.msg} at line {error.lineno}, "
                         f"column {error.colno}") from error
    _require(coco, ("images", "annotations", "categories"), str(path))
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco[key], list):
            raise ValueError(f"{path}: expected '{key}' to be a list, got {type(coco[key]).__name__}")
    image_ids = set()
    for index, image in enumerate(coco["images"]):
        _require(image, ("id", "file_name", "height", "width"), f"{path}: images[{index}]")
        where = f"{path}: image id {image['id']!r}"
        _check_id(image["id"], image_ids, where, low=0)
        for key in ("height", "width"):
            if not _is_int(image[key]) or image[key] < 1:
                raise ValueError(f"{where}: expected an int {key} >= 1, got {image[key]!r}")
    category_ids = set()
    for index, category in enumerate(coco["categories"]):
        _require(category, ("id", "name"), f"{path}: categories[{index}]")
        _check_id(category["id"], category_ids, f"{path}: category id {category['id']!r}", low=0)
    labels = category_ids - {0}  # label 0 is the background of torchvision's detectors
    kinds = "categories" + (" other than 0 (torchvision's background)" if 0 in category_ids else "")
    annotation_ids = set()
    for index, annotation in enumerate(coco["annotations"]):
        has_id = isinstance(annotation, dict) and "id" in annotation
        where = f"{path}: " + (f"annotation id {annotation['id']!r}" if has_id else f"annotations[{index}]")
        _require(annotation, ("id", "image_id", "category_id", "bbox"), where)
        _check_id(annotation["id"], annotation_ids, where, 1, " (pycocotools' COCOeval reads 0 as unmatched)")
        for key, known, what in (("image_id", image_ids, "images"), ("category_id", labels, kinds)):
            if not _is_int(annotation[key]) or annotation[key] not in known:
                raise ValueError(f"{where}: expected {key} among the file's {what} {sorted(known)[:10]}"
                                 f"{' ...' if len(known) > 10 else ''}, got {annotation[key]!r}")
        bbox = annotation["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_finite, bbox))):
            raise ValueError(f"{where}: expected a bbox [x, y, w, h] of 4 finite numbers, got {bbox!r}")
        if not (bbox[2] > 0 and bbox[3] > 0):
            raise ValueError(f"{where}: expected a bbox [x, y, w, h] with w > 0 and h > 0, got {bbox!r}")
        area = annotation.get("area", 0.0)
        if not (_is_finite(area) and area >= 0):
            raise ValueError(f"{where}: expected a finite area >= 0, got {area!r}")
        if annotation.get("iscrowd", 0) not in (0, 1):
            raise ValueError(f"{where}: expected iscrowd 0 or 1, got {annotation['iscrowd']!r}")
    return coco


class CocoDetection(torch.utils.data.Dataset):
    """A COCO-format dataset read back in the course's ``(image, target)`` format.

    Takes torchvision's arguments in torchvision's order, ``CocoDetection(root, annFile)``, but
    returns the ``target`` dict of torchvision's detectors (and of ``ShapeScenes``) rather than
    torchvision's raw list of annotation dicts. ``dataset[i]`` returns ``image`` (``Tensor[3, H, W]``
    float32 in [0, 1]) and ``target`` with ``boxes`` (``Tensor[N, 4]`` float32 xyxy), ``labels``
    (``Tensor[N]`` int64, the category ids), ``area`` (float32, as in the file), ``iscrowd``
    (int64), ``image_id`` (int), and ``masks`` (``Tensor[N, H, W]`` uint8) only if every annotation
    of the file has a ``segmentation`` (polygons or RLE). Images come in the order of the json's
    ``images`` list.

    The file is checked when the dataset is made (``load_coco_json``). A box running past its image
    is clipped to it (``area`` kept), with one ``UserWarning`` per file load that names the file and
    each clipped annotation's id and original ``bbox``; a box wholly outside is a ``ValueError``.
    That the image file has the json's ``height`` and ``width`` is checked when it is read.

    Args:
        root: folder the ``file_name`` entries are relative to.
        annFile: the COCO json annotation file.
    """

    def __init__(self, root: str | os.PathLike, annFile: str | os.PathLike):
        if Path(root).is_file() or Path(annFile).is_dir():  # the order of this class before torchvision's
            raise ValueError(f"CocoDetection: expected torchvision's order (root, annFile), root the image "
                             f"folder and annFile the json file, got root={str(root)!r} and "
                             f"annFile={str(annFile)!r}: swap them")
        self.coco = load_coco_json(annFile)
        self.root = Path(root)
        self.categories = {c["id"]: c["name"] for c in self.coco["categories"]}
        annotations = self.coco["annotations"]
        self.has_masks = bool(annotations) and all(a.get("segmentation") for a in annotations)
        self._annotations: dict[int, list[dict]] = {record["id"]: [] for record in self.coco["images"]}
        for annotation in self.coco["annotations"]:
            self._annotations[annotation["image_id"]].append(annotation)
        _warn_about_clipping(self.coco, annFile)

    def __len__(self) -> int:
        return len(self.coco["images"])

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        record = self.coco["images"][index]
        with Image.open(self.root / record["file_name"]) as file:
            pixels = np.asarray(file.convert("RGB"))  # (H, W, 3) uint8
        height, width = pixels.shape[:2]
        if (height, width) != (record["height"], record["width"]):
            raise ValueError(f"{record['file_name']}: expected {record['height']}x{record['width']} "
                             f"pixels as in the json, got {height}x{width}")
        image = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255)  # (3, H, W)
        annotations = self._annotations[record["id"]]
        boxes = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        boxes = boxes.clamp(min=0).minimum(torch.tensor([width, height] * 2))  # clipped; warned at load time
        target = {
            "boxes": boxes,
            "labels": torch.tensor([a["category_id"] for a in annotations], dtype=torch.int64),
            "area": torch.tensor([a.get("area", 0.0) for a in annotations], dtype=torch.float32),
            "iscrowd": torch.tensor([a.get("iscrowd", 0) for a in annotations], dtype=torch.int64),
            "image_id": record["id"],
        }
        if self.has_masks:
            masks = [_decode(a["segmentation"], height, width) for a in annotations]
            masks = np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)  # (N, H, W)
            target["masks"] = torch.from_numpy(masks)
        return image, target

    def __repr__(self) -> str:
        return f"CocoDetection({len(self)} images, {len(self.categories)} categories, {self.root})"


def _warn_about_clipping(coco: dict, path: str | os.PathLike) -> None:
    """One warning for all the boxes of a checked COCO dict that run past their image."""
    sizes = {record["id"]: (record["height"], record["width"]) for record in coco["images"]}
    clipped = []
    for annotation in coco["annotations"]:
        height, width = sizes[annotation["image_id"]]
        x, y, w, h = bbox = annotation["bbox"]
        if x >= 0 and y >= 0 and x + w <= width and y + h <= height:
            continue
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise ValueError(f"{path}: annotation id {annotation['id']}: expected a bbox overlapping its "
                             f"image of height {height} and width {width}, got {bbox}")
        clipped.append(f"annotation id {annotation['id']} bbox {bbox}")
    if clipped:
        shown = "; ".join(clipped[:10]) + (f"; and {len(clipped) - 10} more" if len(clipped) > 10 else "")
        warnings.warn(f"{path}: clipped {len(clipped)} box(es) running past the image: {shown}", stacklevel=3)


def _require(record, keys: Sequence[str], where: str) -> None:
    expected = f"{where}: expected a dict with keys {', '.join(map(repr, keys))}"
    if not isinstance(record, dict):
        raise ValueError(f"{expected}, got a {type(record).__name__}")
    missing = [key for key in keys if key not in record]
    if missing:
        raise ValueError(f"{expected}, got no {', '.join(map(repr, missing))}")


def _check_id(value, seen: set, where: str, low: int, why: str = "") -> None:
    """Check an int id >= ``low`` not yet in ``seen``, then add it."""
    if not _is_int(value) or value < low:
        raise ValueError(f"{where}: expected an int id >= {low}{why}, got {value!r}")
    if value in seen:
        raise ValueError(f"{where}: expected unique ids, got {value} twice")
    seen.add(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _decode(segmentation, height: int, width: int) -> np.ndarray:
    """One ``[H, W]`` uint8 mask from COCO polygons, uncompressed or compressed RLE."""
    if isinstance(segmentation, list):  # polygons
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    with warnings.catch_warnings():  # pycocotools' Cython array under numpy 2: harmless
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return mask_utils.decode(rle).astype(np.uint8)
