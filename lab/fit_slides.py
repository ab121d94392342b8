"""Fit a notebook's reveal.js slides to the screen: start a new subslide where a slide overflows.

Usage (from the repository root, after `make slides` has unpacked slides/lib/ once):

    .venv/bin/python lab/fit_slides.py notebooks/05_rcnn.ipynb notebooks/06_fast_rcnn.ipynb
    .venv/bin/python lab/fit_slides.py --check notebooks/*.ipynb   # measure only, change nothing

For each notebook it builds the deck as `make slides` does (lab/slides_config.py) into a scratch
file under slides/, opens it offline in Chromium (Playwright, /usr/bin/chromium) at 1280 x 720,
waits for the saved widgets, the figures and MathJax, and measures where every shown cell of every
slide starts and ends. Then, slide by slide and top to bottom, the first cell that reaches below the
slide's height (720 px, the deck's configured height) becomes a ``subslide``, and counting starts
again from it. It rebuilds and measures again until every slide fits (at most three rounds).

Rules, so that the result is predictable:
- it writes only ``metadata.slideshow`` of cells: ``slide_type`` ``"-"`` becomes ``{}`` (what
  jupyterlab-deck shows), a missing ``slideshow`` becomes ``{}``, and a split sets ``"subslide"``;
- it never removes a split, never touches ``skip`` and ``notes`` cells (they are not on a slide),
  and never splits inside a fragment: a fragment and the cells that continue it move together;
- jupyterlab-deck 0.2.0 (the live deck in JupyterLab) cannot reach a subslide whose previous
  subslide is a single cell (its `_getExtents` handles a subslide after a slide or after a
  continuing cell, not after a lone subslide: "down" jumps over it); such a subslide becomes a
  ``slide``, which both decks step to (see `deck_safe`);
- a single cell taller than the slide cannot be fixed by splitting (lab/reveal-offline/fit.css
  caps inputs, printed text and figures, so this should not happen); it is reported.

It prints, per notebook, the number of slides and the tallest one before and after, and exits
with status 1 if a slide is still taller than the screen.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLIDES = ROOT / "slides"
CONFIG = Path(__file__).resolve().parent / "slides_config.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
SCREEN = {"width": 1280, "height": 720}
MAX_ROUNDS = 3
CONTINUE = "-"  # nbconvert's name for a cell that continues the current slide

# Wait until the deck is drawn as the audience sees it: reveal.js ready, every saved widget view
# rendered by the widget manager, every image decoded, MathJax done.
SETTLE = """async () => {
    await new Promise((resolve) => require(['lib/reveal.js/dist/reveal.js'], (reveal) => {
        window.deck = reveal; resolve(); }));
    const views = () => [...document.querySelectorAll(
        'script[type="application/vnd.jupyter.widget-view+json"]')];
    const drawn = (script) => script.parentElement.querySelector('.jupyter-widgets') !== null;
    for (let waited = 0; waited < 30000 && !views().every(drawn); waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await Promise.all([...document.images].map((image) => image.decode().catch(() => null)));
    if (window.MathJax && MathJax.Hub) { await new Promise((resolve) => MathJax.Hub.Queue(resolve)); }
    return views().filter((script) => !drawn(script)).length;
}"""

# Every slide (reveal.js lays out only the slides near the current one, so visit each): its height,
# its padding below the last cell, and the top and bottom of each cell shown on it, in slide pixels
# (before reveal.js scales the slide to the window).
MEASURE = """() => deck.getSlides().map((slide) => {
    const {h, v} = deck.getIndices(slide);
    deck.slide(h, v);
    const scale = deck.getScale();
    const top = slide.getBoundingClientRect().top;
    const cells = [...slide.querySelectorAll('.jp-Cell')]
        .filter((cell) => !cell.closest('aside'))
        .map((cell) => {
            const box = cell.getBoundingClientRect();
            return {id: cell.id.replace('cell-id=', ''),
                    top: (box.top - top) / scale, bottom: (box.bottom - top) / scale};
        });
    const padding = parseFloat(getComputedStyle(slide).paddingBottom) || 0;
    return {h, v, height: slide.scrollHeight, padding, cells};
})"""


@dataclass
class Measure:
    """The measured deck: each slide's height and its cells, and the slide height to fit in."""

    slides: list[dict]
    limit: int

    @property
    def tallest(self) -> int:
        return max(slide["height"] for slide in self.slides)

    @property
    def too_tall(self) -> list[dict]:
        return [slide for slide in self.slides if slide["height"] > self.limit]


def slide_type(cell: dict) -> str:
    """The cell's slide type as nbconvert reads it ("-" when the cell continues the slide)."""
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", CONTINUE)


def normalize(notebook: dict) -> bool:
    """Give every cell a ``slideshow`` dict and drop ``slide_type: "-"``; return whether it changed."""
    changed = False
    for cell in notebook["cells"]:
        metadata = cell.setdefault("metadata", {})
        slideshow = metadata.get("slideshow")
        if not isinstance(slideshow, dict):
            metadata["slideshow"] = {}
            changed = True
        elif slideshow.get("slide_type") == CONTINUE:
            del slideshow["slide_type"]
            changed = True
    return changed


def fragment_starts(notebook: dict) -> dict[str, str]:
    """For each cell id, the id of the cell where it may start a subslide.

    A cell that continues a fragment maps to the fragment's first cell (a split there keeps the
    fragment together); every other shown cell maps to itself.
    """
    starts: dict[str, str] = {}
    fragment = None
    for cell in notebook["cells"]:
        kind = slide_type(cell)
        if kind in ("slide", "subslide"):
            fragment = None
        elif kind == "fragment":
            fragment = cell["id"]
        if kind not in ("skip", "notes"):
            starts[cell["id"]] = fragment if kind == CONTINUE and fragment else cell["id"]
    return starts


def plan_splits(notebook: dict, measure: Measure) -> tuple[list[str], list[str]]:
    """The ids of the cells that should start a subslide, and the cells too tall for any slide."""
    starts = fragment_starts(notebook)
    splits: list[str] = []
    too_tall: list[str] = []
    for slide in measure.slides:
        cells = slide["cells"]
        if not cells:
            continue
        position = {cell["id"]: index for index, cell in enumerate(cells)}
        first = 0  # index of the cell the current (sub)slide starts at
        shift = 0.0  # how far the cells move up when a split makes cells[first] the top cell
        limit = measure.limit - slide["padding"]  # where the last cell must end
        for index, cell in enumerate(cells):
            if cell["bottom"] - shift <= limit:
                continue
            start = position.get(starts.get(cell["id"], cell["id"]), index)
            if start > first:
                first = start
                shift = cells[start]["top"] - cells[0]["top"]
                splits.append(cells[start]["id"])
            if cell["bottom"] - shift > limit:
                too_tall.append(cell["id"])
    return splits, too_tall


def deck_safe(notebook: dict) -> list[str]:
    """Turn each subslide that follows a one-cell subslide into a slide; return their ids.

    jupyterlab-deck 0.2.0 links a subslide to the last cell of the slide instead of the previous
    subslide when that subslide has no continuing or fragment cell, so "down" skips it and the
    lecturer never sees it. A slide is linked from every subslide before it ("forward").
    """
    changed: list[str] = []
    group, continued = None, False  # the type of the current (sub)slide; whether it has more cells
    for cell in notebook["cells"]:
        kind = slide_type(cell)
        if kind in ("skip", "notes"):
            continue
        if kind == "subslide" and group == "subslide" and not continued:
            cell["metadata"]["slideshow"]["slide_type"] = kind = "slide"
            changed.append(cell["id"])
        if kind in ("slide", "subslide"):
            group, continued = kind, False
        else:
            continued = True
    return changed


def build(notebook_path: Path, output_stem: str) -> Path:
    """Write the deck of ``notebook_path`` as slides/<output_stem>.slides.html, as `make slides`."""
    from nbconvert.exporters import SlidesExporter
    from traitlets.config.loader import PyFileConfigLoader

    if not (SLIDES / "lib" / ".installed").exists():
        raise FileNotFoundError("slides/lib/ is missing: run `make slides` once (it unpacks reveal.js)")
    config = PyFileConfigLoader(CONFIG.name, path=str(CONFIG.parent)).load_config()
    html, _ = SlidesExporter(config=config).from_filename(str(notebook_path))
    deck = SLIDES / f"{output_stem}.slides.html"
    deck.write_text(html, encoding="utf-8")
    return deck


def measure(browser, deck: Path) -> Measure:
    """Open ``deck`` offline at 1280 x 720 and measure every slide and cell."""
    page = browser.new_page(viewport=SCREEN)
    try:
        page.route(
            "**/*",
            lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort(),
        )
        page.goto(deck.as_uri())
        page.wait_for_selector(".reveal.ready", state="attached", timeout=60_000)
        missing = page.evaluate(SETTLE)
        if missing:
            print(f"  warning: {missing} widget view(s) were not drawn; their height is not measured")
        slides = page.evaluate(MEASURE)
        limit = page.evaluate("() => deck.getConfig().height")
    finally:
        page.close()
    return Measure(slides=slides, limit=int(limit))


def _summary(measure: Measure) -> str:
    return (
        f"{len(measure.slides)} slides, tallest {measure.tallest:.0f} px, "
        f"{len(measure.too_tall)} taller than {measure.limit} px"
    )


def fit(browser, notebook_path: Path, check: bool) -> bool:
    """Fit (or with ``check``, only measure) one notebook; return whether every slide fits."""
    notebook = json.loads(notebook_path.read_text(encoding="utf-8"))
    changed = False if check else normalize(notebook)
    scratch = SLIDES / f".fit-{notebook_path.stem}.ipynb"
    try:
        for round_ in range(MAX_ROUNDS + 1):
            scratch.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            result = measure(browser, build(scratch, scratch.stem))
            if round_ == 0:
                print(f"{notebook_path.name}: before: {_summary(result)}")
            if check or not result.too_tall or round_ == MAX_ROUNDS:
                break
            splits, too_tall = plan_splits(notebook, result)
            by_id = {cell["id"]: cell for cell in notebook["cells"]}
            for cell_id in splits:
                by_id[cell_id]["metadata"]["slideshow"]["slide_type"] = "subslide"
                print(f"  new subslide at cell {cell_id}")
            for cell_id in too_tall:
                print(f"  cell {cell_id} alone is taller than {result.limit} px: shorten it by hand")
            changed = changed or bool(splits)
            if not splits:
                break
    finally:
        scratch.unlink(missing_ok=True)
        (SLIDES / f"{scratch.stem}.slides.html").unlink(missing_ok=True)
    if not check:
        # A subslide and a slide are both their own <section>: no slide changes height.
        promoted = deck_safe(notebook)
        if promoted:
            print(f"  subslide -> slide (for jupyterlab-deck) at cells {', '.join(promoted)}")
        changed = changed or bool(promoted)
        print(f"{notebook_path.name}: after:  {_summary(result)}")
        if changed:
            notebook_path.write_text(
                json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
            )
    for slide in result.too_tall:
        print(f"  slide {slide['h']}.{slide['v']} is {slide['height']:.0f} px tall")
    return not result.too_tall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks to fit (.ipynb)")
    parser.add_argument("--check", action="store_true", help="measure and report only, change nothing")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            parser.error(f"expected an existing .ipynb file, got {path}")

    from playwright.sync_api import sync_playwright

    all_fit = True
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            for path in args.notebooks:
                all_fit = fit(browser, path.resolve(), args.check) and all_fit
        finally:
            browser.close()
    return 0 if all_fit else 1


if __name__ == "__main__":
    sys.exit(main())
