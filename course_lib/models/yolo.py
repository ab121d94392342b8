"""YOLO v1 (Redmon et al. 2016, "You Only Look Once"): detection as one regression on a grid.

The image is divided into an ``S x S`` grid. The cell that contains an object's centre is
*responsible* for it. Every cell predicts ``B`` boxes, each as ``(x, y, sqrt(w), sqrt(h),
confidence)`` (``x, y`` the centre's offset inside the cell, ``w, h`` relative to the image), and
one distribution over the ``C`` classes, shared by its boxes: an output tensor of
``S x S x (5B + C)``, 7 x 7 x 30 in the paper (S = 7, B = 2, C = 20). At test time the score of a
box for class ``c`` is ``confidence * P(c)``, then per-class NMS.

Training minimizes the sum-squared error of Eq. 3 (:func:`yolo_loss`): only the responsible
predictor of an object's cell (the one of its ``B`` boxes with the highest IoU with the object) is
pulled towards the object's box, with weight ``lambda_coord = 5``, and its confidence towards that
IoU; every other predictor's confidence is pulled to 0 with weight ``lambda_noobj = 0.5``, because
most cells hold no object. Square roots of the sides make an error of 2 px weigh more on a small
box than on a large one.

Departures from the paper, for 128-px images with 4-px objects on a CPU:
- a convolutional head on the backbone, no fully connected layers: the grid comes from a stride-8
  map (the stride-16 map merged into it as FPN does), so ``S = 16`` cells of 8 px for a 128-px
  image (the paper's cells are 64 px of a 448-px image);
- the offsets and square-rooted sides go through a sigmoid (the paper's are linear), so they stay
  in [0, 1]; the confidence stays linear (clamped to [0, 1] at test time); the class outputs go
  through a softmax;
- two objects whose centres fall in one cell: the cell is given the larger one, as the paper's
  single class per cell implies; the smaller is lost.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib._checks import check_boxes, check_number, check_tensor
from course_lib.data import NUM_CLASSES
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.detector_io import check_targets
from course_lib.models.neck import top_down_merge
from course_lib.models.one_stage import OneStageDetector


def check_output(output: Tensor, num_boxes: int) -> tuple[int, int, int]:
    """Check a ``Tensor[..., S, S', 5B + C]`` output; return ``(S, S', C)``."""
    check_tensor(output, "output")
    if output.dim() < 3 or output.shape[-1] <= 5 * num_boxes:
        raise ValueError(
            f"output: expected a Tensor[..., S, S, 5B + C] with B = {num_boxes} and C >= 1, "
            f"got shape {tuple(output.shape)}"
        )
    return int(output.shape[-3]), int(output.shape[-2]), int(output.shape[-1]) - 5 * num_boxes


def decode_yolo(output: Tensor, num_boxes: int, cell_size: float) -> tuple[Tensor, Tensor, Tensor]:
    """Every box of an activated output tensor, in pixels.

    Args:
        output (Tensor[S, S', 5B + C]): one image's output after the activations: per cell, ``B``
            times ``(x, y, sqrt(w), sqrt(h), confidence)``, then ``C`` class probabilities.
            ``x, y`` in [0, 1] inside the cell; ``sqrt(w), sqrt(h)`` relative to the grid's extent.
        num_boxes: ``B``.
        cell_size: pixels per cell (the grid covers ``S * cell_size`` pixels).

    Returns:
        ``(boxes Tensor[S*S'*B, 4] xyxy, confidences Tensor[S*S'*B], class_probs Tensor[S*S'*B, C])``,
        in the order cell by cell (row-major), then box by box.
    """
    rows, cols, C = check_output(output, num_boxes)
    boxes = output[..., : 5 * num_boxes].reshape(rows, cols, num_boxes, 5)  # (S, S', B, 5)
    row = torch.arange(rows, dtype=output.dtype, device=output.device)[:, None, None]  # (S, 1, 1)
    col = torch.arange(cols, dtype=output.dtype, device=output.device)[None, :, None]  # (1, S', 1)
    centre_x = (col + boxes[..., 0]) * cell_size  # (S, S', B)
    centre_y = (row + boxes[..., 1]) * cell_size
    width = boxes[..., 2] ** 2 * cols * cell_size
    height = boxes[..., 3] ** 2 * rows * cell_size
    xyxy = torch.stack(
        (centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2), dim=-1
    )  # (S, S', B, 4)
    class_probs = output[..., 5 * num_boxes :]  # (S, S', C)
    class_probs = class_probs[:, :, None, :].expand(rows, cols, num_boxes, C)  # (S, S', B, C)
    return xyxy.reshape(-1, 4), boxes[..., 4].reshape(-1), class_probs.reshape(-1, C)


def yolo_targets(
    boxes: Tensor, labels: Tensor, grid_size: tuple[int, int], cell_size: float, num_classes: int
) -> dict[str, Tensor]:
    """What each cell of the grid must predict for one image.

    The cell containing an object's centre is responsible for it; if two centres fall in one cell,
    the larger object wins (YOLO v1 has one class per cell).

    Args:
        boxes (Tensor[M, 4]): ``xyxy`` ground-truth boxes in pixels; ``labels`` (Tensor[M]) in 1..K.
        grid_size: ``(S, S')`` rows and columns.
        cell_size: pixels per cell.
        num_classes: ``C``.

    Returns:
        ``{"object": Tensor[S, S'] bool, "box": Tensor[S, S', 4] xyxy pixels, "xy": Tensor[S, S', 2]
        centre offsets in the cell, "sqrt_wh": Tensor[S, S', 2] square-rooted sides relative to the
        grid's extent, "classes": Tensor[S, S', C] one-hot}``, zeros where no object.
    """
    check_boxes(boxes, "boxes", allow_degenerate=False)
    check_tensor(labels, "labels")
    if labels.shape != boxes.shape[:1]:
        raise ValueError(
            f"labels: expected a Tensor[{boxes.shape[0]}] (one per box), got shape {tuple(labels.shape)}"
        )
    if labels.numel() and (labels.min() < 1 or labels.max() > num_classes):
        raise ValueError(
            f"labels: expected classes in 1..{num_classes} (0 is background), "
            f"got {sorted(set(labels.tolist()))}"
        )
    rows, cols = grid_size
    device, dtype = boxes.device, torch.float32
    target = {
        "object": torch.zeros(rows, cols, dtype=torch.bool, device=device),
        "box": torch.zeros(rows, cols, 4, dtype=dtype, device=device),
        "xy": torch.zeros(rows, cols, 2, dtype=dtype, device=device),
        "sqrt_wh": torch.zeros(rows, cols, 2, dtype=dtype, device=device),
        "classes": torch.zeros(rows, cols, num_classes, dtype=dtype, device=device),
    }
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for index in areas.argsort(stable=True).tolist():  # smallest first: a larger object overwrites
        box = boxes[index].to(dtype)
        centre_x, centre_y = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
        col = min(cols - 1, max(0, int(centre_x // cell_size)))
        row = min(rows - 1, max(0, int(centre_y // cell_size)))
        target["object"][row, col] = True
        target["box"][row, col] = box
        target["xy"][row, col] = torch.tensor([centre_x / cell_size - col, centre_y / cell_size - row])
        size = (box[2:] - box[:2]) / torch.tensor([cols * cell_size, rows * cell_size], device=device)
        target["sqrt_wh"][row, col] = size.sqrt()
        target["classes"][row, col] = 0.0
        target["classes"][row, col, int(labels[index]) - 1] = 1.0
    return target


def yolo_loss(
    output: Tensor,
    targets: list[dict[str, Tensor]],
    num_boxes: int,
    cell_size: float,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
) -> dict[str, Tensor]:
    """The sum-squared error of YOLO v1 (Eq. 3), each term summed over the grid, averaged over images.

    Args:
        output (Tensor[N, S, S', 5B + C]): the activated output of ``N`` images.
        targets: one :func:`yolo_targets` dict per image.
        num_boxes: ``B``; cell_size: pixels per cell.
        lambda_coord, lambda_noobj: the paper's weights.

    Returns:
        ``{"loss_xy", "loss_wh", "loss_obj", "loss_noobj", "loss_class"}``, each a ``Tensor[]``.
    """
    rows, cols, C = check_output(output, num_boxes)
    N = output.shape[0]
    if len(targets) != N:
        raise ValueError(f"targets: expected one target dict per image ({N}), got {len(targets)}")
    boxes = output[..., : 5 * num_boxes].reshape(N, rows, cols, num_boxes, 5)  # (N, S, S', B, 5)
    object_cell = torch.stack([target["object"] for target in targets])  # (N, S, S')
    gt_box = torch.stack([target["box"] for target in targets])  # (N, S, S', 4)
    # The responsible predictor: of the B boxes of an object's cell, the one of highest IoU with it.
    predicted = torch.stack([decode_yolo(image, num_boxes, cell_size)[0] for image in output.detach()])
    predicted = predicted.view(N, rows, cols, num_boxes, 4)
    iou = _paired_iou(predicted, gt_box)  # (N, S, S', B), 0 where the cell has no object
    responsible = F.one_hot(iou.argmax(dim=-1), num_boxes).bool() & object_cell[..., None]  # (N, S, S', B)
    xy = torch.stack([target["xy"] for target in targets])[..., None, :]  # (N, S, S', 1, 2)
    sqrt_wh = torch.stack([target["sqrt_wh"] for target in targets])[..., None, :]
    classes = torch.stack([target["classes"] for target in targets])  # (N, S, S', C)
    mask = responsible.to(output.dtype)  # (N, S, S', B)
    confidence = boxes[..., 4]  # (N, S, S', B)
    return {
        "loss_xy": lambda_coord * (mask * ((boxes[..., 0:2] - xy) ** 2).sum(-1)).sum() / N,
        "loss_wh": lambda_coord * (mask * ((boxes[..., 2:4] - sqrt_wh) ** 2).sum(-1)).sum() / N,
        "loss_obj": (mask * (confidence - iou) ** 2).sum() / N,
        "loss_noobj": lambda_noobj * ((1 - mask) * confidence**2).sum() / N,
        "loss_class": (object_cell[..., None] * (output[..., 5 * num_boxes :] - classes) ** 2).sum() / N,
    }


def _paired_iou(predicted: Tensor, gt_box: Tensor) -> Tensor:
    """IoU of each predicted box (N, S, S', B, 4) with its cell's ground truth (N, S, S', 4)."""
    gt = gt_box[..., None, :]  # (N, S, S', 1, 4)
    top_left = torch.maximum(predicted[..., :2], gt[..., :2])
    bottom_right = torch.minimum(predicted[..., 2:], gt[..., 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)  # (N, S, S', B)
    area_p = (predicted[..., 2:] - predicted[..., :2]).clamp(min=0).prod(-1)
    area_g = (gt[..., 2:] - gt[..., :2]).clamp(min=0).prod(-1)
    union = area_p + area_g - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


class YOLOv1(OneStageDetector):
    """``model(images, targets) -> losses`` in training, ``model(images) -> detections`` in eval mode.

    Args:
        backbone: a :class:`ShapesBackbone`.
        num_classes: ``C``.
        num_boxes: ``B``, boxes per cell.
        width: channels of the head.
        lambda_coord, lambda_noobj: the loss weights of Eq. 3.
        **kwargs: post-processing (``score_thresh``, ``nms_thresh``, ...), see :class:`OneStageDetector`.
    """

    cell_size = 8  # pixels per grid cell: the stride of the map the grid is read from

    def __init__(
        self,
        backbone: ShapesBackbone | None = None,
        num_classes: int = NUM_CLASSES,
        num_boxes: int = 2,
        width: int = 128,
        lambda_coord: float = 5.0,
        lambda_noobj: float = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        check_number(num_boxes, "num_boxes", low=1, integer=True)
        self.num_boxes = num_boxes
        self.lambda_coord = lambda_coord
        self.lambda_noobj = lambda_noobj
        channels = self.backbone.out_channels
        self.lateral8 = nn.Conv2d(channels["stride8"], width, 1)
        self.lateral16 = nn.Conv2d(channels["stride16"], width, 1)
        self.head = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 5 * num_boxes + num_classes, 1),
        )

    def predict(self, images: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """The activated output tensor of each image, and the images' sizes.

        Returns:
            ``(Tensor[N, S, S', 5B + C], sizes)``: per cell ``B`` times ``(x, y, sqrt(w), sqrt(h),
            confidence)`` after a sigmoid, then ``C`` class probabilities (softmax).
        """
        features, sizes = self.backbone_features(images)
        merged = top_down_merge(self.lateral16(features["stride16"]), self.lateral8(features["stride8"]))
        raw = self.head(merged).permute(0, 2, 3, 1)  # (N, S, S', 5B + C)
        N, rows, cols = raw.shape[:3]
        boxes = raw[..., : 5 * self.num_boxes].reshape(N, rows, cols, self.num_boxes, 5)
        # Offsets and square-rooted sides through a sigmoid; the confidence stays linear, as in the
        # paper: a sigmoid's gradient vanishes at 0, where the sum-squared error pushes most cells.
        boxes = torch.cat([torch.sigmoid(boxes[..., :4]), boxes[..., 4:]], dim=-1).flatten(3)
        classes = torch.softmax(raw[..., 5 * self.num_boxes :], dim=-1)
        return torch.cat([boxes, classes], dim=-1), sizes

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        """Detect, or in training mode return the five terms of the loss (:func:`yolo_loss`)."""
        if self.training:
            targets = check_targets(targets, len(images), self.num_classes)
        output, sizes = self.predict(images)  # (N, S, S', 5B + C)
        rows, cols = output.shape[1:3]
        if self.training:
            cells = [
                yolo_targets(t["boxes"], t["labels"], (rows, cols), self.cell_size, self.num_classes)
                for t in targets
            ]
            return yolo_loss(
                output, cells, self.num_boxes, self.cell_size, self.lambda_coord, self.lambda_noobj
            )
        detections = []
        for image_output, size in zip(output, sizes, strict=True):
            boxes, confidence, class_probs = decode_yolo(image_output, self.num_boxes, self.cell_size)
            scores = confidence.clamp(0, 1)[:, None] * class_probs  # class-specific confidence
            detections.append(self.select_detections(boxes, scores, size))
        return detections
