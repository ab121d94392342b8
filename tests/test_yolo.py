"""YOLO v1: the grid targets, decoding, and the loss against a transcription of Eq. 3 of the paper."""

import math

import pytest
import torch

from course_lib.models.yolo import YOLOv1, decode_yolo, yolo_loss, yolo_targets

TERMS = ("loss_xy", "loss_wh", "loss_obj", "loss_noobj", "loss_class")


def target_dict(boxes, labels):
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(labels, dtype=torch.int64)


def test_decode_reads_one_box_by_hand():
    output = torch.zeros(2, 2, 5 + 2)  # S = 2, B = 1, C = 2, cells of 8 px: the grid covers 16 px
    output[1, 0] = torch.tensor([0.5, 0.25, 0.5, 0.25, 0.7, 0.9, 0.1])  # row 1, column 0
    boxes, confidences, class_probs = decode_yolo(output, num_boxes=1, cell_size=8)
    assert boxes.shape == (4, 4) and confidences.shape == (4,) and class_probs.shape == (4, 2)
    # centre ((0 + 0.5) * 8, (1 + 0.25) * 8) = (4, 10); sides 0.5**2 * 16 = 4 and 0.25**2 * 16 = 1
    torch.testing.assert_close(boxes[2], torch.tensor([2.0, 9.5, 6.0, 10.5]))  # cell 2 in row-major order
    torch.testing.assert_close(confidences, torch.tensor([0.0, 0.0, 0.7, 0.0]))
    torch.testing.assert_close(class_probs[2], torch.tensor([0.9, 0.1]))


def test_decode_orders_cell_by_cell_then_box_by_box_and_uses_each_axis_extent():
    output = torch.zeros(2, 3, 2 * 5 + 1)  # 2 rows, 3 columns, B = 2
    output[0, 2, 5:10] = torch.tensor([0.0, 1.0, 1.0, 1.0, 0.3])  # second box of cell (0, 2)
    boxes, confidences, _ = decode_yolo(output, num_boxes=2, cell_size=4)
    # centre (2 * 4, 1 * 4) = (8, 4); full width 3 * 4 = 12, full height 2 * 4 = 8
    torch.testing.assert_close(boxes[2 * 2 + 1], torch.tensor([2.0, 0.0, 14.0, 8.0]))
    assert confidences.argmax() == 5


