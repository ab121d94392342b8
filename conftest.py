"""Run order for `make test`, and the notebooks' second pass under other CPU kernels.

Order: unit tests, then the notebooks under nbval, then the notebooks again under other kernels,
then the browser test.

Checked notebook outputs are stored on one machine and must hold on every other. oneDNN and
PyTorch pick their vector kernels per CPU (AVX-512 here, AVX2 or SSE there, NEON on ARM), and the
last digits of a float move with them; NumPy dispatches its loops the same way. With
``--nbval-portable`` (what `make test` passes), every notebook is collected a second time as
``NAME.ipynb[portable]``, whose kernel runs with the oldest x86 kernels (``PORTABLE_KERNELS``).
A checked output that depends on the CPU then fails here instead of on a student's laptop.
"""

from __future__ import annotations

import os

# Kernels other than the ones a current x86 CPU picks by itself: SSE4.1 convolutions and
# matrix products in oneDNN, PyTorch's non-vectorized element-wise code, and NumPy's baseline
# loops instead of its AVX2 / AVX-512 ones (selective search, HOG and the metrics are NumPy).
PORTABLE_KERNELS = {
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "ATEN_CPU_CAPABILITY": "default",
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
}
PORTABLE_SUFFIX = "[portable]"


def pytest_addoption(parser):
    parser.addoption(
        "--nbval-portable",
        action="store_true",
        help=f"also run every notebook with {PORTABLE_KERNELS} in its kernel's environment",
    )


def pytest_collect_file(file_path, parent):
    config = parent.config
    if file_path.suffix != ".ipynb" or not config.getoption("--nbval-portable"):
        return None
    if not (config.option.nbval or config.option.nbval_lax):
        return None
    from nbval.plugin import IPyNbFile

    class PortableNotebook(IPyNbFile):
        """A notebook whose kernel starts with ``PORTABLE_KERNELS`` in its environment."""

        def setup(self):
            saved = {name: os.environ.get(name) for name in PORTABLE_KERNELS}
            os.environ.update(PORTABLE_KERNELS)
            try:
                super().setup()  # starts the kernel, which inherits the environment
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value

    relative = file_path.relative_to(config.rootpath).as_posix()
    return PortableNotebook.from_parent(
        parent, path=file_path, name=file_path.name + PORTABLE_SUFFIX, nodeid=relative + PORTABLE_SUFFIX
    )


def _stage(item) -> int:
    path = str(item.fspath)
    if path.endswith(".ipynb"):
        return 2 if PORTABLE_SUFFIX in item.nodeid else 1
    if item.get_closest_marker("browser") is not None:
        return 3
    return 0


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_stage)  # sort is stable: the order inside each stage is kept

