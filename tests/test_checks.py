"""course_lib._checks: one place for argument checks, so one mistake gets one error everywhere."""

import numpy as np
import pytest
import torch

from course_lib._checks import check_boxes, check_number, check_pair
from course_lib.anchors import generate_anchors
from course_lib.classical import hog


def test_check_pair_accepts_ints_pairs_and_numpy_ints():
    assert check_pair(3, "size") == (3, 3)
    assert check_pair((2, 5), "size") == (2, 5)
    assert check_pair([np.int64(4), 1], "size") == (4, 1)
    assert check_pair(np.int32(7), "size") == (7, 7)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (4.0, TypeError, r"size: expected an int or a pair \(h, w\), got 4.0"),
        ("4", TypeError, r"size: expected an int or a pair \(h, w\), got '4'"),
        (True, TypeError, r"size: expected an int or a pair \(h, w\), got True"),
        ((1, 2, 3), ValueError, r"size: expected an int or a pair \(h, w\), got 3 values"),
        ((1, 2.5), TypeError, r"size: expected an int, got float 2.5"),
        ((0, 1), ValueError, r"size: expected a value in \[1, inf\], got 0"),
    ],
)
def test_check_pair_says_what_it_expected(value, error, match):
    with pytest.raises(error, match=match):
        check_pair(value, "size", low=1)


def test_the_same_mistake_gets_the_same_error_in_every_module():
    # A float where an int (or pair of ints) belongs: TypeError naming the argument, everywhere.
    with pytest.raises(TypeError, match=r"stride: expected an int or a pair \(h, w\), got 4.0"):
        generate_anchors((16,), (1.0,), stride=4.0, grid_size=4)
    with pytest.raises(TypeError, match=r"pixels_per_cell: expected an int or a pair \(h, w\), got 8.0"):
        hog(np.zeros((32, 32)), pixels_per_cell=8.0)


def test_check_number_and_check_boxes():
    assert check_number(0.5, "t", low=0, high=1) == 0.5
    with pytest.raises(ValueError, match=r"t: expected a value in \[0, 1\], got 2"):
        check_number(2, "t", low=0, high=1)
    with pytest.raises(ValueError, match="t: expected a finite number, got nan"):
        check_number(float("nan"), "t")
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    assert check_boxes(boxes) is boxes
    assert check_boxes(boxes.long(), allow_integer=True).dtype == torch.int64
    with pytest.raises(TypeError, match="boxes: expected a floating-point tensor, got dtype torch.int64"):
        check_boxes(boxes.long())
