"""Classical detection: HOG features with a linear SVM sliding window, and selective search."""

from course_lib.classical.hog import hog, hog_glyph
from course_lib.classical.selective_search import selective_search
from course_lib.classical.sliding_window import SlidingWindowDetector

__all__ = ["SlidingWindowDetector", "hog", "hog_glyph", "selective_search"]