def test_targets_by_hand():
    boxes, labels = target_dict([[4, 10, 12, 14]], [2])  # centre (8, 12): column 1, row 1
    target = yolo_targets(boxes, labels, (3, 3), cell_size=8, num_classes=3)
    assert target["object"].nonzero().tolist() == [[1, 1]]
    torch.testing.assert_close(target["xy"][1, 1], torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(target["sqrt_wh"][1, 1], torch.tensor([math.sqrt(8 / 24), math.sqrt(4 / 24)]))
    torch.testing.assert_close(target["classes"][1, 1], torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(target["box"][1, 1], boxes[0])
    assert target["classes"].sum() == 1 and target["xy"].abs().sum() == 0.5


def test_targets_give_a_shared_cell_to_the_larger_object_whatever_the_order():
    small, large = [9, 9, 11, 11], [6, 6, 14, 14]  # both centred at (10, 10): cell (1, 1)
    for order in ([small, large], [large, small]):
        labels = [1, 3] if order[0] == small else [3, 1]
        boxes, labels = target_dict(order, labels)
        target = yolo_targets(boxes, labels, (3, 3), cell_size=8, num_classes=3)
        assert target["object"].sum() == 1
        torch.testing.assert_close(target["box"][1, 1], torch.tensor(large, dtype=torch.float32))
        torch.testing.assert_close(target["classes"][1, 1], torch.tensor([0.0, 0.0, 1.0]))


@pytest.mark.parametrize(
    ("box", "offset"),
    [([23, 23, 24, 24], 0.9375), ([20, 20, 28, 28], 1.0)],  # centre on the last pixel; on the far edge
)
def test_objects_at_the_border_go_to_the_last_cell(box, offset):
    boxes, labels = target_dict([box], [1])
    target = yolo_targets(boxes, labels, (3, 3), cell_size=8, num_classes=2)
    assert target["object"].nonzero().tolist() == [[2, 2]]
    torch.testing.assert_close(target["xy"][2, 2], torch.tensor([offset, offset]))


def test_targets_of_an_image_without_objects_are_all_zero():
    boxes, labels = target_dict([], [])
    target = yolo_targets(boxes, labels, (4, 3), cell_size=8, num_classes=5)
    assert target["object"].shape == (4, 3) and not target["object"].any()
    assert target["classes"].shape == (4, 3, 5) and target["classes"].sum() == 0


def test_targets_then_decode_give_back_the_boxes():
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(6, 2, generator=generator) * 40
    boxes = torch.cat((corners, corners + 2 + torch.rand(6, 2, generator=generator) * 20), dim=1)
    boxes[:, 2:] = boxes[:, 2:].clamp(max=48)
    labels = torch.randint(1, 4, (6,), generator=generator)
    target = yolo_targets(boxes, labels, (6, 6), cell_size=8, num_classes=3)
    output = torch.cat((target["xy"], target["sqrt_wh"], torch.ones(6, 6, 1), target["classes"]), dim=-1)
    decoded, _, class_probs = decode_yolo(output, num_boxes=1, cell_size=8)
    cells = target["object"].reshape(-1)
    torch.testing.assert_close(decoded[cells], target["box"].reshape(-1, 4)[cells])
    assert target["object"].sum() >= 4  # most of the six boxes kept a cell of their own
    torch.testing.assert_close(class_probs[cells], target["classes"].reshape(-1, 3)[cells])


def test_bad_targets_are_refused():
    with pytest.raises(ValueError, match="x2 >= x1"):
        yolo_targets(torch.tensor([[4.0, 0, 0, 4]]), torch.tensor([1]), (2, 2), 8, 2)
    with pytest.raises(ValueError, match=r"5B \+ C"):
        decode_yolo(torch.zeros(2, 2, 10), num_boxes=2, cell_size=8)


# --- Eq. 3 of Redmon et al. 2016, transcribed: a double loop over cells i and predictors j -----------


def iou(a, b):
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def eq3(output, objects, S, B, cell, lambda_coord=5.0, lambda_noobj=0.5):
    """``objects``: per image, a list of (xyxy, label). Returns the five sums, divided by the images."""
    terms = dict.fromkeys(TERMS, 0.0)
    for image, image_objects in zip(output.tolist(), objects, strict=True):
        owner = {}  # cell -> its object: the larger one when two centres collide
        for box, label in image_objects:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            i = (min(S - 1, int(cy // cell)), min(S - 1, int(cx // cell)))
            area = (box[2] - box[0]) * (box[3] - box[1])
            if i not in owner or area > owner[i][2]:
                owner[i] = (box, label, area)
        for row in range(S):
            for col in range(S):
                values = image[row][col]
                predicted = []
                for j in range(B):
                    x, y, sw, sh, _ = values[5 * j : 5 * j + 5]
                    cx, cy, w, h = (col + x) * cell, (row + y) * cell, sw**2 * S * cell, sh**2 * S * cell
                    predicted.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                responsible, best = None, -1.0
                if (row, col) in owner:
                    box, label, _ = owner[(row, col)]
                    for j in range(B):  # strictly greater: the first predictor wins a tie
                        if iou(predicted[j], box) > best:
                            responsible, best = j, iou(predicted[j], box)
                    x_hat = (box[0] + box[2]) / 2 / cell - col
                    y_hat = (box[1] + box[3]) / 2 / cell - row
                    w_hat, h_hat = (box[2] - box[0]) / (S * cell), (box[3] - box[1]) / (S * cell)
                    for c in range(len(values) - 5 * B):
                        p_hat = 1.0 if c == label - 1 else 0.0
                        terms["loss_class"] += (values[5 * B + c] - p_hat) ** 2
                for j in range(B):
                    x, y, sw, sh, confidence = values[5 * j : 5 * j + 5]
                    if j == responsible:  # 1obj_ij
                        terms["loss_xy"] += lambda_coord * ((x - x_hat) ** 2 + (y - y_hat) ** 2)
                        terms["loss_wh"] += lambda_coord * (
                            (sw - math.sqrt(w_hat)) ** 2 + (sh - math.sqrt(h_hat)) ** 2
                        )
                        terms["loss_obj"] += (confidence - best) ** 2
                    else:  # 1noobj_ij
                        terms["loss_noobj"] += lambda_noobj * confidence**2
    return {name: value / len(objects) for name, value in terms.items()}


def activated_output(N, S, B, C, generator):
    boxes = torch.rand(N, S, S, B, 5, generator=generator)
    boxes[..., 4] = torch.randn(N, S, S, B, generator=generator)  # the confidence stays linear
    classes = torch.softmax(torch.randn(N, S, S, C, generator=generator), dim=-1)
    return torch.cat((boxes.flatten(3), classes), dim=-1)  # (N, S, S, 5B + C)


@pytest.mark.parametrize(("seed", "S"), [(0, 3), (1, 4), (2, 4)])
def test_the_loss_equals_a_transcription_of_eq3(seed, S):
    generator = torch.Generator().manual_seed(seed)
    B, C, cell = 2, 3, 8
    output = activated_output(2, S, B, C, generator)
    output[0, 0, 0, 5:9] = output[0, 0, 0, 0:4]  # cell (0, 0): both predictors equal, a tie
    objects = [
        [
            ([1.0, 2.0, 7.0, 6.0], 1),  # cell (0, 0)
            ([9.0, 9.0, 11.0, 13.0], 2),  # centre (10, 11), cell (1, 1) ...
            ([5.0, 6.0, 15.0, 16.0], 3),  # ... centre (10, 11) too, larger: it wins the cell
            ([14.0, 3.0, 3.0 * 8, 10.0], 2),  # centre (19, 6.5): cell (0, 2)
        ],
        [],  # an image without objects
    ]
    targets = []
    for image_objects in objects:
        boxes, labels = target_dict([box for box, _ in image_objects], [label for _, label in image_objects])
        targets.append(yolo_targets(boxes, labels, (S, S), cell, C))
    assert targets[0]["object"].sum() == 3
    losses = yolo_loss(output, targets, B, cell)
    expected = eq3(output, objects, S, B, cell)
    assert set(losses) == set(TERMS)
    for name in TERMS:
        assert losses[name].shape == ()
        assert math.isclose(float(losses[name]), expected[name], rel_tol=1e-5, abs_tol=1e-5), name
    assert expected["loss_obj"] > 0 and expected["loss_class"] > 0


def test_the_loss_with_other_weights_and_no_objects_at_all():
    generator = torch.Generator().manual_seed(3)
    output = activated_output(2, 3, 2, 3, generator)
    boxes, labels = target_dict([], [])
    targets = [yolo_targets(boxes, labels, (3, 3), 8, 3)] * 2
    losses = yolo_loss(output, targets, 2, 8, lambda_coord=2.0, lambda_noobj=0.25)
    expected = eq3(output, [[], []], 3, 2, 8, lambda_coord=2.0, lambda_noobj=0.25)
    assert losses["loss_xy"] == 0 and losses["loss_obj"] == 0 and losses["loss_class"] == 0
    assert math.isclose(float(losses["loss_noobj"]), expected["loss_noobj"], rel_tol=1e-5)
    assert math.isclose(
        float(losses["loss_noobj"]), 0.25 * float((output[..., [4, 9]] ** 2).sum()) / 2, rel_tol=1e-5
    )


def test_the_model_reads_an_8px_grid_and_activates_its_outputs():
    torch.manual_seed(0)
    model = YOLOv1().eval()
    with torch.no_grad():
        output, sizes = model.predict([torch.rand(3, 128, 128), torch.rand(3, 64, 96)])
    assert output.shape == (2, 16, 16, 5 * 2 + 5) and sizes == [(128, 128), (64, 96)]
    boxes = output[..., :10].reshape(2, 16, 16, 2, 5)
    assert (boxes[..., :4] > 0).all() and (boxes[..., :4] < 1).all()  # sigmoid offsets and sqrt sides
    assert (boxes[..., 4] < 0).any()  # the confidence stays linear
    torch.testing.assert_close(output[..., 10:].sum(-1), torch.ones(2, 16, 16))  # softmax over the classes


def test_targets_and_loss_refuse_bad_labels_and_counts():
    box = torch.tensor([[4.0, 4, 12, 12]])
    with pytest.raises(ValueError, match="1..3"):
        yolo_targets(box, torch.tensor([0]), (2, 2), 8, 3)
    with pytest.raises(ValueError, match="one per box"):
        yolo_targets(box, torch.tensor([1, 2]), (2, 2), 8, 3)
    target = yolo_targets(box, torch.tensor([1]), (2, 2), 8, 3)
    with pytest.raises(ValueError, match="one target dict per image"):
        yolo_loss(torch.rand(2, 2, 2, 13), [target], 2, 8)
