"""The reference libraries are installed side by side with exactly one OpenCV.

pytorch-grad-cam asks for ``opencv-python-headless``; the course pins ``opencv-contrib-python-headless``
(selective search lives in its ``cv2.ximgproc``). Both install a ``cv2`` package, and whichever is
installed last overwrites the other's files, so the Makefile installs pytorch-grad-cam with
``--no-deps`` (``requirements-nodeps.txt``). This test fails if a second OpenCV slips in.
"""

from importlib import metadata

import numpy as np


def cv2_distributions() -> list[str]:
    """Installed distributions whose files include the top-level ``cv2`` package."""
    names = set()
    for distribution in metadata.distributions():
        files = distribution.files or []
        if any(str(path).split("/")[0] == "cv2" for path in files):
            names.add(distribution.metadata["Name"].lower())
    return sorted(names)


def test_exactly_one_opencv_and_it_is_the_contrib_build():
    assert cv2_distributions() == ["opencv-contrib-python-headless"]


def test_ximgproc_selective_search_and_the_references_import():
    import cv2
    import pytorch_grad_cam  # noqa: F401
    from captum.attr import LayerGradCam  # noqa: F401

    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(np.zeros((16, 16, 3), np.uint8))
    search.switchToSelectiveSearchFast()
    assert search.process().shape[1] == 4
