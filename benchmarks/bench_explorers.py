"""Time every explorer of course_lib.widgets: its first draw, and its redraw over a sweep of each control.

Each explorer is built as its notebook builds it (the same data, the zoo's checkpoints), under the
notebooks' figure settings (``course_lib.nb.PROJECTOR_RC``) and two torch threads. Then every
control is swept: a slider through about ``SLIDER_POINTS`` values from its minimum to its maximum, a
dropdown through up to ``SLIDER_POINTS`` of its options, spread over the list, a checkbox both ways;
each value is set as a student's click sets it (``control.value = ...``), and the time runs until
the new PNG is in the explorer's output, i.e. compute, draw, rasterize (``canvas.draw`` inside
``print_png``) and encode. Between two controls the previous one goes back to its first value,
untimed. The sweep runs ``REPEATS`` times; each value keeps its fastest time (the least disturbed by
other processes).

*first draw* is the wall time of the constructor, once the notebook's data and models are ready (it
computes and renders the first figure, and whatever the explorer prepares: a forward pass, NMS),
i.e. what a student waits for after running the cell. *median redraw* is the median over every value
of every control; *worst control* is the control with the highest median, with that median.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_explorers.py [name ...]`` (names such as
``RoIPoolExplorer``), or ``make bench`` for every benchmark (the table then goes into the README
between ``<!-- explorers:start -->`` and ``<!-- explorers:end -->``).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import matplotlib as mpl

mpl.use("Agg")

import ipywidgets as widgets  # noqa: E402
import torch  # noqa: E402
from _timing import NUM_THREADS  # noqa: E402

from course_lib import nb, zoo  # noqa: E402

SLIDER_POINTS = 5  # values per control: the whole run stays under about four minutes
REPEATS = 3
MARKERS = ("<!-- explorers:start -->", "<!-- explorers:end -->")
LOAD_AT_START = os.getloadavg()[0]  # set again when main starts


# --- the data each notebook builds its explorer from ----------------------------------------------
@cache
def _val_scene(min_objects: int = 4) -> tuple[torch.Tensor, dict]:
    """02's scene: the first validation scene on a plain background with >= 4 objects."""
    from course_lib.data import ShapeScenes

    val = ShapeScenes.split("val")
    index = next(i for i in range(len(val))
                 if val.scene(i).background == "plain" and len(val.scene(i).labels) >= min_objects)
    return val[index]


@cache
def _test_scene() -> tuple[torch.Tensor, dict]:
    """05-07's scene: test scene 8."""
    from course_lib.data import ShapeScenes

    return ShapeScenes.split("test")[8]


def scene_explorer():
    from course_lib.data import CLASSES, ShapeScenes
    from course_lib.widgets import SceneExplorer

    train = ShapeScenes.split("train")
    return lambda: SceneExplorer(train, class_names=CLASSES)


def iou_explorer():
    from course_lib.widgets import IoUExplorer

    return lambda: IoUExplorer(box_a=(30, 30, 80, 80))


def ap_explorer(boxes_per_object: int = 3):
    """01's AP explorer (3 noisy detections per object); ``ap_explorer_30`` has 30 detections."""
    from course_lib.widgets import APExplorer, noisy_detections

    image, target = _val_scene(3)
    gt_boxes = target["boxes"]
    pred_boxes, _ = noisy_detections(gt_boxes, boxes_per_object=boxes_per_object, jitter=0.15, seed=0)
    pred_scores = torch.rand(len(pred_boxes), generator=torch.Generator().manual_seed(0))
    return lambda: APExplorer(pred_boxes, pred_scores, gt_boxes, image=image)


