"""Datasets of the course: generated scenes and crops, COCO json in/out, bundled photos, noisy detections."""

from course_lib.data._canvas import Scene
from course_lib.data.annotations import load_photo_annotations
from course_lib.data.coco import CocoDetection, load_coco_json, save_coco_json, to_coco_json
from course_lib.data.noisy import noisy_detections
from course_lib.data.photos import PHOTO_NAMES, TEXTURE_NAMES, load_photo
from course_lib.data.shapes import CLASSES, NUM_CLASSES, ShapeCrops, ShapeScenes, describe

__all__ = [
    "CLASSES",
    "NUM_CLASSES",
    "PHOTO_NAMES",
    "TEXTURE_NAMES",
    "CocoDetection",
    "Scene",
    "ShapeCrops",
    "ShapeScenes",
    "describe",
    "load_coco_json",
    "load_photo",
    "load_photo_annotations",
    "noisy_detections",
    "save_coco_json",
    "to_coco_json",
]
