"""Our Faster R-CNN against torchvision's ``FasterRCNN``, trained the same way, in one run.

The peer is torchvision's own detector (its transform, RPN, RoI heads and losses) on the same
starting point as ours: the pre-trained ``shapes_backbone`` (batch norm frozen) with torchvision's
``FeaturePyramidNetwork`` over its three maps, anchors of 12, 24, 48 and 96 px (one size per
level, 3 aspect ratios), ``MultiScaleRoIAlign`` 7x7, and our sizes where torchvision's defaults
are ImageNet-sized: two fc layers of 256, 128 sampled RoIs per image, 2,000 / 1,000 RPN candidates
and 500 / 300 proposals in training / at test. It is trained on the same 2,000 training
scenes with the same symmetries, optimizer and schedule as ours (``course_lib.train.fit`` with our
recipe's ``TrainConfig``), on as many threads, for the same wall-clock budget: the minutes our
``faster_rcnn`` took (its zoo record), or ``--minutes M``. 20 timed steps measure the peer's
seconds per step, and the number of epochs is chosen to fill the budget; ``--same-steps`` trains
it for our number of steps instead, whatever that takes.

Both are then measured in this run: COCO AP and AP50 on the 200 test scenes, and seconds per image
on one thread (one image at a time, the faster of two runs of each of 20 test scenes).

Run: ``python benchmarks/peer_faster_rcnn.py [--minutes M | --same-steps] [--threads T] [--limit N]`` (``make
bench-peer``); ``--limit`` trains and measures on N scenes only, for a quick check. It takes the
budget plus ~2 minutes; it is not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import OrderedDict

import torch
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN as TorchvisionFasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import FeaturePyramidNetwork, FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from course_lib import nb, zoo
from course_lib.data import NUM_CLASSES
from course_lib.models.backbone import ShapesBackbone
from course_lib.recipes import faster_rcnn as recipe
from course_lib.recipes.detection import detection_losses, evaluate_detector, scenes
from course_lib.train import TrainConfig, fit

LEVELS = ("stride4", "stride8", "stride16")
TIMED_IMAGES = 20


def frozen_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` by torchvision's ``FrozenBatchNorm2d`` with its statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            frozen_batchnorm(child)
    return module


class BackboneWithFPN(nn.Module):
    """``shapes_backbone``'s three maps through torchvision's FPN (plus its max-pool level)."""

    def __init__(self, backbone: ShapesBackbone, out_channels: int = 64) -> None:
        super().__init__()
        self.body = frozen_batchnorm(backbone)
        self.fpn = FeaturePyramidNetwork(
            [backbone.out_channels[level] for level in LEVELS], out_channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = out_channels

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        features = self.body.features(images)
        return self.fpn(OrderedDict((level, features[level]) for level in LEVELS))


def build_peer() -> TorchvisionFasterRCNN:
    """torchvision's FasterRCNN on the pre-trained ``shapes_backbone``, sized for 128-px scenes."""
    backbone = BackboneWithFPN(zoo.load("shapes_backbone"))
    anchors = AnchorGenerator(sizes=((12,), (24,), (48,), (96,)), aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    pooler = MultiScaleRoIAlign(featmap_names=list(LEVELS), output_size=7, sampling_ratio=2)
    hidden = 256  # our head's width, and our RPN's and head's sample sizes below
    return TorchvisionFasterRCNN(
        backbone,
        min_size=128,
        max_size=128,
        image_mean=[0.0, 0.0, 0.0],  # the backbone was trained on images in [0, 1], unnormalized
        image_std=[1.0, 1.0, 1.0],
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=2000,
        rpn_pre_nms_top_n_test=1000,
        rpn_post_nms_top_n_train=500,
        rpn_post_nms_top_n_test=300,
        box_roi_pool=pooler,
        box_head=TwoMLPHead(backbone.out_channels * 7 * 7, hidden),
        box_predictor=FastRCNNPredictor(hidden, NUM_CLASSES + 1),
        box_batch_size_per_image=128,
    )


def train_peer(minutes: float | None, threads: int, limit: int | None) -> tuple[nn.Module, float, int]:
    """Train the peer with our recipe's steps, or for about ``minutes`` of wall clock.

    Returns:
        (model in eval mode, minutes taken, steps).
    """
    torch.set_num_threads(threads)
    data = scenes("train", limit)
    steps_per_epoch = math.ceil(len(data) / recipe.CONFIG.batch_size)
    epochs = recipe.CONFIG.epochs
    if minutes is not None:
        torch.manual_seed(0)
        probe = TrainConfig(**{**recipe.CONFIG.__dict__, "max_steps": 20})
        start = time.perf_counter()
        fit(build_peer(), data, detection_losses, probe, progress=False)
        seconds_per_step = (time.perf_counter() - start) / 20
        epochs = max(1, int(minutes * 60 / seconds_per_step / steps_per_epoch))
    torch.manual_seed(0)
    model = build_peer()
    config = TrainConfig(**{**recipe.CONFIG.__dict__, "epochs": epochs})
    start = time.perf_counter()
    fit(model, data, detection_losses, config, progress=True)
    return model.eval(), (time.perf_counter() - start) / 60, epochs * steps_per_epoch


def seconds_per_image(model: nn.Module, images: list[Tensor]) -> float:
    """Mean over the images of the faster of two single-image runs, on one thread."""
    total = 0.0
    with torch.no_grad():
        for image in images:
            total += nb.best_time(lambda image=image: model([image]), repeats=2, threads=1)
    return total / len(images)


def main(
    minutes: float | None = None,
    threads: int | None = None,
    limit: int | None = None,
    same_steps: bool = False,
) -> list[dict]:
    record = zoo.entry("faster_rcnn")
    threads = record.get("threads", 1) if threads is None else threads
    if not same_steps:
        minutes = record["train_minutes"] if minutes is None else minutes
    peer, peer_minutes, peer_steps = train_peer(minutes, threads, limit)
    ours = zoo.load("faster_rcnn")
    images = [image for image, _ in scenes("test", TIMED_IMAGES)]
    rows = []
    ours_trained = f"{record['train_minutes']:.1f} min, {record.get('threads', 1)} thread(s)"
    for name, model, trained in (
        ("ours (course_lib)", ours, ours_trained),
        ("torchvision FasterRCNN", peer, f"{peer_minutes:.1f} min, {threads} thread(s), {peer_steps} steps"),
    ):
        metrics = evaluate_detector(model, "test", limit)
        rows.append({"name": name, "trained": trained, "AP50": metrics["AP50"], "AP": metrics["AP"],
                     "ms_per_image": 1000 * seconds_per_image(model, images)})
    print(f"{'detector':24s} {'trained':36s} {'AP50':>6s} {'AP':>6s} {'ms/image':>9s}")
    for row in rows:
        numbers = f"{row['AP50']:6.3f} {row['AP']:6.3f} {row['ms_per_image']:9.1f}"
        print(f"{row['name']:24s} {row['trained']:36s} {numbers}")
    ratio = rows[0]["ms_per_image"] / rows[1]["ms_per_image"]
    print(f"time per image, ours / torchvision: {ratio:.2f}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="peer's budget (default: ours)")
    parser.add_argument("--threads", type=int, default=None, help="peer's training threads (default: ours)")
    parser.add_argument("--limit", type=int, default=None, help="train and test scenes, for a quick check")
    parser.add_argument("--same-steps", action="store_true", help="train for our number of steps instead")
    arguments = parser.parse_args()
    main(arguments.minutes, arguments.threads, arguments.limit, arguments.same_steps)
