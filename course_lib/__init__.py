"""course_lib: object detection and CNN visualization, written from scratch and checked
against the libraries practitioners use (torchvision.ops, pycocotools, OpenCV, Captum, ...)."""

__version__ = "0.1.0"
