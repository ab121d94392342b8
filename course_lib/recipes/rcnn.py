"""Recipe of ``rcnn``: linear SVMs and box regressors on backbone features of warped proposals.

R-CNN's training (Girshick et al. 2014, Sec. 2.3 and Appendix B, C), in three steps:

1. features of every selective-search proposal (and ground-truth box) of the first
   ``train_images`` training scenes, each warped and passed through ``shapes_backbone`` on its own;
2. one linear SVM per class (scikit-learn's ``LinearSVC``, squared hinge loss): the ground-truth
   boxes of the class are the positives, proposals with IoU < 0.3 with all of them the negatives.
   The paper mines hard negatives in rounds because its features do not fit in memory; ours do, so
   every negative is used at once, which is where mining converges;
3. one ridge regressor per class (lambda 1000, as the paper) from the features to the box deltas
   of proposals with IoU >= 0.6.

Deviation: the paper also fine-tunes the CNN on warped proposals first; we use the pre-trained
backbone as it is (the paper's "no fine-tuning" rows of Table 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from course_lib.data import NUM_CLASSES, ShapeScenes
from course_lib.models.proposals import cached_proposals
from course_lib.models.rcnn import RCNN, training_targets
from course_lib.recipes.detection import QUICK_SIZE, SPLIT, evaluate_detector, scenes

__all__ = ["CONFIG", "QUICK_SIZE", "SPLIT", "build", "evaluate", "train"]


@dataclass(frozen=True)
class RCNNConfig:
    """The R-CNN recipe's settings (no gradient steps: the SVMs and regressors are fitted)."""

    train_images: int = 250
    svm_C: float = 0.01
    positive_weight: float = 10.0
    negative_iou: float = 0.3
    regression_iou: float = 0.6
    ridge_alpha: float = 1000.0
    seed: int = 0


CONFIG = RCNNConfig()


def build() -> RCNN:
    """The architecture of ``rcnn``, with fresh weights."""
    return RCNN()


@torch.no_grad()
def training_features(model: RCNN, config: RCNNConfig = CONFIG, progress: bool = True):
    """Step 1: features, per-class SVM labels, regression deltas and classes of every training region."""
    data = scenes("train", config.train_images)
    proposals = cached_proposals(ShapeScenes.split("train"), range(len(data)))
    features, labels, deltas, classes = [], [], [], []
    for (image, target), boxes in tqdm(
        list(zip(data, proposals, strict=True)), disable=not progress, desc="features"
    ):
        boxes, svm_labels, box_deltas, box_classes = training_targets(
            boxes, target, model.num_classes, config.negative_iou, config.regression_iou
        )
        features.append(model.features(model.warp(image, boxes)))
        labels.append(svm_labels)
        deltas.append(box_deltas)
        classes.append(box_classes)
    return torch.cat(features), torch.cat(labels), torch.cat(deltas), torch.cat(classes)


def fit_svms_and_regressors(
    model: RCNN, features, labels, deltas, classes, config: RCNNConfig = CONFIG
) -> list[dict]:
    """Steps 2 and 3: write the fitted SVMs and ridge regressors into ``model``; returns their losses."""
    from sklearn.linear_model import Ridge
    from sklearn.svm import LinearSVC

    mean, std = features.mean(dim=0), features.std(dim=0).clamp(min=1e-6)
    model.feature_mean.copy_(mean)
    model.feature_std.copy_(std)
    inputs = ((features - mean) / std).numpy().astype(np.float64)  # (N, 1024)
    history = []
    for k in range(1, NUM_CLASSES + 1):
        rows = (labels[:, k - 1] != 0).numpy()
        targets = labels[rows, k - 1].numpy()
        svm = LinearSVC(C=config.svm_C, class_weight={1: config.positive_weight, -1: 1.0}, dual=False)
        svm.fit(inputs[rows], targets)
        model.svm.weight.data[k - 1] = torch.from_numpy(svm.coef_[0]).float()
        model.svm.bias.data[k - 1] = float(svm.intercept_[0])
        margins = svm.decision_function(inputs[rows]) * targets
        regress = (classes == k).numpy()
        ridge = Ridge(alpha=config.ridge_alpha).fit(inputs[regress], deltas[regress].numpy())
        model.regressor.weight.data[4 * (k - 1) : 4 * k] = torch.from_numpy(ridge.coef_).float()
        model.regressor.bias.data[4 * (k - 1) : 4 * k] = torch.from_numpy(ridge.intercept_).float()
        squared_error = float(((ridge.predict(inputs[regress]) - deltas[regress].numpy()) ** 2).mean())
        history.append(
            {
                "step": k - 1,
                "loss": float((np.maximum(0, 1 - margins) ** 2).mean()),
                "class": k,
                "positives": int((targets == 1).sum()),
                "negatives": int((targets == -1).sum()),
                "box_mse": squared_error,
            }
        )
    return history


def train(checkpoint: str | os.PathLike | None = None, config: RCNNConfig = CONFIG, progress: bool = True):
    """Fit R-CNN from ``shapes_backbone``; returns ``(model in eval mode, one row per class)``.

    ``checkpoint`` is accepted for the zoo's interface and unused: nothing here runs long enough in
    one piece to need resuming.
    """
    from course_lib import zoo

    torch.manual_seed(config.seed)
    model = build().eval()
    model.backbone.load_state_dict(zoo.load("shapes_backbone").state_dict())
    history = fit_svms_and_regressors(model, *training_features(model, config, progress), config)
    return model.eval(), history


def evaluate(model: RCNN, split: str = SPLIT, limit: int | None = None) -> dict[str, float]:
    """AP, AP50 and AR100 on the split, on cached selective-search proposals."""
    dataset = ShapeScenes.split(split)
    return evaluate_detector(
        model, split, limit, proposals=lambda indices: cached_proposals(dataset, indices)
    )
