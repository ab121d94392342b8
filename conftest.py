"""The notebooks' two passes in `make test`, and how two pytest workers share them.

Checked notebook outputs are stored on one machine and must hold on every other. oneDNN and
PyTorch pick their vector kernels per CPU (AVX-512 here, AVX2 or SSE there, NEON on ARM), and the
last digits of a float move with them; NumPy dispatches its loops the same way. With
``--nbval-portable`` (what `make test` passes), every notebook is collected a second time as
``NAME.ipynb[student-portable]``: the **student edition** of the notebook (its ``solution`` cells
removed, course_lib.exercises.editions), run with the oldest x86 kernels (``PORTABLE_KERNELS``).
One pass checks two things:

* a checked output that depends on the CPU fails here instead of on a student's laptop;
* the student edition runs to the end: no later cell needs a removed solution, and every exercise
  stub prints what the teacher's run stored for it, the checker's "not attempted yet" (no
  traceback, no stray value), although the student edition hands it out cleared.

`make test` runs on two pytest-xdist workers (``-n 2 --dist loadfile --no-loadscope-reorder``).
``loadfile`` sends everything up to a node id's first ``::`` to one worker: each pass of a
notebook (its cells share one kernel), and each test module (its module-scoped fixtures are built
once). Here the passes are ordered by their stored run time, longest first, and the unit tests
fill the gaps after them; ``--no-loadscope-reorder`` keeps that order. Without xdist the order is
the same.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import datetime

# Kernels other than the ones a current x86 CPU picks by itself: SSE4.1 convolutions and
# matrix products in oneDNN, PyTorch's non-vectorized element-wise code, and NumPy's baseline
# loops instead of its AVX2 / AVX-512 ones (selective search, HOG and the metrics are NumPy).
PORTABLE_KERNELS = {
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "ATEN_CPU_CAPABILITY": "default",
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
}
PORTABLE_SUFFIX = "[student-portable]"


def pytest_addoption(parser):
    parser.addoption(
        "--nbval-portable",
        action="store_true",
        help=f"also run every notebook's student edition with {PORTABLE_KERNELS} in its kernel's environment",
    )


def pytest_collect_file(file_path, parent):
    config = parent.config
    if file_path.suffix != ".ipynb" or not config.getoption("--nbval-portable"):
        return None
    if not (config.option.nbval or config.option.nbval_lax):
        return None
    import nbformat
    from nbval.plugin import IPyNbCell, IPyNbFile, find_comment_markers, find_metadata_tags

    from course_lib.exercises.base import NOT_ATTEMPTED
    from course_lib.exercises.editions import is_solution, is_stub, student_notebook

    class StubCell(IPyNbCell):
        """An exercise stub. Compared with what the teacher's run stored for it (the checker's report,
        as a student sees it), which must itself say "not attempted yet"."""

        def runtest(self):
            stored = "".join(output.get("text", "") for output in self.cell.outputs)
            if f": {NOT_ATTEMPTED} (replace the `raise NotImplementedError`" not in stored:
                message = "An exercise stub's stored output should say 'not attempted yet'"
                self.raise_cell_error(message, stored)
            super().runtest()

    class StudentPortableNotebook(IPyNbFile):
        """The notebook's student edition, in a kernel started with ``PORTABLE_KERNELS``."""

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

        def collect(self):
            # nbval's own collect() reads the file; this one reads its student edition instead.
            teacher = json.loads(self.path.read_text(encoding="utf-8"))
            student = student_notebook(teacher)
            kept = [cell for cell in teacher["cells"] if not is_solution(cell)]
            for cell, stored in zip(student["cells"], kept, strict=True):
                if is_stub(cell):  # the student edition clears it; the teacher's run is the reference
                    cell["outputs"], cell["execution_count"] = stored["outputs"], stored["execution_count"]
            self.nb = nbformat.reads(json.dumps(student), as_version=4)
            code_cells = [cell for cell in self.nb.cells if cell.cell_type == "code"]
            for number, cell in enumerate(code_cells):
                options = defaultdict(bool, find_metadata_tags(cell.metadata))
                options.update(find_comment_markers(cell.source))
                options.setdefault("check", self.compare_outputs)
                if is_stub(cell):
                    options["check"] = True  # every output, as with nbval's strict mode
                kind = StubCell if is_stub(cell) else IPyNbCell
                name = f"Cell {number}"
                yield kind.from_parent(self, name=name, cell_num=number, cell=cell, options=options)

    relative = file_path.relative_to(config.rootpath).as_posix()
    return StudentPortableNotebook.from_parent(
        parent, path=file_path, name=file_path.name + PORTABLE_SUFFIX, nodeid=relative + PORTABLE_SUFFIX
    )


def _stored_seconds(path) -> float:
    """How long the stored run of a notebook took (nbclient records each cell's start and end)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return 0.0
    total = 0.0
    for cell in cells:
        times = cell.get("metadata", {}).get("execution", {})
        start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
        if start and end:
            total += (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return total


def _group(item) -> str:
    """A notebook's pass, or a test module: what one worker runs from start to end (xdist's
    ``loadfile`` scope, the node id up to its first ``::``)."""
    return item.nodeid.split("::")[0]


def pytest_collection_modifyitems(session, config, items):
    cost = {}
    for item in items:
        group = _group(item)
        if group not in cost:
            notebook = str(item.fspath).endswith(".ipynb")
            portable = PORTABLE_SUFFIX in group
            # Portable kernels run about twice as slow; unit modules go after every notebook.
            cost[group] = _stored_seconds(item.path) * (2 if portable else 1) if notebook else -1.0
    # Longest first; sort is stable, so cells stay in order and so do the unit modules.
    items.sort(key=lambda item: (item.get_closest_marker("browser") is not None, -cost[_group(item)]))
