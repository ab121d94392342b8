"""Classical detection: HOG features with a linear SVM sliding window, and selective search."""

from course_lib.classical.hog import hog, hog_glyph
from course_lib.classical.selective_search import Hierarchy, selective_search, selective_search_hierarchy
from course_lib.classical.sliding_window import SlidingWindowDetector

__all__ = [
    "Hierarchy",
    "SlidingWindowDetector",
    "hog",
    "hog_glyph",
    "selective_search",
    "selective_search_hierarchy",
]
