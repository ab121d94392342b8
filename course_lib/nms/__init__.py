"""Non-maximum suppression: the lecture's greedy NMS, its fast kernel, and Soft-NMS.

``nms`` and ``batched_nms`` are the readable algorithm (``greedy.py``), the version a notebook
shows; ``fast_nms`` and ``fast_batched_nms`` (``fast.py``) give the same indices faster, and are
what the models call. ``nms_steps`` records the greedy loop step by step; ``soft_nms`` decays
scores instead of removing boxes (``soft.py``).
"""

from course_lib.nms.fast import fast_batched_nms, fast_nms
from course_lib.nms.greedy import batched_nms, nms, nms_steps
from course_lib.nms.soft import soft_nms

__all__ = ["batched_nms", "fast_batched_nms", "fast_nms", "nms", "nms_steps", "soft_nms"]
