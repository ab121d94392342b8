"""Box primitives: formats, areas, IoU and GIoU, clipping, and the R-CNN box regression code.

Boxes are ``Tensor[N, 4]`` in ``(x1, y1, x2, y2)`` pixels unless a name or an argument says
otherwise. Names, argument order and results are those of ``torchvision.ops`` (and of
``torchvision.models.detection._utils.BoxCoder``), so either library can stand in for the other.
Where we differ, on purpose, the docstring says so:

* IoU and GIoU never return NaN. Two boxes of zero area (say two identical points) have a union of
  zero; torchvision then returns ``0 / 0 = NaN``, we return an IoU of 0: there is no area to share.
* Boxes with ``x2 < x1`` or ``y2 < y1`` are rejected with a ``ValueError`` instead of silently
  giving negative areas. Zero-width and zero-height boxes are accepted.
* Half-precision boxes are computed in float32 (torchvision upcasts part of the way).

As in torchvision, ``box_area``, ``box_iou`` and ``generalized_box_iou`` also take integer boxes
(areas in the integer dtype, IoU and GIoU in float32); the other functions here, and NMS, need
floating-point boxes and say so.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from course_lib._checks import check_boxes, check_choice, check_number, check_tensor

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def upcast_boxes(boxes: Tensor) -> Tensor:
    """Boxes in the dtype that areas and IoUs are computed in: float32 or float64.

    float16 and bfloat16 overflow at 65504, the area of a 256 x 256 box, so they are computed in
    float32; float32 and float64 boxes come back unchanged (not copied). Integer boxes become
    int32 unless they are int32 or int64 already (torchvision's ``_upcast``). The areas, IoUs and
    GIoUs of this module and every NMS of ``course_lib.nms`` go through it, so they agree on the
    dtype.

    Args:
        boxes (Tensor[N, 4]): floating-point or integer boxes (not checked).

    Returns:
        Tensor[N, 4]: ``boxes`` itself if float32, float64, int32 or int64, else an upcast copy.
    """
    if boxes.is_floating_point():
        return boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()
    return boxes if boxes.dtype in (torch.int32, torch.int64) else boxes.int()  # torchvision's rule


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes between the ``xyxy``, ``xywh`` and ``cxcywh`` formats.

    ``xyxy`` is (x1, y1, x2, y2), the corners; ``xywh`` is (x1, y1, width, height), as COCO json;
    ``cxcywh`` is (centre x, centre y, width, height), as YOLO and DETR predict.

    Args:
        boxes (Tensor[N, 4]): boxes in ``in_fmt``.
        in_fmt: format of ``boxes``.
        out_fmt: format wanted.

    Returns:
        Tensor[N, 4]: the boxes in ``out_fmt`` (a copy, also when the formats are equal).
    """
    check_boxes(boxes)
    check_choice(in_fmt, BOX_FORMATS, "in_fmt")
    check_choice(out_fmt, BOX_FORMATS, "out_fmt")
    if in_fmt == out_fmt:
        return boxes.clone()
    # Like torchvision, go through xyxy: two short conversions instead of six.
    if in_fmt == "xywh":
        x1, y1, width, height = boxes.unbind(1)  # 4 x (N,)
        x2, y2 = x1 + width, y1 + height
    elif in_fmt == "cxcywh":
        centre_x, centre_y, width, height = boxes.unbind(1)  # 4 x (N,)
        x1, y1 = centre_x - 0.5 * width, centre_y - 0.5 * height
        x2, y2 = centre_x + 0.5 * width, centre_y + 0.5 * height
    else:
        x1, y1, x2, y2 = boxes.unbind(1)  # 4 x (N,)
    if out_fmt == "xywh":
        return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=1)  # (N, 4)
    if out_fmt == "cxcywh":
        return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=1)  # (N, 4)
    return torch.stack((x1, y1, x2, y2), dim=1)  # (N, 4)


def box_area(boxes: Tensor) -> Tensor:
    """Area of each box, ``(x2 - x1) * (y2 - y1)``.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes with ``x1 <= x2`` and ``y1 <= y2``.

    Returns:
        Tensor[N]: the areas.
    """
    return _area(upcast_boxes(check_boxes(boxes, allow_degenerate=False, allow_integer=True)))


