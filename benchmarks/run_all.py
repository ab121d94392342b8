"""Run every benchmarks/bench_*.py, print the rows, and fill the README's benchmark table.

Each benchmark module exposes ``main() -> list[dict]`` with keys ``name``, ``ours_ms``,
``ref_ms`` and ``ratio`` (ours / reference; below 1 means course_lib is faster).
The table sits in README.md between the ``<!-- bench:start -->`` and ``<!-- bench:end -->``
markers; everything between them is replaced. A benchmark with a table of its own (the
explorers' redraw times, ``bench_explorers.py``) also exposes ``MARKERS`` and ``markdown(rows)``:
its rows go between its own markers instead.
"""

from __future__ import annotations

import datetime
import importlib.util
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    return module


def table(rows: list[dict]) -> str:
    lines = [
        "| benchmark | course_lib (ms) | reference (ms) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {row['ours_ms']:.2f} | {row['ref_ms']:.2f} | {row['ratio']:.2f}× |")
    when = datetime.date.today().isoformat()
    lines.append("")
    lines.append(
        f"Measured by `make bench` on {when}: {platform.machine()}, {torch.get_num_threads()} torch "
        f"thread(s), torch {torch.__version__}. Ratio = course_lib time / reference time."
    )
    return "\n".join(lines)


def main(names: list[str]) -> None:
    """Run the benchmarks named on the command line (``nms metrics``), or all of them."""
    rows: list[dict] = []
    own_tables: list[tuple[tuple[str, str], str]] = []  # (markers, markdown)
    paths = sorted(HERE.glob("bench_*.py"))
    if names:
        paths = [path for path in paths if path.stem.removeprefix("bench_") in names]
    for path in paths:
        print(f"== {path.name}")
        module = load(path)
        if hasattr(module, "MARKERS"):
            own_tables.append((module.MARKERS, module.markdown(module.main())))
        else:
            rows.extend(module.main())
    text = README.read_text()
    if rows:
        own_tables.insert(0, ((START, END), table(rows)))
    for (start, end), markdown in own_tables:
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{start}\n{markdown}\n{end}{tail}"
            print(f"updated the table between {start} and {end} in {README.name}")
    README.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