def ap_explorer_30():
    from course_lib.widgets import APExplorer, noisy_detections

    image, target = _val_scene(3)
    gt_boxes = target["boxes"]
    per_object = -(-30 // len(gt_boxes))
    pred_boxes, _ = noisy_detections(gt_boxes, boxes_per_object=per_object, jitter=0.15, seed=0)
    pred_boxes = pred_boxes[:30]
    pred_scores = torch.rand(len(pred_boxes), generator=torch.Generator().manual_seed(0))
    return lambda: APExplorer(pred_boxes, pred_scores, gt_boxes, image=image)


def anchor_explorer():
    from course_lib.widgets import AnchorExplorer

    image, target = _val_scene()
    largest = target["area"].argmax()
    return lambda: AnchorExplorer(gt_box=target["boxes"][largest].tolist(), image=image)


def anchor_explorer_stride8():
    from course_lib.widgets import AnchorExplorer

    image, target = _val_scene()
    largest = target["area"].argmax()
    return lambda: AnchorExplorer(gt_box=target["boxes"][largest].tolist(), image=image, stride=8)


def nms_explorer():
    from course_lib.widgets import NMSExplorer, noisy_detections

    image, target = _val_scene()
    boxes, scores = noisy_detections(target["boxes"], boxes_per_object=6, jitter=0.1, seed=0)
    return lambda: NMSExplorer(boxes, scores, image=image)


@cache
def _astronaut():
    from course_lib.data import load_photo

    return load_photo("astronaut")


def hog_explorer():
    from course_lib.widgets import HOGExplorer

    crop = _astronaut()[20:276, 90:346]  # 256 x 256 around the face
    return lambda: HOGExplorer(crop)


def detector_explorer():
    from course_lib.recipes.face_detector import astronaut_face_box, train_face_detector
    from course_lib.widgets import DetectorExplorer

    detector = train_face_detector()
    photo, face_box = _astronaut(), astronaut_face_box()
    return lambda: DetectorExplorer(detector, photo, face_box)


def selective_search_explorer():
    import skimage.transform
    import skimage.util

    from course_lib.data import load_photo, load_photo_annotations
    from course_lib.widgets import SelectiveSearchExplorer

    coins = skimage.util.img_as_ubyte(skimage.transform.rescale(load_photo("coins"), 0.5, channel_axis=-1,
                                                                anti_aliasing=True))  # 04's half()
    gt_boxes = load_photo_annotations("coins")["boxes"] / 2
    return lambda: SelectiveSearchExplorer(coins, gt_boxes=gt_boxes)


def rcnn_explorer():
    from course_lib.widgets import RCNNExplorer

    model = zoo.load("rcnn")
    image, target = _test_scene()
    proposals = model.propose(image)
    return lambda: RCNNExplorer(model, image, proposals, gt_boxes=target["boxes"])


def roi_pool_explorer():
    from course_lib.models import SelectiveSearchProposer
    from course_lib.widgets import RoIPoolExplorer

    model = zoo.load("fast_rcnn")
    image, _ = _test_scene()
    with torch.no_grad():
        feature_map, _ = model.feature_map([image])
    proposals = SelectiveSearchProposer()(image)
    return lambda: RoIPoolExplorer(image, feature_map[0], proposals[:200], stride=4, output_size=7)


def proposal_explorer():
    from course_lib.models import SelectiveSearchProposer
    from course_lib.widgets import ProposalExplorer

    model = zoo.load("faster_rcnn")
    image, target = _test_scene()
    with torch.no_grad():
        feature_map, sizes = model.feature_map([image])
    candidates, candidate_scores = model.rpn.candidates(feature_map, sizes[0], top_n=1000)
    reference = SelectiveSearchProposer()(image)
    return lambda: ProposalExplorer(image, target["boxes"], candidates, candidate_scores, reference=reference)


def detections_explorer():
    from course_lib.models.proposals import SelectiveSearchProposer
    from course_lib.recipes.detection import scenes
    from course_lib.widgets import DetectionsExplorer

    names = ("rcnn", "fast_rcnn", "faster_rcnn")
    models = {name: zoo.load(name) for name in names}
    data = scenes("test", 8)  # 08 uses 50 scenes; the scene slider sweeps these 8
    images, targets = [image for image, _ in data], [target for _, target in data]
    proposer = SelectiveSearchProposer()
    selective = [proposer(image) for image in images]
    with torch.no_grad():
        detections = {name: [models[name]([image], proposals=[boxes])[0]
                             for image, boxes in zip(images, selective, strict=True)]
                      for name in ("rcnn", "fast_rcnn")}
        detections["faster_rcnn"] = [models["faster_rcnn"]([image])[0] for image in images]
    cuts = {"rcnn": 0.5, "fast_rcnn": 0.5, "faster_rcnn": 0.5}
    return lambda: DetectionsExplorer(images, targets, detections, thresholds=cuts)


@cache
def _crops():
    from course_lib.recipes.backbone import crops

    return crops("train", 1000), crops("test", 50), crops("test", 200)


def neighbors_explorer():
    from course_lib.data import CLASSES
    from course_lib.visualization import embed
    from course_lib.widgets.embeddings import NeighborsExplorer

    model = zoo.load("shapes_classifier")
    (database_images, database_labels), (query_images, query_labels), _ = _crops()
    database, queries = embed(model, database_images), embed(model, query_images)
    return lambda: NeighborsExplorer(query_images, database_images, queries, database, query_labels,
                                      database_labels, CLASSES)


def activation_explorer():
    from course_lib.widgets import ActivationExplorer

    model = zoo.load("shapes_classifier")
    images, _ = _crops()[2]
    return lambda: ActivationExplorer(model, images[7])


def patch_explorer():
    from course_lib.widgets import PatchExplorer

    model = zoo.load("shapes_classifier")
    images, _ = _crops()[2]
    return lambda: PatchExplorer(model, images)


def class_visualization_explorer():
    from course_lib.widgets import ClassVisualizationExplorer

    model = zoo.load("shapes_classifier")
    return lambda: ClassVisualizationExplorer(model)


def explanation_explorer():
    from course_lib.widgets.explanations import ExplanationExplorer

    model = zoo.load("shapes_classifier")
    images, labels = _crops()[1]
    return lambda: ExplanationExplorer(model, images, targets=labels)


def explanation_explorer_detector():
    from course_lib.widgets.explanations import ExplanationExplorer

    model = zoo.load("retinanet")
    images = [_test_scene()[0], _val_scene()[0]]  # two images: the image slider has somewhere to go
    # The classification subnet's ReLUs and the stem's: the box subnet does not move a detection's score.
    layers = ["backbone.stem.0.2", "backbone.stem.1.2", "class_subnet.1", "class_subnet.3"]
    return lambda: ExplanationExplorer(model, images, layers=layers)


def centernet_explorer():
    from course_lib.data import ShapeScenes
    from course_lib.recipes import centernet
    from course_lib.widgets.centernet import CenterNetExplorer

    try:
        model = zoo.load("centernet")
    except (FileNotFoundError, ValueError):  # no checkpoint yet: the same architecture, random weights
        torch.manual_seed(0)
        model = centernet.build().eval()
    test = ShapeScenes.split("test")
    data = [test[index] for index in range(8)]  # the scene slider sweeps these 8
    return lambda: CenterNetExplorer(model, data)


def _detr_and_scenes():
    from course_lib.data import ShapeScenes
    from course_lib.recipes import detr

    try:
        model = zoo.load("detr")
    except (FileNotFoundError, ValueError):  # no checkpoint yet: the same architecture, random weights
        torch.manual_seed(0)
        model = detr.build().eval()
    test = ShapeScenes.split("test")
    return model, [test[index] for index in range(10)]  # the scene slider sweeps these, as in notebook 13


def matching_explorer():
    from course_lib.widgets.detr import MatchingExplorer

    model, data = _detr_and_scenes()
    return lambda: MatchingExplorer(model, [image for image, _ in data], [target for _, target in data])


def cross_attention_explorer():
    from course_lib.widgets.detr import CrossAttentionExplorer

    model, data = _detr_and_scenes()
    return lambda: CrossAttentionExplorer(model, [image for image, _ in data])


BUILDERS: dict[str, Callable[[], Any]] = {
    "SceneExplorer": scene_explorer,
    "IoUExplorer": iou_explorer,
    "APExplorer": ap_explorer,
    "APExplorer (30 detections)": ap_explorer_30,
    "AnchorExplorer": anchor_explorer,
    "AnchorExplorer (stride 8)": anchor_explorer_stride8,
    "NMSExplorer": nms_explorer,
    "HOGExplorer": hog_explorer,
    "DetectorExplorer": detector_explorer,
    "SelectiveSearchExplorer": selective_search_explorer,
    "RCNNExplorer": rcnn_explorer,
    "RoIPoolExplorer": roi_pool_explorer,
    "ProposalExplorer": proposal_explorer,
    "DetectionsExplorer": detections_explorer,
    "NeighborsExplorer": neighbors_explorer,
    "ActivationExplorer": activation_explorer,
    "PatchExplorer": patch_explorer,
    "ClassVisualizationExplorer": class_visualization_explorer,
    "ExplanationExplorer": explanation_explorer,
    "ExplanationExplorer (detector)": explanation_explorer_detector,
    "CenterNetExplorer": centernet_explorer,
    "MatchingExplorer": matching_explorer,
    "CrossAttentionExplorer": cross_attention_explorer,
}
# Controls left out of the sweep, with the reason printed under the table.
SKIPPED = {
    ("ClassVisualizationExplorer", "target"): "runs a new gradient ascent (seconds), not a redraw",
    ("ClassVisualizationExplorer", "l2_weight"): "runs a new gradient ascent (seconds), not a redraw",
    ("ClassVisualizationExplorer", "steps"): "runs a new gradient ascent (seconds), not a redraw",
    ("ClassVisualizationExplorer", "init"): "runs a new gradient ascent (seconds), not a redraw",
}


# --- the sweep ------------------------------------------------------------------------------------
def sweep_values(control: widgets.ValueWidget) -> list:
    """The values a sweep sets, the current one excluded (setting it would not redraw)."""
    if isinstance(control, widgets.Checkbox):
        values = [not control.value, control.value]
    elif isinstance(control, widgets.SelectMultiple):
        options = list(control.options)
        values = [tuple(options[: k + 1]) for k in range(len(options))]
        if len(values) > SLIDER_POINTS:
            step = (len(values) - 1) / (SLIDER_POINTS - 1)
            values = [values[round(i * step)] for i in range(SLIDER_POINTS)]
        values.append(tuple(control.value))
    elif isinstance(control, widgets.SelectionRangeSlider):  # each end to each extreme
        options = [option[1] if isinstance(option, tuple) else option for option in control.options]
        last = len(options) - 1
        values = [(options[low], options[high]) for low, high in ((0, 0), (last, last), (0, last // 2),
                                                                  (last // 2, last), (0, last))]
    elif isinstance(control, widgets.FloatLogSlider):
        values = [control.base ** e for e in _spread(control.min, control.max, SLIDER_POINTS)]
    elif isinstance(control, widgets.IntSlider | widgets.FloatSlider):
        points = _spread(control.min, control.max, SLIDER_POINTS)
        if isinstance(control, widgets.IntSlider):
            points = sorted({round(p) for p in points})
        values = points
    elif hasattr(control, "options"):  # Dropdown, ToggleButtons, SelectionSlider
        values = [option[1] if isinstance(option, tuple) else option for option in control.options]
        if len(values) > SLIDER_POINTS:
            step = (len(values) - 1) / (SLIDER_POINTS - 1)
            values = [values[round(i * step)] for i in range(SLIDER_POINTS)]
    else:
        raise TypeError(f"no sweep for a {type(control).__name__}")
    return [value for value in values if value != control.value] + [control.value]


def _spread(low: float, high: float, count: int) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def time_explorer(name: str, build: Callable[[], Any]) -> dict[str, Any]:
    """Build one explorer, sweep its controls; return its row (times in ms)."""
    torch.set_num_threads(NUM_THREADS)
    factory = build()  # the notebook's data, models and detections: untimed
    start = time.perf_counter()
    explorer = factory()
    first = time.perf_counter() - start
    per_control: dict[str, list[float]] = {}
    for control_name, control in explorer.controls.items():
        if (name.split(" (")[0], control_name) in SKIPPED or control.disabled:
            continue
        first_value = control.value
        best: dict[int, float] = {}
        for _ in range(REPEATS):
            for index, value in enumerate(sweep_values(control)):
                if value == control.value:
                    continue
                start = time.perf_counter()
                control.value = value  # observed: compute, draw, rasterize and encode
                seconds = time.perf_counter() - start
                best[index] = min(best.get(index, float("inf")), seconds)
            control.value = first_value  # untimed: back to where the next control starts
        per_control[control_name] = [seconds * 1e3 for seconds in best.values()]
    explorer.close()
    times = [t for values in per_control.values() for t in values]
    worst = max(per_control, key=lambda c: statistics.median(per_control[c])) if per_control else "-"
    row = {
        "name": name,
        "first_ms": first * 1e3,
        "median_ms": statistics.median(times) if times else float("nan"),
        "worst_control": worst,
        "worst_ms": statistics.median(per_control[worst]) if per_control else float("nan"),
        "max_ms": max(times) if times else float("nan"),
        "num_redraws": len(times),
        "dpi": explorer.figure.dpi,
    }
    print(f"{name:<30} | {row['first_ms']:8.0f} | {row['median_ms']:8.1f} | "
          f"{worst} {row['worst_ms']:.1f} (max {row['max_ms']:.0f}) | {row['num_redraws']:3d} | "
          f"{row['dpi']:.0f}", flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    """The README table: explorer, first draw, median redraw, worst control."""
    lines = ["| explorer | first draw (ms) | median redraw (ms) | worst control (median ms) |",
             "|---|---:|---:|---|"]
    for row in rows:
        if row["num_redraws"]:
            redraw = f"{row['median_ms']:.0f} | {row['worst_control']} ({row['worst_ms']:.0f})"
        else:
            redraw = "not swept | –"
        lines.append(f"| {row['name']} | {row['first_ms']:.0f} | {redraw} |")
    skipped = sorted({f"{explorer}.{control}" for explorer, control in SKIPPED})
    lines += ["", f"Not swept: {', '.join(skipped)} (each runs a new gradient ascent; a setting seen before "
              f"is cached and redraws like the other explorers). {NUM_THREADS} torch threads, load average "
              f"{LOAD_AT_START:.1f} at the start of the run and {os.getloadavg()[0]:.1f} at its end; each "
              f"time is the fastest of {REPEATS} sweeps, so a setting an explorer caches (a layer's "
              f"activations, an NMS) counts at its cached speed."]
    return "\n".join(lines)


def main(names: list[str] | None = None) -> list[dict]:
    """Time the explorers named (all by default); print the table and its markdown version."""
    mpl.rcParams.update(nb.PROJECTOR_RC)
    torch.set_num_threads(NUM_THREADS)
    threads = os.environ.get("OMP_NUM_THREADS")
    global LOAD_AT_START
    LOAD_AT_START = os.getloadavg()[0]
    print(f"load average before: {LOAD_AT_START:.2f}; OMP_NUM_THREADS={threads}")
    print(f"{'explorer':<30} | first ms | median ms | worst control (max) | n | dpi")
    rows = [time_explorer(name, build) for name, build in BUILDERS.items() if not names or name in names]
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
