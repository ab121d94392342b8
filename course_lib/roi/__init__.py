"""RoI pooling and RoIAlign: a fixed-size feature for every region of interest.

``roi_pool`` (``pool.py``, Fast R-CNN's RoI max pooling, bin by bin) and ``roi_align`` (``align.py``,
Mask R-CNN's bilinear sampling) are the readable algorithms, the versions a notebook shows.
``fast_roi_pool`` (``fast_pool.py``) and ``fast_roi_align`` (``fast_align.py``) give the same results
faster, and are what the models call. All four equal ``torchvision.ops.roi_pool`` / ``roi_align``,
gradients included (RoIAlign up to the order of floating-point sums), in every floating dtype.
``bins.py`` holds the geometry of RoI pooling's bins, shared with the RoI explorer.
"""

from course_lib.roi.align import bilinear_interpolate, roi_align
from course_lib.roi.bins import bin_bounds, max_start_value, pool_bins, round_half_away
from course_lib.roi.fast_align import fast_roi_align
from course_lib.roi.fast_pool import fast_roi_pool
from course_lib.roi.pool import roi_pool

__all__ = [
    "bilinear_interpolate",
    "bin_bounds",
    "fast_roi_align",
    "fast_roi_pool",
    "max_start_value",
    "pool_bins",
    "roi_align",
    "roi_pool",
    "round_half_away",
]