def _area(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # (N,)


def box_inter_union(
    corners1: Tensor, area1: Tensor, corners2: Tensor, area2: Tensor
) -> tuple[Tensor, Tensor]:
    """Pairwise intersection and union areas of two sets of boxes given as rows, without checks.

    The common core of ``box_iou``, ``generalized_box_iou`` and the fast NMS kernel
    (``course_lib.nms.fast``). It takes the boxes transposed, with rows x1, y1, x2, y2:
    broadcasting contiguous rows is about five times faster than the strided columns of a
    ``Tensor[N, 4]``. The arithmetic (operations, their order, the dtype) is exactly that of
    torchvision's ``box_iou`` and of its C++ ``nms`` kernel, so an IoU that lands exactly on a
    threshold lands there in both libraries. Ops run in place where possible: at 5000 x 5000 every
    temporary is 100 MB.

    Args:
        corners1 (Tensor[4, N]): rows x1, y1, x2, y2 of the first boxes (``boxes1.T``).
        area1 (Tensor[N]): their areas.
        corners2 (Tensor[4, M]): rows x1, y1, x2, y2 of the second boxes.
        area2 (Tensor[M]): their areas.

    Returns:
        ``(inter, union)``, two Tensor[N, M]: the intersection and union areas of each pair.
        ``inter / union`` is the IoU, NaN where both boxes have zero area.
    """
    x1a, y1a, x2a, y2a = corners1[:, :, None].unbind(0)  # 4 x (N, 1)
    x1b, y1b, x2b, y2b = corners2.unbind(0)  # 4 x (M,)
    # The intersection is a rectangle whose sides are 0 when the boxes do not overlap.
    width = torch.minimum(x2a, x2b).sub_(torch.maximum(x1a, x1b)).clamp_(min=0)  # (N, M)
    height = torch.minimum(y2a, y2b).sub_(torch.maximum(y1a, y1b)).clamp_(min=0)  # (N, M)
    inter = width.mul_(height)  # (N, M)
    union = (area1[:, None] + area2).sub_(inter)  # (N, M)
    return inter, union


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union (Jaccard index) of every pair of boxes.

    ``IoU(A, B) = area(A & B) / area(A | B)``, from 0 (disjoint) to 1 (identical). The lecture's
    detection criterion (a detection is correct when IoU >= 0.5) and NMS both rest on it.

    Args:
        boxes1 (Tensor[N, 4]): ``xyxy`` boxes.
        boxes2 (Tensor[M, 4]): ``xyxy`` boxes.

    Returns:
        Tensor[N, M]: the IoU of ``boxes1[i]`` and ``boxes2[j]`` at ``[i, j]``. Where the union is 0
        (both boxes have zero area) the IoU is 0, where torchvision returns NaN.
    """
    boxes1 = upcast_boxes(check_boxes(boxes1, "boxes1", allow_degenerate=False, allow_integer=True))
    boxes2 = upcast_boxes(check_boxes(boxes2, "boxes2", allow_degenerate=False, allow_integer=True))
    inter, union = box_inter_union(boxes1.T.contiguous(), _area(boxes1), boxes2.T.contiguous(), _area(boxes2))
    inter, union = _as_float(inter), _as_float(union)
    # 0 / 0 happens only for two boxes of zero area: call their overlap 0, not NaN.
    return inter.div_(union).nan_to_num_(nan=0.0)  # (N, M)


def _as_float(values: Tensor) -> Tensor:
    """Integer areas as float32 for a true division (what ``int / int`` gives in torch), else as is."""
    return values if values.is_floating_point() else values.float()


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Generalized IoU of every pair of boxes (Rezatofighi et al. 2019, Algorithm 1).

    ``GIoU = IoU - (area(C) - area(A | B)) / area(C)`` with ``C`` the smallest box enclosing both.
    It lies in ``(-1, 1]`` and, unlike IoU, still says how far apart two disjoint boxes are, which
    is why DETR uses ``1 - GIoU`` as a loss.

    Args:
        boxes1 (Tensor[N, 4]): ``xyxy`` boxes.
        boxes2 (Tensor[M, 4]): ``xyxy`` boxes.

    Returns:
        Tensor[N, M]: the GIoU of each pair. Two boxes of zero area have IoU 0 (see ``box_iou``),
        so their GIoU is -1 when the box enclosing them has an area and 0 when it has none either;
        torchvision returns NaN for both.
    """
    boxes1 = upcast_boxes(check_boxes(boxes1, "boxes1", allow_degenerate=False, allow_integer=True))
    boxes2 = upcast_boxes(check_boxes(boxes2, "boxes2", allow_degenerate=False, allow_integer=True))
    corners1, corners2 = boxes1.T.contiguous(), boxes2.T.contiguous()  # (4, N), (4, M)
    inter, union = box_inter_union(corners1, _area(boxes1), corners2, _area(boxes2))
    inter, union = _as_float(inter), _as_float(union)
    iou = (inter / union).nan_to_num_(nan=0.0)  # (N, M)
    x1a, y1a, x2a, y2a = corners1[:, :, None].unbind(0)  # 4 x (N, 1)
    x1b, y1b, x2b, y2b = corners2.unbind(0)  # 4 x (M,)
    # The smallest box enclosing both.
    enclosing_width = torch.maximum(x2a, x2b).sub_(torch.minimum(x1a, x1b))  # (N, M)
    enclosing_height = torch.maximum(y2a, y2b).sub_(torch.minimum(y1a, y1b))  # (N, M)
    enclosing = _as_float(enclosing_width.mul_(enclosing_height))  # (N, M)
    # GIoU = IoU - (C - U) / C, computed in place as IoU + (U - C) / C (the same floats).
    # A zero enclosing area implies a zero union: the penalty is 0 / 0, taken as 0.
    return iou.add_(union.sub_(enclosing).div_(enclosing).nan_to_num_(nan=0.0))  # (N, M)


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip boxes so that they lie inside an image of ``size = (height, width)``.

    Args:
        boxes (Tensor[N, 4]): ``xyxy`` boxes.
        size: ``(height, width)`` of the image, in pixels (the order of ``Tensor[C, H, W]``).

    Returns:
        Tensor[N, 4]: a clipped copy; x in ``[0, width]``, y in ``[0, height]``.
    """
    check_boxes(boxes)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"size: expected (height, width), got {size!r}")
    height = check_number(size[0], "size[0] (height)", low=0)
    width = check_number(size[1], "size[1] (width)", low=0)
    clipped = boxes.clone()
    clipped[:, 0::2] = clipped[:, 0::2].clamp(min=0, max=width)  # x1, x2
    clipped[:, 1::2] = clipped[:, 1::2].clamp(min=0, max=height)  # y1, y2
    return clipped


class BoxCoder:
    """Encode boxes as regression targets relative to anchors or proposals, and decode them back.

    A box ``G`` is described relative to a reference box ``P`` (an anchor or a proposal) by
    (Girshick et al. 2014, R-CNN, Appendix C; Ren et al. 2015, Faster R-CNN, Eq. 2)::

        dx = wx * (Gx - Px) / Pw        dw = ww * log(Gw / Pw)
        dy = wy * (Gy - Py) / Ph        dh = wh * log(Gh / Ph)

    with ``(x, y)`` the box centre and ``(w, h)`` its size. The weights rescale the targets to unit
    variance: torchvision uses (1, 1, 1, 1) in the RPN and (10, 10, 5, 5) in the RoI heads. The same
    formulas as torchvision's ``BoxCoder.encode_single`` / ``decode_single``.

    Args:
        weights: ``(wx, wy, ww, wh)``, positive.
        bbox_xform_clip: largest ``dw``, ``dh`` allowed when decoding, so that ``exp`` cannot
            blow a box up more than 1000 / 16 times.
    """

    def __init__(
        self,
        weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
        bbox_xform_clip: float = math.log(1000.0 / 16),
    ) -> None:
        if not isinstance(weights, (tuple, list)) or len(weights) != 4:
            raise ValueError(f"weights: expected 4 numbers (wx, wy, ww, wh), got {weights!r}")
        for name, weight in zip(("wx", "wy", "ww", "wh"), weights, strict=True):
            check_number(weight, f"weights {name}", low=0)
            if weight == 0:
                raise ValueError(f"weights {name}: expected a positive number, got {weight!r}")
        self.weights = tuple(float(weight) for weight in weights)
        self.bbox_xform_clip = check_number(bbox_xform_clip, "bbox_xform_clip")

    def encode(self, reference_boxes: Tensor, proposals: Tensor) -> Tensor:
        """Regression targets that move each proposal onto its reference (ground-truth) box.

        Args:
            reference_boxes (Tensor[N, 4]): ``xyxy`` target boxes ``G``, positive width and height.
            proposals (Tensor[N, 4]): ``xyxy`` anchors or proposals ``P``, positive width and height.

        Returns:
            Tensor[N, 4]: ``(dx, dy, dw, dh)`` per row.
        """
        check_boxes(reference_boxes, "reference_boxes")
        check_boxes(proposals, "proposals")
        if reference_boxes.shape != proposals.shape:
            raise ValueError(
                "reference_boxes, proposals: expected the same shape, "
                f"got {tuple(reference_boxes.shape)} and {tuple(proposals.shape)}"
            )
        proposals = proposals.to(reference_boxes.dtype)
        gt_x, gt_y, gt_w, gt_h = self._centre_size(reference_boxes, "reference_boxes")  # 4 x (N,)
        ex_x, ex_y, ex_w, ex_h = self._centre_size(proposals, "proposals")  # 4 x (N,)
        wx, wy, ww, wh = self.weights
        dx = wx * (gt_x - ex_x) / ex_w
        dy = wy * (gt_y - ex_y) / ex_h
        dw = ww * torch.log(gt_w / ex_w)
        dh = wh * torch.log(gt_h / ex_h)
        return torch.stack((dx, dy, dw, dh), dim=1)  # (N, 4)

    def decode(self, deltas: Tensor, boxes: Tensor) -> Tensor:
        """Apply regression deltas to boxes: the inverse of :meth:`encode`.

        Args:
            deltas (Tensor[N, 4 * K]): ``(dx, dy, dw, dh)`` per box, or K such groups per box for
                class-specific regression (Fast R-CNN's head predicts one group per class).
            boxes (Tensor[N, 4]): ``xyxy`` anchors or proposals the deltas are relative to.

        Returns:
            Tensor[N, 4 * K]: the decoded ``xyxy`` boxes, in the dtype of ``deltas``.
        """
        check_tensor(deltas, "deltas")
        check_boxes(boxes)
        if deltas.dim() != 2 or deltas.shape[1] % 4 or deltas.shape[1] == 0:
            raise ValueError(f"deltas: expected a Tensor[N, 4 * K], got shape {tuple(deltas.shape)}")
        if deltas.shape[0] != boxes.shape[0]:
            raise ValueError(
                f"deltas, boxes: expected the same number of rows, got {deltas.shape[0]} and {boxes.shape[0]}"
            )
        if not deltas.is_floating_point():
            raise TypeError(f"deltas: expected a floating-point tensor, got dtype {deltas.dtype}")
        boxes = boxes.to(deltas.dtype)
        widths = boxes[:, 2] - boxes[:, 0]  # (N,)
        heights = boxes[:, 3] - boxes[:, 1]  # (N,)
        ctr_x = boxes[:, 0] + 0.5 * widths  # (N,)
        ctr_y = boxes[:, 1] + 0.5 * heights  # (N,)

        wx, wy, ww, wh = self.weights
        dx = deltas[:, 0::4] / wx  # (N, K)
        dy = deltas[:, 1::4] / wy  # (N, K)
        # Clamp before exp: an untrained head can predict dw = 50, and exp(50) is inf.
        dw = (deltas[:, 2::4] / ww).clamp(max=self.bbox_xform_clip)  # (N, K)
        dh = (deltas[:, 3::4] / wh).clamp(max=self.bbox_xform_clip)  # (N, K)

        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]  # (N, K)
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]  # (N, K)
        half_w = 0.5 * (torch.exp(dw) * widths[:, None])  # (N, K)
        half_h = 0.5 * (torch.exp(dh) * heights[:, None])  # (N, K)
        decoded = torch.stack(
            (pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h), dim=2
        )  # (N, K, 4)
        return decoded.flatten(1)  # (N, 4 * K)

    @staticmethod
    def _centre_size(boxes: Tensor, name: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        widths = boxes[:, 2] - boxes[:, 0]  # (N,)
        heights = boxes[:, 3] - boxes[:, 1]  # (N,)
        if widths.numel() and (widths.min() <= 0 or heights.min() <= 0):
            index = int(torch.nonzero((widths <= 0) | (heights <= 0))[0])
            raise ValueError(
                f"{name}: expected boxes with positive width and height (log and division need them), "
                f"got box {index} = {boxes[index].tolist()}"
            )
        return boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights, widths, heights
