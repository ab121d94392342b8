"""The student edition of every notebook runs to the end, and every exercise says "not attempted yet".

``make student`` writes the student edition (course_lib.exercises.editions): the teacher edition
without its ``solution`` cells. Later cells must not need a removed solution, and no checker may
fail the run on a stub. Slow: it executes all notebooks (about 5-8 minutes on two cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbclient
import nbformat
import pytest

from course_lib.exercises.base import NOT_ATTEMPTED
from course_lib.exercises.editions import build_student_edition, is_solution, is_stub

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TEACHER = sorted(NOTEBOOKS.glob("*.ipynb"))

pytestmark = pytest.mark.student_edition


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    build_student_edition(out, NOTEBOOKS)
    return out


@pytest.mark.parametrize("teacher", TEACHER, ids=lambda path: path.stem)
def test_the_student_edition_runs_to_the_end(teacher, student_dir):
    teacher_cells = json.loads(teacher.read_text())["cells"]
    notebook = nbformat.read(student_dir / teacher.name, as_version=4)
    assert not any(is_solution(cell) for cell in notebook.cells)
    stubs = [index for index, cell in enumerate(notebook.cells) if is_stub(cell)]
    assert len(stubs) == sum(map(is_solution, teacher_cells))  # one stub per removed solution

    # Raises CellExecutionError, naming the cell, if any cell fails.
    client = nbclient.NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(student_dir)}}
    )
    client.execute()

    for index in stubs:
        outputs = notebook.cells[index].outputs
        text = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
        assert f": {NOT_ATTEMPTED} (replace the `raise NotImplementedError`" in text, (index, text)
        # The checker's report only: no stray CheckResult(...) under it, no traceback.
        assert {output.output_type for output in outputs} == {"stream"}, (index, outputs)
