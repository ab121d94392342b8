"""The model zoo: every shipped checkpoint, how it was trained, and what it measured.

The registry is ``data/checkpoints/zoo.json``: for each name, the architecture, the training
recipe (a module of ``course_lib.recipes`` and its hyper-parameters), the checkpoint file, its
sha256, the metrics it reached on the held-out split (``metrics``) and on the first few items of
that split (``quick_metrics``, what the tests re-measure), and the training time.

Usage::

    from course_lib import zoo
    model = zoo.load("faster_rcnn")        # eval mode, sha256 verified
    zoo.available()                        # the names

    python -m course_lib.zoo list
    python -m course_lib.zoo train NAME    # retrain from the recipe, write the checkpoint and its record
    python -m course_lib.zoo verify [--quick] [NAME ...]   # re-measure; exit 1 if a model fell below

A recipe module has ``build() -> nn.Module``, ``train(checkpoint, progress) -> (model, history)``,
``evaluate(model, split, limit) -> dict`` and the constants ``CONFIG``, ``SPLIT``, ``QUICK_SIZE``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import time
from dataclasses import asdict

import torch
from safetensors.torch import load_file
from torch import nn

from course_lib import paths
from course_lib.pretrained import load_torchvision
from course_lib.train import save_weights

__all__ = ["available", "entry", "load", "load_torchvision", "recipe", "train", "verify"]

CHECKPOINT_DIR = paths.CHECKPOINT_DIR
REGISTRY = CHECKPOINT_DIR / "zoo.json"
TRAINING_DIR = paths.CACHE_DIR / "train"
# Re-measured metrics may sit this far below the record (other BLAS builds round differently).
TOLERANCE = 0.005
# name -> (recipe module, architecture), in course order.
RECIPES = {
    "shapes_backbone": (
        "course_lib.recipes.backbone",
        "ShapesBackbone(width=32): small ResNet, maps at strides 4/8/16, GAP, linear; output k = CLASSES[k]",
    ),
    "rcnn": ("course_lib.recipes.rcnn", "R-CNN: selective search, warped crops, backbone, linear SVMs"),
    "fast_rcnn": (
        "course_lib.recipes.fast_rcnn",
        "Fast R-CNN: backbone, RoI max pooling 7x7, 2 fc, softmax + boxes",
    ),
    "faster_rcnn": (
        "course_lib.recipes.faster_rcnn",
        "Faster R-CNN: backbone, RPN (3 sizes x 3 ratios), Fast R-CNN head",
    ),
    "yolo_v1": (
        "course_lib.recipes.yolo_v1",
        "YOLO v1: backbone, stride-8 grid (S = 16), B = 2 boxes and C class probabilities per cell",
    ),
    "ssd": (
        "course_lib.recipes.ssd",
        "SSD: backbone + 1 extra layer, default boxes at strides 4-32 (4 per cell), softmax + boxes",
    ),
    "retinanet": (
        "course_lib.recipes.retinanet",
        "RetinaNet: backbone, FPN strides 4-32, shared class and box subnets, 9 anchors, focal loss",
    ),
    "retinanet_ce": (
        "course_lib.recipes.retinanet_ce",
        "RetinaNet as `retinanet`, trained with the plain cross entropy (the focal-loss ablation)",
    ),
    "centernet": (
        "course_lib.recipes.centernet",
        "CenterNet: backbone, stride-4 map merged top-down, heatmap per class + size + offset, no NMS",
    ),
    "detr": (
        "course_lib.recipes.detr",
        "DETR: backbone, stride-8 tokens, 3+3 transformer layers, 30 queries from the encoder, no NMS",
    ),
    "shapes_classifier": (
        "course_lib.recipes.shapes_classifier",
        "GAPClassifier: 4 x (conv 3x3, BN, ReLU), 3 max pools, GAP, linear; output k = CLASSES[k]",
    ),
    "digits_cnn": (
        "course_lib.recipes.digits_cnn",
        "GAPClassifier: 3 x (conv 3x3, BN, ReLU), 1 max pool, GAP, linear",
    ),
    "scouter_pos": (
        "course_lib.recipes.scouter_pos",
        "SCOUTER+: backbone to stride 8, a slot per class (xSlot, 3 iterations), summed evidence, area loss",
    ),
    "shapes_segmenter": (
        "course_lib.recipes.shapes_segmenter",
        "ShapesSegmenter: backbone + top-down decoder to stride 2, 6 classes per pixel, 64-px scenes",
    ),
    "scouter_neg": (
        "course_lib.recipes.scouter_neg",
        "SCOUTER-: as scouter_pos with the evidence's sign flipped (why not this class)",
    ),
    "shapes_gan": (
        "course_lib.recipes.shapes_gan",
        "DCGAN, 64 px: G from z (64), 4 upsample + conv blocks, weights averaged; D with spectral norm",
    ),
}


def available() -> list[str]:
    """Names of the models whose checkpoint is shipped, in course order."""
    records = _registry()
    return [name for name in RECIPES if name in records]


def entry(name: str) -> dict:
    """The registry record of ``name``: architecture, recipe, checkpoint, sha256, metrics."""
    records = _registry()
    if name not in records:
        valid = ", ".join(repr(known) for known in available()) or "none"
        raise ValueError(f"unknown model {name!r}: expected one of {valid}")
    return records[name]


def recipe(name: str):
    """The recipe module of ``name`` (known even before its checkpoint exists)."""
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(map(repr, RECIPES))}")
    return importlib.import_module(RECIPES[name][0])


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(name: str) -> nn.Module:
    """Build ``name`` and load its shipped checkpoint, refusing a file whose sha256 does not match.

    Returns:
        The model, in eval mode, on the CPU.
    """
    record = entry(name)
    path = CHECKPOINT_DIR / record["checkpoint"]
    if not path.exists():
        raise FileNotFoundError(
            f"{name}: checkpoint {path} is missing; `python -m course_lib.zoo train {name}` rebuilds it"
        )
    actual = sha256_of(path)
    if actual != record["sha256"]:
        raise ValueError(
            f"{name}: checkpoint {path.name} has sha256 {actual}, expected {record['sha256']} "
            f"(the file was changed or corrupted); `python -m course_lib.zoo train {name}` rebuilds it"
        )
    model = recipe(name).build()
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def train(name: str, progress: bool = True, threads: int | None = None) -> dict:
    """Retrain ``name`` from its recipe, write ``data/checkpoints/NAME.safetensors`` and its record.

    Resumes from ``data/cache/train/NAME.state.safetensors`` if a previous run was interrupted.
    Returns the new record; says whether the sha256 equals the one recorded before.

    Training is bit-for-bit reproducible on one machine only with the same number of torch
    threads (a parallel sum adds in another order), so the record keeps the count it was trained
    with and a retrain uses it again (1 unless recorded otherwise).
    """
    module = recipe(name)
    if threads is None:
        threads = _registry().get(name, {}).get("threads", 1)
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        TRAINING_DIR.mkdir(parents=True, exist_ok=True)
        CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
        state_path = TRAINING_DIR / f"{name}.state.safetensors"
        start = time.perf_counter()
        model, history = module.train(checkpoint=state_path, progress=progress)
        minutes = (time.perf_counter() - start) / 60
        record = register(name, model, history, minutes, threads)
        state_path.unlink(missing_ok=True)
    finally:
        torch.set_num_threads(saved_threads)  # the caller's setting, also after an error
    return record


def register(name: str, model: nn.Module, history: list[dict], minutes: float, threads: int) -> dict:
    """Write a trained model's checkpoint and measure it into the registry (what ``train`` ends with)."""
    module = recipe(name)
    path = CHECKPOINT_DIR / f"{name}.safetensors"
    save_weights(path, model, metadata={"name": name})
    record = {
        "architecture": RECIPES[name][1],
        "recipe": {"module": RECIPES[name][0], **asdict(module.CONFIG)},
        "checkpoint": path.name,
        "sha256": sha256_of(path),
        "size_mb": round(path.stat().st_size / 1e6, 2),
        "split": module.SPLIT,
        "metrics": _rounded(module.evaluate(model, module.SPLIT)),
        "quick_size": module.QUICK_SIZE,
        "quick_metrics": _rounded(module.evaluate(model, module.SPLIT, module.QUICK_SIZE)),
        "train_minutes": round(minutes, 1),
        "threads": threads,
        "final_loss": round(sum(row["loss"] for row in history[-20:]) / max(1, len(history[-20:])), 4),
    }
    records = _registry()
    previous = records.get(name, {}).get("sha256")
    records[name] = record
    REGISTRY.write_text(json.dumps(records, indent=2) + "\n")
    same = (
        "first record"
        if previous is None
        else ("same as before" if previous == record["sha256"] else "differs from before")
    )
    print(f"{name}: sha256 {record['sha256']} ({same}), metrics {record['metrics']}")
    return record


