"""R-CNN (Girshick et al. 2014): regions with CNN features, one forward pass per region.

The pipeline of the lecture's figure, one method per step:

1. :meth:`RCNN.propose`: selective search (up to 2,000 proposals per scene);
2. :meth:`RCNN.warp`: each proposal, with a margin of context, is cut out and warped to
   ``64 x 64`` (the backbone's input size), whatever its aspect ratio (Sec. 2.1, Appendix A);
3. :meth:`RCNN.features`: each warped crop goes through the CNN *on its own*; the stride-16 map
   averaged over a 2x2 grid gives a 1,024-number feature (our "pool5");
4. :meth:`RCNN.classify`: one linear SVM per class scores every feature, and a class-specific
   linear regressor refines its box (Appendix C);
5. per-class NMS (the paper uses IoU 0.3; 0.4 did slightly better on 60 validation scenes here).

The SVMs and regressors are fitted with scikit-learn by ``recipes/rcnn.py`` and stored in this
module's tensors, so the checkpoint is one safetensors file like the others. Running the CNN once
per proposal is what makes R-CNN slow: ``last_timings`` records the seconds of each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib.boxes import BoxCoder, box_iou, clip_boxes_to_image
from course_lib.data import NUM_CLASSES
from course_lib.models.backbone import ShapesBackbone
from course_lib.models.detector_io import check_images, check_targets
from course_lib.models.proposals import SelectiveSearchProposer
from course_lib.nms import fast_batched_nms
from course_lib.roi import fast_roi_align

FEATURE_DIM = 1024  # 256 channels x 2 x 2


class RCNN(nn.Module):
    """``model(images)`` -> detections in eval mode; ``model(images, targets)`` -> SVM and box losses.

    Args:
        backbone: the CNN applied to every warped proposal.
        num_classes: object classes ``K`` (one SVM and one box regressor each).
        proposer: ``image -> Tensor[N, 4]`` proposals (selective search by default).
        warp_size: side of the warped crop.
        context: pixels of context around the proposal in the warped crop (R-CNN uses 16 of 227).
        score_thresh: SVM margin below which a detection is dropped (-1.5: lower gains nothing on val).
        nms_thresh: per-class NMS IoU threshold.
        chunk_size: crops per forward pass of the CNN (memory only).
    """

    def __init__(
        self,
        backbone: ShapesBackbone | None = None,
        num_classes: int = NUM_CLASSES,
        proposer: Callable[[Tensor], Tensor] | None = None,
        warp_size: int = 64,
        context: int = 4,
        score_thresh: float = -1.5,
        nms_thresh: float = 0.4,
        detections_per_img: int = 100,
        chunk_size: int = 512,
    ) -> None:
        super().__init__()
        self.backbone = backbone or ShapesBackbone()
        self.num_classes = num_classes
        self.proposer = proposer or SelectiveSearchProposer()
        self.warp_size, self.context = warp_size, context
        self.score_thresh, self.nms_thresh, self.detections_per_img = (
            score_thresh,
            nms_thresh,
            detections_per_img,
        )
        self.chunk_size = chunk_size
        # Features are standardized before the SVMs; statistics from the training features.
        self.register_buffer("feature_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feature_std", torch.ones(FEATURE_DIM))
        self.svm = nn.Linear(FEATURE_DIM, num_classes)  # row k - 1: the SVM of class k
        self.regressor = nn.Linear(
            FEATURE_DIM, 4 * num_classes
        )  # rows 4(k-1)..4k-1: (dx, dy, dw, dh) of class k
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))  # R-CNN's targets, unweighted
        self.last_timings: dict[str, float] = {}

    def propose(self, image: Tensor) -> Tensor:
        """Step 1: the proposals of one image, Tensor[N, 4]."""
        return self.proposer(image)

    def warp(self, image: Tensor, boxes: Tensor) -> Tensor:
        """Step 2: every box, grown by ``context`` pixels of the warped crop, warped to a square.

        Returns:
            Tensor[N, 3, warp_size, warp_size]: bilinear crops (RoIAlign on the image itself).
        """
        return fast_roi_align(
            image[None], [self.context_boxes(boxes)], self.warp_size, spatial_scale=1.0, sampling_ratio=2,
            aligned=True,
        )

    def context_boxes(self, boxes: Tensor) -> Tensor:
        """The image region each warped crop covers: the box grown by the context margin, Tensor[N, 4].

        ``context`` pixels of the ``warp_size`` crop show the surroundings, so the box fills the
        middle ``warp_size - 2 context`` and the crop covers ``warp_size / (warp_size - 2 context)``
        times the box around its centre (a side of at least 1 pixel). The regions may leave the
        image; the warp reads 0 there.
        """
        scale = self.warp_size / (self.warp_size - 2 * self.context)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2  # (N, 2)
        half = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1) / 2 * scale  # (N, 2)
        return torch.cat([centre - half, centre + half], dim=1)  # (N, 4)

    def features(self, crops: Tensor) -> Tensor:
        """Step 3: the CNN on every crop, one at a time in spirit (in chunks here), Tensor[N, 1024].

        The deepest map averaged over each quarter of the crop: the classifier's global average
        (the mean of the four) and where in the crop the evidence lies, which box regression needs.
        """
        outputs = []
        for chunk in crops.split(self.chunk_size):
            stride16 = self.backbone.features(chunk)["stride16"]  # (n, 256, 4, 4)
            outputs.append(F.adaptive_avg_pool2d(stride16, 2).flatten(1))  # (n, 1024)
        if not outputs:
            return crops.new_zeros(0, FEATURE_DIM)
        return torch.cat(outputs)

    def classify(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Step 4: ``(SVM scores Tensor[N, K], box deltas Tensor[N, 4 K])`` from the features."""
        standardized = (features - self.feature_mean) / self.feature_std  # (N, 1024)
        return self.svm(standardized), self.regressor(standardized)

    def detect(
        self, scores: Tensor, deltas: Tensor, boxes: Tensor, image_size: tuple[int, int]
    ) -> dict[str, Tensor]:
        """Step 5: class-specific boxes, score threshold, per-class NMS."""
        K = self.num_classes
        decoded = clip_boxes_to_image(
            self.box_coder.decode(deltas, boxes).view(-1, 4), image_size
        )  # (N*K, 4)
        flat_scores = scores.reshape(-1)  # (N*K,)
        labels = torch.arange(1, K + 1, device=boxes.device).repeat(len(boxes))  # (N*K,)
        keep = (flat_scores > self.score_thresh) & ((decoded[:, 2:] - decoded[:, :2]) >= 1).all(dim=1)
        decoded, flat_scores, labels = decoded[keep], flat_scores[keep], labels[keep]
        kept = fast_batched_nms(decoded, flat_scores, labels, self.nms_thresh)[: self.detections_per_img]
        return {"boxes": decoded[kept], "scores": flat_scores[kept], "labels": labels[kept]}

    def forward(
        self, images: list[Tensor], targets: list[dict] | None = None, proposals: list[Tensor] | None = None
    ):
        """Detect, or in training mode return the SVM and box-regression losses.

        Args:
            images: ``list[Tensor[3, H, W]]`` in [0, 1].
            targets: in training, one ``{"boxes": Tensor[M, 4] xyxy, "labels": Tensor[M] in 1..K}``
                per image.
            proposals: ``list[Tensor[N, 4]]`` xyxy, one per image; selective search if ``None``.

        Returns:
            Training: ``{"loss_svm": Tensor[], "loss_box_reg": Tensor[]}``. Eval: one
            ``{"boxes": Tensor[D, 4], "scores": Tensor[D], "labels": Tensor[D]}`` per image (SVM
            margins as scores), and the seconds of each step in ``self.last_timings``.
        """
        images = check_images(images)
        if self.training:
            return self.losses(images, check_targets(targets, len(images), self.num_classes), proposals)
        timings = dict.fromkeys(("proposals", "warp", "features", "classify", "nms"), 0.0)
        results = []
        for index, image in enumerate(images):
            clock = time.perf_counter()
            boxes = self.propose(image) if proposals is None else proposals[index]
            clock = _tick(timings, "proposals", clock)
            crops = self.warp(image, boxes)  # (N, 3, S, S)
            clock = _tick(timings, "warp", clock)
            features = self.features(crops)  # (N, 1024)
            clock = _tick(timings, "features", clock)
            scores, deltas = self.classify(features)  # (N, K), (N, 4K)
            clock = _tick(timings, "classify", clock)
            results.append(self.detect(scores, deltas, boxes, tuple(image.shape[-2:])))
            _tick(timings, "nms", clock)
        self.last_timings = timings
        return results

    def losses(
        self, images: list[Tensor], targets: list[dict], proposals: list[Tensor] | None
    ) -> dict[str, Tensor]:
        """The objectives the recipe minimizes with scikit-learn, as differentiable losses.

        ``loss_svm``: the squared hinge loss (LinearSVC's) of every class's SVM over proposals and
        ground-truth boxes, positives being the ground truth of that class and negatives proposals
        with IoU < 0.3 with all of it (Sec. 2.3); ``loss_box_reg``: squared error of the deltas of
        proposals with IoU >= 0.6 with a ground-truth box (Appendix C).
        """
        features, svm_labels, regression = [], [], []
        for index, (image, target) in enumerate(zip(images, targets, strict=True)):
            boxes = self.propose(image) if proposals is None else proposals[index]
            boxes, labels, deltas, classes = training_targets(boxes, target, self.num_classes)
            features.append(self.features(self.warp(image, boxes)))
            svm_labels.append(labels)
            regression.append((deltas, classes))
        scores, predicted = self.classify(torch.cat(features))  # (N, K), (N, 4K)
        labels = torch.cat(svm_labels)  # (N, K) in {1, -1, 0 = ignored}
        used = labels != 0
        loss_svm = (F.relu(1 - labels[used] * scores[used]) ** 2).mean() if used.any() else scores.sum() * 0
        deltas = torch.cat([d for d, _ in regression])  # (P, 4)
        classes = torch.cat([c for _, c in regression])  # (P,) in 0..K (0 = no regression target)
        rows = torch.nonzero(classes > 0)[:, 0]
        if rows.numel():
            chosen = predicted.view(len(predicted), -1, 4)[rows, classes[rows] - 1]  # (P+, 4)
            loss_box = F.mse_loss(chosen, deltas[rows])
        else:
            loss_box = predicted.sum() * 0
        return {"loss_svm": loss_svm, "loss_box_reg": loss_box}


