"""Time the chapter's explanations of the zoo's shapes classifier against Captum's.

On ShapeCrops test crops (3 x 64 x 64), with ``shapes_classifier``:

* occlusion, window 8, stride 4, baseline 0 (225 windows per crop), on 4 crops and on 1 crop:
  the readable ``occlusion`` (32 occluded copies per forward pass) against Captum's ``Occlusion``
  as called by default (one forward pass per window) and with the same 32 copies per pass, then
  ``fast_occlusion`` (incremental inference, Nakandala et al. 2019) against Captum's default;
* Grad-CAM at ``features.relu4`` and backprop saliency, on a batch of 16 crops, against Captum's
  ``LayerGradCam`` (upsampled bilinearly) and ``Saliency`` (max over the channels, as ours).

Every pair is checked equal before it is timed, and timed in turns (``time_pair``): ours, then
Captum's, and again; each keeps its best time.

Run: ``python benchmarks/bench_explanations.py`` (or ``make bench`` for every benchmark).
"""

from __future__ import annotations

from functools import partial

import torch
from _timing import print_row, time_pair
from captum.attr import Saliency

from course_lib import zoo
from course_lib.data import ShapeCrops
from course_lib.references import captum_grad_cam, captum_occlusion
from course_lib.visualization.cam import grad_cam
from course_lib.visualization.fast_occlusion import fast_occlusion
from course_lib.visualization.occlusion import occlusion
from course_lib.visualization.saliency import saliency

WINDOW, STRIDE, BASELINE = 8, 4, 0.0
BATCH_SIZE = 32  # occlusion()'s default: occluded copies per forward pass
LAYER = "features.relu4"


def captum_saliency(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Captum's ``Saliency`` (``|gradient|``), max over the channels as ``saliency``: Tensor[B, H, W]."""
    return Saliency(model).attribute(images.clone().requires_grad_(), target=labels).amax(dim=1)


def main() -> list[dict]:
    model = zoo.load("shapes_classifier")
    test = ShapeCrops.split("test")
    images = torch.stack([test[index][0] for index in range(16)])  # (16, 3, 64, 64)
    labels = torch.stack([test[index][1]["label"] for index in range(16)])  # (16,)
    rows = []
    for count in (4, 1):
        batch, classes = images[:count], labels[:count]
        args = (model, batch, classes, WINDOW, STRIDE, BASELINE)
        expected = captum_occlusion(*args, perturbations_per_eval=1)
        for method in (occlusion, fast_occlusion):  # same answer, or no time
            assert torch.allclose(method(*args), expected, atol=1e-5), method.__name__
        assert torch.allclose(captum_occlusion(*args, perturbations_per_eval=BATCH_SIZE), expected, atol=1e-5)
        label = f"B={count}"  # window 8, stride 4, baseline 0
        captum_default = partial(captum_occlusion, *args, 1)
        ours_s, captum_s = time_pair(partial(occlusion, *args, BATCH_SIZE), captum_default, repeat=3)
        rows.append(print_row(f"occlusion vs Captum default, {label}", ours_s, captum_s))
        captum_batched = partial(captum_occlusion, *args, BATCH_SIZE)
        ours_s, captum_s = time_pair(partial(occlusion, *args, BATCH_SIZE), captum_batched, repeat=3)
        rows.append(print_row(f"occlusion vs Captum {BATCH_SIZE}/eval, {label}", ours_s, captum_s))
        ours_s, captum_s = time_pair(partial(fast_occlusion, *args), captum_default, repeat=3)
        rows.append(print_row(f"fast_occlusion vs Captum default, {label}", ours_s, captum_s))

    expected = captum_grad_cam(model, LAYER, images, labels)
    assert torch.allclose(grad_cam(model, LAYER, images, labels), expected, atol=1e-5)
    arguments = (model, LAYER, images, labels)
    ours_s, reference_s = time_pair(partial(grad_cam, *arguments), partial(captum_grad_cam, *arguments), 20)
    rows.append(print_row(f"grad_cam {LAYER}, B=16", ours_s, reference_s))

    expected = captum_saliency(model, images, labels)
    assert torch.allclose(saliency(model, images, labels), expected, atol=1e-6)
    ours_s, reference_s = time_pair(
        partial(saliency, model, images, labels), partial(captum_saliency, model, images, labels), 20
    )
    rows.append(print_row("saliency, B=16", ours_s, reference_s))
    return rows


if __name__ == "__main__":
    main()