def verify(names: list[str] | None = None, quick: bool = False) -> list[dict]:
    """Re-measure shipped models; each row says whether the model still reaches its recorded metrics.

    Args:
        names: models to check (default: all shipped).
        quick: measure on the first ``quick_size`` items of the split (seconds) rather than all.

    Returns:
        ``[{"name", "metric", "recorded", "measured", "ok"}, ...]``, one row per metric.
    """
    rows = []
    for name in names or available():
        record = entry(name)
        model = load(name)
        limit = record["quick_size"] if quick else None
        measured = recipe(name).evaluate(model, record["split"], limit)
        recorded = record["quick_metrics" if quick else "metrics"]
        for metric, value in recorded.items():
            got = float(measured[metric])
            rows.append(
                {
                    "name": name,
                    "metric": metric,
                    "recorded": value,
                    "measured": round(got, 4),
                    "ok": got >= value - TOLERANCE,
                }
            )
    return rows


def table() -> str:
    """The registry as a markdown table (the README's model-zoo table)."""
    lines = ["| model | architecture | held-out metrics | size | training |", "|---|---|---|---:|---:|"]
    for name in available():
        record = entry(name)
        metrics = ", ".join(f"{key} {value:.3f}" for key, value in record["metrics"].items())
        lines.append(
            f"| `{name}` | {record['architecture']} | {record['split']}: {metrics} "
            f"| {record['size_mb']:.1f} MB | {record['train_minutes']:.1f} min |"
        )
    return "\n".join(lines)


