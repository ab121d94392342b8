"""The check every blitting explorer shares: what it shows equals a full redraw of its figure."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def differs_from_a_full_redraw(explorer) -> float:
    """The share of pixels where the explorer's blitted PNG and a full redraw differ by more than
    anti-aliasing (an artist drawn twice over the kept background moves an edge by a few levels)."""
    shown = np.asarray(Image.open(io.BytesIO(explorer.png)).convert("RGB")).astype(int)
    full = np.asarray(Image.open(io.BytesIO(explorer.render_png())).convert("RGB")).astype(int)
    assert shown.shape == full.shape, (shown.shape, full.shape)
    return float((np.abs(shown - full).max(axis=-1) > 40).mean())
