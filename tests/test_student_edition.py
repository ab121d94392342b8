"""The student edition of every stored notebook: each removed solution leaves its stub behind.

``make student`` writes the student edition (course_lib.exercises.editions): the teacher edition
without its ``solution`` cells. Here, without running anything: the student edition of every
notebook has no solution cell, one stub per removed solution, and every stub comes before the
solution it stands for. That it *runs* to the end, each stub printing "not attempted yet", is the
notebooks' second pass in `make test` (``NAME.ipynb[student-portable]``, the root conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_lib.exercises.editions import is_solution, is_stub, student_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TEACHER = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))


def test_every_notebook_is_here():
    assert len(TEACHER) >= 20


@pytest.mark.parametrize("teacher", TEACHER, ids=lambda path: path.stem)
def test_each_removed_solution_leaves_a_stub_before_it(teacher):
    cells = json.loads(teacher.read_text(encoding="utf-8"))["cells"]
    student = student_notebook({"nbformat": 4, "cells": cells})["cells"]
    assert not any(is_solution(cell) for cell in student)
    assert sum(map(is_stub, student)) == sum(map(is_solution, cells))
    for index, cell in enumerate(cells):
        if is_solution(cell):  # the nearest code cell above a solution is its stub
            above = [other for other in cells[:index] if other["cell_type"] == "code"]
            assert above and is_stub(above[-1]), (teacher.name, index)
