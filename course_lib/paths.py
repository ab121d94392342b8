"""Where the course's files are: shipped checkpoints, annotations, and the git-ignored caches.

Every module finds ``data/`` through this one place, in this order:

1. the folder named by the environment variable ``COURSE_DATA_DIR``, if set;
2. ``data/`` beside the package, in a checkout of the repository (``make lab`` installs
   ``course_lib`` in editable mode, so this is the usual case);
3. the nearest ``data/`` above the current folder that holds ``checkpoints/zoo.json`` (a
   notebook started from ``notebooks/`` with ``course_lib`` installed without ``-e``).

If none is found, ``DATA_DIR`` is still the path of case 2, and the first file that is read there
fails with a message naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENT_VARIABLE = "COURSE_DATA_DIR"
REGISTRY_NAME = "zoo.json"


def find_data_dir(environ: dict | None = None, start: Path | None = None) -> Path:
    """The course's ``data/`` folder, found as the module docstring says.

    Args:
        environ: the environment to read (``os.environ`` by default).
        start: the folder to search upwards from (the current folder by default).
    """
    environ = os.environ if environ is None else environ
    if environ.get(ENVIRONMENT_VARIABLE):
        return Path(environ[ENVIRONMENT_VARIABLE]).expanduser().resolve()
    beside_package = Path(__file__).resolve().parents[1] / "data"
    if (beside_package / "checkpoints" / REGISTRY_NAME).exists():
        return beside_package
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / "data" / "checkpoints" / REGISTRY_NAME).exists():
            return candidate / "data"
    return beside_package


DATA_DIR = find_data_dir()
CHECKPOINT_DIR = DATA_DIR / "checkpoints"  # shipped safetensors files and zoo.json
ANNOTATIONS_DIR = DATA_DIR / "annotations"  # hand-made boxes of the sample photos
CACHE_DIR = DATA_DIR / "cache"  # git-ignored: proposals, interrupted trainings
