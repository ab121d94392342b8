"""Training recipes: one module per trained model, each with build, train and evaluate.

The zoo's networks (``backbone``, ``shapes_classifier``, ``digits_cnn``, ``rcnn``, ``fast_rcnn``,
``faster_rcnn``, with ``detection`` for what the detectors share) and the two HOG + SVM
sliding-window detectors of notebook 03 (``face_detector``, ``shape_detector``), which train in
seconds and are not shipped as checkpoints.
"""