def _registry() -> dict:
    if not REGISTRY.exists():
        return {}
    return json.loads(REGISTRY.read_text())


def _rounded(metrics: dict) -> dict:
    return {key: round(float(value), 4) for key, value in metrics.items()}


def main(argv: list[str]) -> int:
    usage = "usage: python -m course_lib.zoo list | train NAME [--threads N] | verify [--quick] [NAME ...]"
    if not argv or argv[0] not in ("list", "train", "verify"):
        print(usage)
        return 2
    if argv[0] == "list":
        for name in available():
            record = entry(name)
            print(f"{name:16s} {record['size_mb']:5.2f} MB  {record['metrics']}  {record['architecture']}")
        return 0
    if argv[0] == "train":
        threads = None
        if len(argv) == 4 and argv[2] == "--threads" and argv[3].isdigit() and int(argv[3]) > 0:
            threads = int(argv[3])
        elif len(argv) != 2:
            print(usage)
            return 2
        train(argv[1], threads=threads)
        return 0
    quick = "--quick" in argv[1:]
    rows = verify([name for name in argv[1:] if name != "--quick"] or None, quick=quick)
    for row in rows:
        status = "ok" if row["ok"] else "BELOW RECORD"
        print(
            f"{row['name']:16s} {row['metric']:10s} recorded {row['recorded']:.4f} "
            f"measured {row['measured']:.4f} {status}"
        )
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
