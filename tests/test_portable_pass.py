"""The notebooks' second pass (`--nbval-portable`, root conftest.py): the student edition, other kernels.

A one-cell notebook prints the kernel's ``ONEDNN_MAX_CPU_ISA``, the vector code PyTorch chose and
the loops NumPy dispatches to, in a checked cell whose stored output is the portable setting: the
first pass (the caller's environment) must fail on it, the ``[student-portable]`` pass must pass.
A notebook with an exercise: the second pass runs its stub and not its solution, and fails when a
stub prints anything but what the teacher's run stored, or when that is not "not attempted yet".
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path) -> None:
    source = (
        "# NBVAL_CHECK_OUTPUT\nimport os\n"
        "import torch\n"
        "print(os.environ.get('ONEDNN_MAX_CPU_ISA'), 'torch uses', torch.backends.cpu.get_cpu_capability())\n"
        "from numpy._core._multiarray_umath import __cpu_features__, __cpu_dispatch__\n"
        "print('numpy dispatches to', [name for name in __cpu_dispatch__ if __cpu_features__.get(name)])"
    )
    cell = nbformat.v4.new_code_cell(source, execution_count=1)
    stored = "SSE41 torch uses DEFAULT\nnumpy dispatches to []\n"
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)


def test_the_portable_pass_sets_the_kernels_and_the_first_pass_does_not(pytester, monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("NPY_DISABLE_CPU_FEATURES", raising=False)
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    _notebook(pytester.path / "env.ipynb")
    result = pytester.runpytest_subprocess(
        "--nbval-lax", "--nbval-current-env", "--nbval-portable", "-p", "no:cacheprovider", "-v"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*env.ipynb[[]student-portable[]]::Cell 0 PASSED*", "FAILED env.ipynb::Cell 0 *"]
    )
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ  # the parent's environment is left as it was


def test_without_the_option_each_notebook_runs_once(pytester):
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    _notebook(pytester.path / "env.ipynb")
    result = pytester.runpytest_subprocess("--nbval-lax", "--nbval-current-env", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["env.ipynb::Cell 0", "1 test collected*"])


NOT_ATTEMPTED = "double: not attempted yet (replace the `raise NotImplementedError` with your code).\n"


def _exercise_notebook(path: Path, stub_prints: str, stored: str = NOT_ATTEMPTED) -> None:
    """A stub whose checker reports "not attempted yet", then a solution that fails when it runs."""
    stub = nbformat.v4.new_code_cell(
        "from course_lib.exercises.base import Case, Exercise, run_exercise\n"
        "exercise = Exercise('double', '(x) -> float', lambda x: 2 * x, [Case('one', (1,))], float,\n"
        "                    lambda got, expected: None if got == expected else 'differs')\n\n"
        "def double(x):\n"
        "    raise NotImplementedError  # your code\n\n"
        f"run_exercise(exercise, double){stub_prints}",
        execution_count=1,
    )
    stub.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    solution = nbformat.v4.new_code_cell("raise AssertionError('the solution ran')", execution_count=2)
    solution.metadata["tags"] = ["solution"]
    later = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(6 * 7)", execution_count=3)
    later.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    nbformat.write(nbformat.v4.new_notebook(cells=[stub, solution, later]), path)


def _run(pytester, *args):
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    return pytester.runpytest_subprocess(
        "--nbval-lax", "--nbval-current-env", "--nbval-portable", "-p", "no:cacheprovider", "-v", *args
    )


def test_the_second_pass_runs_the_stubs_and_not_the_solutions(pytester):
    _exercise_notebook(pytester.path / "good.ipynb", stub_prints="")
    # A stub that prints more than the checker's report, one that raises, one whose stored output
    # is not the report: each fails its second pass.
    _exercise_notebook(pytester.path / "stray.ipynb", stub_prints="\nprint('stray')")
    _exercise_notebook(pytester.path / "raises.ipynb", stub_prints=";1/0")
    _exercise_notebook(pytester.path / "stored.ipynb", stub_prints="", stored="double: all 1 cases pass\n")
    result = _run(pytester)
    result.stdout.fnmatch_lines_random([
        # First pass: the solution cell runs and fails.
        "FAILED good.ipynb::Cell 1 *",
        # Second pass: no solution cell; the stub and the later checked cell pass.
        "*good.ipynb[[]student-portable[]]::Cell 0 PASSED*",
        "*good.ipynb[[]student-portable[]]::Cell 1 PASSED*",
        "FAILED stray.ipynb[[]student-portable[]]::Cell 0*",
        "FAILED raises.ipynb[[]student-portable[]]::Cell 0*",
        "FAILED stored.ipynb[[]student-portable[]]::Cell 0*",
        "*stored output should say 'not attempted yet'*",
    ])  # fmt: skip
    # First pass: 4 solutions fail, and raises.ipynb's stub (7 pass). Second: the 3 bad stubs fail.
    result.assert_outcomes(passed=7 + 5, failed=5 + 3)
