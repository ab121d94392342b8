"""Classical detection: HOG features with a linear SVM sliding window, and selective search."""

from course_lib.classical.hog import hog, hog_glyph

__all__ = ["hog", "hog_glyph"]