def _tick(timings: dict[str, float], step: str, clock: float) -> float:
    now = time.perf_counter()
    timings[step] += now - clock
    return now


def training_targets(
    proposals: Tensor, target: dict, num_classes: int, negative_iou: float = 0.3, regression_iou: float = 0.6
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """R-CNN's training labels for one image: per-class SVM labels and box-regression targets.

    The ground-truth boxes are appended to the proposals. For the SVM of class ``k`` (Sec. 2.3), the
    ground-truth boxes of class ``k`` are positive (+1), regions with IoU < ``negative_iou`` with
    every one of them are negative (-1), the rest is ignored (0). A region with IoU >=
    ``regression_iou`` with a ground-truth box learns to regress onto it (Appendix C).

    Returns:
        ``(boxes Tensor[N, 4], svm_labels Tensor[N, K], deltas Tensor[N, 4], classes Tensor[N])``;
        ``classes`` is the regression class ``1..K``, or 0 for no regression target.
    """
    gt_boxes, gt_labels = target["boxes"].to(proposals.dtype), target["labels"]
    boxes = torch.cat([proposals, gt_boxes])  # (N, 4)
    device = boxes.device
    svm_labels = torch.full((len(boxes), num_classes), -1, dtype=torch.int64, device=device)  # (N, K)
    deltas = torch.zeros(len(boxes), 4, device=device)  # (N, 4)
    classes = torch.zeros(len(boxes), dtype=torch.int64, device=device)  # (N,)
    if len(gt_boxes) == 0:
        return boxes, svm_labels, deltas, classes
    iou = box_iou(boxes, gt_boxes)  # (N, M)
    for k in range(1, num_classes + 1):
        of_class = gt_labels == k  # (M,)
        if of_class.any():
            near = iou[:, of_class].max(dim=1).values >= negative_iou  # (N,)
            svm_labels[near, k - 1] = 0
    is_gt = torch.arange(len(boxes), device=device) >= len(proposals)
    svm_labels[is_gt] = torch.where(
        gt_labels[:, None] == torch.arange(1, num_classes + 1, device=device), 1, svm_labels[is_gt]
    )
    best_iou, matched = iou.max(dim=1)  # (N,)
    rows = torch.nonzero(best_iou >= regression_iou)[:, 0]
    if rows.numel():
        deltas[rows] = BoxCoder((1.0, 1.0, 1.0, 1.0)).encode(gt_boxes[matched[rows]], boxes[rows])
        classes[rows] = gt_labels[matched[rows]]
    return boxes, svm_labels, deltas, classes
