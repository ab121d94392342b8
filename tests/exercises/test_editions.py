"""Tests of course_lib.exercises.editions on a small synthetic notebook, and on the stored ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_lib.exercises.editions import build_student_edition, is_solution, is_stub, main, student_notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def code(cell_id: str, source: str, tags=(), outputs=None, execution_count=3) -> dict:
    metadata = {"slideshow": {"slide_type": "-"}, "execution": {"iopub.status.idle": "2026-01-01"}}
    if tags:
        metadata["tags"] = list(tags)
    return {"cell_type": "code", "id": cell_id, "metadata": metadata, "execution_count": execution_count,
            "source": source, "outputs": outputs if outputs is not None else [
                {"output_type": "stream", "name": "stdout", "text": ["printed\n"]}]}


def synthetic_notebook() -> dict:
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3"}, "widgets": {"state": {"model": 1}}},
        "cells": [
            {"cell_type": "markdown", "id": "intro", "metadata": {"slideshow": {"slide_type": "slide"}},
             "source": "# An exercise"},
            code("setup", "x = 1"),
            code("stub", "def f(a):\n    raise NotImplementedError  # your code\n\ncheck(f)"),
            code("answer", "def solution(a):\n    return a\n\nassert check(solution)", tags=["solution"]),
            code("tagged-stub", "def g(a):\n    ...  # your code\ncheck(g)", tags=["exercise"]),
            code("later", "print(x)", execution_count=9),
        ],
    }  # fmt: skip


def test_solutions_are_removed_and_stub_outputs_cleared():
    teacher = synthetic_notebook()
    student = student_notebook(teacher)
    assert [cell["id"] for cell in student["cells"]] == ["intro", "setup", "stub", "tagged-stub", "later"]
    for cell_id in ("stub", "tagged-stub"):
        stub = next(cell for cell in student["cells"] if cell["id"] == cell_id)
        assert stub["outputs"] == [] and stub["execution_count"] is None
        tags = {"tags": ["exercise"]} if cell_id == "tagged-stub" else {}
        assert stub["metadata"] == {"slideshow": {"slide_type": "-"}} | tags  # the run's timings dropped
        assert stub["source"] == next(cell for cell in teacher["cells"] if cell["id"] == cell_id)["source"]


def test_everything_else_is_kept_as_in_the_teacher_edition():
    teacher = synthetic_notebook()
    student = student_notebook(teacher)
    assert student["metadata"] == teacher["metadata"]  # kernel, saved widget state
    assert (student["nbformat"], student["nbformat_minor"]) == (4, 5)
    kept = {cell["id"]: cell for cell in teacher["cells"]}
    for cell in student["cells"]:
        if cell["id"] in ("intro", "setup", "later"):
            assert cell == kept[cell["id"]]  # outputs, execution counts and metadata as stored
    assert teacher == synthetic_notebook()  # the teacher edition is not touched


def test_ids_stay_unique_and_the_build_is_idempotent(tmp_path):
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "01_x.ipynb").write_text(json.dumps(synthetic_notebook(), indent=1) + "\n")
    first = build_student_edition(tmp_path / "student", tmp_path / "teacher")
    assert first == [tmp_path / "student" / "01_x.ipynb"]
    text = first[0].read_text()
    ids = [cell["id"] for cell in json.loads(text)["cells"]]
    assert len(ids) == len(set(ids))
    build_student_edition(tmp_path / "student", tmp_path / "teacher")
    assert first[0].read_text() == text  # twice: the same bytes
    build_student_edition(tmp_path / "again", tmp_path / "student")
    assert (tmp_path / "again" / "01_x.ipynb").read_text() == text  # of a student edition: unchanged
    assert text.endswith("}\n") and '\n "cells": [\n  {\n' in text  # indent 1, as the repository stores


def test_what_counts_as_a_solution_and_a_stub():
    assert is_solution(code("a", "x", tags=["solution"])) and not is_solution(code("b", "x"))
    assert is_stub(code("c", "def f():\n    raise NotImplementedError('your code here')"))
    assert not is_stub(code("d", "def f():\n    raise NotImplementedError", tags=["solution"]))
    assert not is_stub(code("e", "# no raise NotImplementedError here"))  # a comment is not a stub
    markdown = {"cell_type": "markdown", "id": "f", "metadata": {}, "source": "raise NotImplementedError"}
    assert not is_stub(markdown)


def test_bad_input_is_rejected(tmp_path):
    with pytest.raises(TypeError, match="expected a notebook"):
        student_notebook([])
    with pytest.raises(ValueError, match="expected an nbformat 4 notebook, got nbformat 3"):
        student_notebook({"nbformat": 3, "cells": []})
    with pytest.raises(ValueError, match="would overwrite the teacher edition"):
        build_student_edition(NOTEBOOKS, NOTEBOOKS)
    with pytest.raises(ValueError, match="expected a folder of notebooks"):
        build_student_edition(tmp_path / "out", tmp_path / "missing")
    with pytest.raises(ValueError, match="found none"):
        build_student_edition(tmp_path / "out", tmp_path)
    with pytest.raises(SystemExit):  # the command line says why, without a traceback
        main(["student", str(NOTEBOOKS), "--notebooks", str(NOTEBOOKS)])


def test_the_stored_notebooks_give_one_stub_per_solution(tmp_path, capsys):
    main(["student", str(tmp_path), "--notebooks", str(NOTEBOOKS)])
    count = len(list(NOTEBOOKS.glob("*.ipynb")))
    assert count >= 15  # 00-12 and 20-21 at least
    assert f"{count} notebooks in {tmp_path}/" in capsys.readouterr().out
    for teacher_path in sorted(NOTEBOOKS.glob("*.ipynb")):
        teacher = json.loads(teacher_path.read_text())
        student = json.loads((tmp_path / teacher_path.name).read_text())
        removed = [cell for cell in teacher["cells"] if is_solution(cell)]
        assert len(student["cells"]) == len(teacher["cells"]) - len(removed)
        assert sum(map(is_stub, student["cells"])) == len(removed), teacher_path.name
        assert all(cell["outputs"] == [] for cell in student["cells"] if is_stub(cell))
