"""The student edition of the notebooks: the teacher edition without its solutions.

The stored notebooks are the teacher edition: each exercise is a *stub* cell (the student's function
with ``raise NotImplementedError``, then its checker) followed by a cell tagged ``solution``. The
student edition is the same notebook with

* every cell tagged ``solution`` removed;
* the outputs of every stub cell cleared (the stored run shows what the teacher's kernel said; the
  student runs the cell and sees "not attempted yet" from the checker);
* everything else as stored: the other outputs (a student reads the figures before running
  anything), the cell ids, the slide and notebook metadata, the saved widget state.

Building it twice gives the same bytes, and building it from a student edition changes nothing.
Run it with ``make student``, or::

    python -m course_lib.exercises.editions student OUTDIR [--notebooks notebooks]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from pathlib import Path

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"  # marks a stub explicitly; a code cell raising NotImplementedError is one too
_RAISES_NOT_IMPLEMENTED = re.compile(r"^\s*raise NotImplementedError\b", re.MULTILINE)


def is_solution(cell: dict) -> bool:
    """A cell tagged ``solution``: the worked answer, removed from the student edition."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def is_stub(cell: dict) -> bool:
    """An exercise cell the student fills in: tagged ``exercise``, or code that raises NotImplementedError."""
    if cell.get("cell_type") != "code" or is_solution(cell):
        return False
    if EXERCISE_TAG in cell.get("metadata", {}).get("tags", []):
        return True
    return bool(_RAISES_NOT_IMPLEMENTED.search("".join(cell.get("source", ""))))


def student_notebook(notebook: dict) -> dict:
    """The student edition of one notebook (a new dict; ``notebook`` is left as it is).

    Args:
        notebook: a notebook as ``json.load`` reads it (nbformat 4).

    Returns:
        The notebook without its ``solution`` cells, with the outputs of its stub cells cleared.
    """
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise TypeError(f"expected a notebook (a dict with a list of cells), got {type(notebook).__name__}")
    if notebook.get("nbformat") != 4:
        raise ValueError(f"expected an nbformat 4 notebook, got nbformat {notebook.get('nbformat')!r}")
    student = copy.deepcopy(notebook)
    student["cells"] = [cell for cell in student["cells"] if not is_solution(cell)]
    for cell in student["cells"]:
        if is_stub(cell):
            cell["outputs"] = []
            cell["execution_count"] = None
            cell["metadata"].pop("execution", None)  # the timings of the teacher's run
    return student


def write_notebook(notebook: dict, path: Path) -> None:
    """Write a notebook as the repository stores them (indent 1, UTF-8, a trailing newline)."""
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build_student_edition(out_dir: Path | str, notebooks_dir: Path | str = "notebooks") -> list[Path]:
    """Write the student edition of every ``*.ipynb`` of ``notebooks_dir`` into ``out_dir``.

    Args:
        out_dir: the folder to write to (created if missing); it must not be ``notebooks_dir``.
        notebooks_dir: the teacher edition.

    Returns:
        The paths written, in name order.
    """
    source, target = Path(notebooks_dir), Path(out_dir)
    if not source.is_dir():
        raise ValueError(f"expected a folder of notebooks, got {str(source)!r}")
    if target.resolve() == source.resolve():
        raise ValueError(f"the student edition would overwrite the teacher edition in {str(source)!r}")
    paths = sorted(source.glob("*.ipynb"))
    if not paths:
        raise ValueError(f"expected notebooks in {str(source)!r}, found none")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        write_notebook(student_notebook(notebook), target / path.name)
        written.append(target / path.name)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.exercises.editions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("edition", choices=["student"], help="the edition to build")
    parser.add_argument("out_dir", type=Path, help="where to write it, e.g. student/")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="the teacher edition")
    args = parser.parse_args(argv)
    try:
        written = build_student_edition(args.out_dir, args.notebooks)
    except ValueError as error:
        parser.error(str(error))  # exits with status 2 and the message, no traceback
    print(f"Student edition: {len(written)} notebooks in {args.out_dir}/ (solutions removed, stubs cleared).")


if __name__ == "__main__":
    main()
