"""Tests for course_lib.plotting.colors: one fixed colour per class index."""

import pytest

from course_lib.plotting.colors import class_color


def test_class_color_is_fixed_per_class_and_repeats_after_ten():
    assert class_color(3) == class_color(3) == class_color(13)
    assert class_color(1) != class_color(2)
    assert class_color(0) == pytest.approx((0.1216, 0.4667, 0.7059), abs=1e-3)  # tab10 blue
