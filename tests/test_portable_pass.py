"""The notebooks' second pass (`--nbval-portable`, root conftest.py) really runs under other kernels.

A one-cell notebook prints the kernel's ``ONEDNN_MAX_CPU_ISA``, the vector code PyTorch chose and
the loops NumPy dispatches to, in a checked cell whose stored output is the portable setting: the
first pass (the caller's environment) must fail on it, the ``[portable]`` pass must pass.
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
    result.stdout.fnmatch_lines(["*env.ipynb[[]portable[]]::Cell 0 PASSED*", "FAILED env.ipynb::Cell 0 *"])
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ  # the parent's environment is left as it was


def test_without_the_option_each_notebook_runs_once(pytester):
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    _notebook(pytester.path / "env.ipynb")
    result = pytester.runpytest_subprocess("--nbval-lax", "--nbval-current-env", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["env.ipynb::Cell 0", "1 test collected*"])
