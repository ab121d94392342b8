"""The two-stage base: Fast R-CNN and Faster R-CNN share the backbone, the feature map and the head."""

import torch

from course_lib.models import FasterRCNN, FastRCNN, TwoStageDetector


def test_both_detectors_build_the_same_shared_parts():
    torch.manual_seed(0)
    fast, faster = FastRCNN(), FasterRCNN()
    assert isinstance(fast, TwoStageDetector) and isinstance(faster, TwoStageDetector)
    assert fast.roi_heads.pooler == "pool" and faster.roi_heads.pooler == "align"
    faster.backbone.load_state_dict(fast.backbone.state_dict())
    faster.neck.load_state_dict(fast.neck.state_dict())
    images = [torch.rand(3, 64, 80), torch.rand(3, 48, 48)]
    with torch.no_grad():
        fast_map, fast_sizes = fast.eval().feature_map(images)
        faster_map, faster_sizes = faster.eval().feature_map(images)
    assert fast_map.shape == (2, fast.neck.out_channels, 16, 20) and fast_sizes == [(64, 80), (48, 48)]
    torch.testing.assert_close(fast_map, faster_map)
    assert fast_sizes == faster_sizes


def test_training_mode_keeps_the_backbones_batch_norm_frozen():
    model = FasterRCNN().train()
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert model.training and norms and not any(m.training for m in norms)
    assert model.roi_heads.training  # the rest trains


def test_layers_are_created_in_the_order_the_recipes_were_trained_with():
    # Regression: creating the RPN after the head changed which random numbers initialized which
    # layer, so a recipe no longer retrained the model it shipped.
    def parts(model):
        return list(dict.fromkeys(name.split(".")[0] for name in model.state_dict()))

    assert parts(FasterRCNN()) == ["backbone", "neck", "rpn", "roi_heads"]
    assert parts(FastRCNN()) == ["backbone", "neck", "roi_heads"]
    torch.manual_seed(0)
    first = FasterRCNN().rpn.head.conv.weight.clone()
    torch.manual_seed(0)
    assert torch.equal(FasterRCNN().rpn.head.conv.weight, first)
