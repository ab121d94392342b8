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
    """Read a COCO json file and check that it has images, annotations and categories."""
    coco = json.loads(Path(path).read_text())
    missing = [key for key in ("images", "annotations", "categories") if key not in coco]
    if missing:
        raise ValueError(f"{path}: expected a COCO dict with 'images', 'annotations', 'categories', "
                         f"got no {', '.join(map(repr, missing))}")
    return coco


class CocoDetection(torch.utils.data.Dataset):
    """A COCO-format dataset read back in the course's ``(image, target)`` format.

    ``dataset[i]`` returns ``image`` (``Tensor[3, H, W]`` float32 in [0, 1]) and ``target`` with
    ``boxes`` (``Tensor[N, 4]`` float32 xyxy), ``labels`` (``Tensor[N]`` int64, the category ids),
    ``area`` (float32), ``iscrowd`` (int64), ``image_id`` (int), and ``masks`` (``Tensor[N, H, W]``
    uint8) only if every annotation of the file has a ``segmentation`` (polygons or RLE). Images
    come in the order of the json's ``images`` list.

    Args:
        json_path: the annotation file.
        image_dir: folder the ``file_name`` entries are relative to.
    """

    def __init__(self, json_path: str | os.PathLike, image_dir: str | os.PathLike):
        self.coco = load_coco_json(json_path)
        self.image_dir = Path(image_dir)
        self.categories = {c["id"]: c["name"] for c in self.coco["categories"]}
        self.has_masks = bool(self.coco["annotations"]) and all(
            a.get("segmentation") for a in self.coco["annotations"]
        )
        self._annotations: dict[int, list[dict]] = {record["id"]: [] for record in self.coco["images"]}
        for annotation in self.coco["annotations"]:
            self._annotations[annotation["image_id"]].append(annotation)

    def __len__(self) -> int:
        return len(self.coco["images"])

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        record = self.coco["images"][index]
        with Image.open(self.image_dir / record["file_name"]) as file:
            pixels = np.asarray(file.convert("RGB"))  # (H, W, 3) uint8
        height, width = pixels.shape[:2]
        if (height, width) != (record["height"], record["width"]):
            raise ValueError(f"{record['file_name']}: expected {record['height']}x{record['width']} "
                             f"pixels as in the json, got {height}x{width}")
        image = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255)  # (3, H, W)
        annotations = self._annotations[record["id"]]
        boxes = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
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
        return f"CocoDetection({len(self)} images, {len(self.categories)} categories, {self.image_dir})"


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
