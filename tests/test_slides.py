"""The static reveal.js decks of `make slides`: they open offline and every slide fits the screen.

`make slides` writes one deck per notebook under slides/ and unpacks reveal.js and the scripts
nbconvert's template loads (require.js, jQuery, MathJax, the widget renderer) into slides/lib/
from npm, once. These tests rebuild the decks with `make slides` (no download once slides/lib/
exists; without it they skip, or fail under COURSE_REQUIRE_BROWSER=1 as in CI, where .ci/run
builds the decks first), then:

- read each deck's HTML: every script, style sheet and module it loads is a relative path;
- open notebook 02's deck from file:// in Chromium with every other request aborted: reveal.js
  starts, there are slides, the NMS explorer is drawn from its saved widget state, and nothing
  asked for the network;
- page through every deck at 1280 x 720 and measure each slide, once its saved widgets, figures
  and formulas are drawn: none may be taller than the slide (1280 x 720, lab/slides_config.py);
  a test per notebook, so the report names the decks that still have tall slides, and the fix is
  `.venv/bin/python lab/fit_slides.py notebooks/NN_name.ipynb`.

Without a browser: every cell of every notebook carries a ``slideshow`` dict and none uses
``slide_type: "-"`` (jupyterlab-deck hides such cells; a cell that continues a slide has ``{}``),
and lab/fit_slides.py plans its splits as documented, on hand-made measurements.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, _require_browser

ROOT = Path(__file__).resolve().parents[1]
SLIDES = ROOT / "slides"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
SCREEN = {"width": 1280, "height": 720}
_SPEC = importlib.util.spec_from_file_location("fit_slides", ROOT / "lab" / "fit_slides.py")
fit_slides = importlib.util.module_from_spec(_SPEC)  # lab/ is not a package: load the tool by path
sys.modules["fit_slides"] = fit_slides
_SPEC.loader.exec_module(fit_slides)
# Every URL a deck loads: <script src>, <link href>, and `import ... from '...'` in module scripts.
LOADED_URL = re.compile(
    r"<script[^>]*\ssrc=\"([^\"]*)\"|<link[^>]*\shref=\"([^\"]*)\"|import\s+\w+\s+from\s+'([^']*)'"
)


@pytest.fixture(scope="module")
def decks() -> Path:
    """slides/, freshly built by `make slides` from the notebooks as they are now."""
    if not (SLIDES / "lib" / ".installed").exists():
        reason = "the decks need slides/lib/ (run `make slides` once, it unpacks reveal.js from npm)"
        if os.environ.get("COURSE_REQUIRE_BROWSER"):
            pytest.fail(reason + "; COURSE_REQUIRE_BROWSER is set, so this is a failure")
        pytest.skip(reason)
    subprocess.run(["make", "--no-print-directory", "slides"], cwd=ROOT, check=True, capture_output=True)
    return SLIDES


def _deck(decks: Path, notebook: Path) -> Path:
    return decks / f"{notebook.stem}.slides.html"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_deck_loads_only_local_files(decks, notebook):
    html = _deck(decks, notebook).read_text(encoding="utf-8")
    urls = [next(group for group in match if group) for match in LOADED_URL.findall(html)]
    assert any("reveal.js" in url for url in urls), f"no reveal.js in {urls}"
    remote = [url for url in urls if re.match(r"(https?:)?//", url)]
    assert not remote, f"{notebook.name}'s deck loads {remote} from the network"
    for url in urls:
        if not url.startswith(("data:", "#")):
            target = decks / url.split("?")[0]
            assert target.exists(), f"{notebook.name}'s deck loads {url}, missing at {target}"


def _open_offline(browser, deck: Path):
    """A page showing ``deck`` from file://; returns it and the list of aborted requests."""
    page = browser.new_page(viewport=SCREEN)
    refused: list[str] = []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_files)
    page.goto(deck.as_uri())
    page.wait_for_selector(".reveal.ready", state="attached", timeout=60_000)
    # The template loads reveal.js as an AMD module, so there is no global `Reveal`: this asks
    # require.js for it (window.deck), then waits for the widgets, images and MathJax to be drawn.
    undrawn = page.evaluate(fit_slides.SETTLE)
    assert undrawn == 0, f"{deck.name}: {undrawn} saved widget views were not drawn"
    return page, refused


@pytest.mark.browser
def test_deck_opens_offline(decks):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    notebook = ROOT / "notebooks" / "02_anchors_and_nms.ipynb"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page, refused = _open_offline(browser, _deck(decks, notebook))
            num_slides = page.evaluate("() => deck.getTotalSlides()")
            sections = page.locator(".reveal .slides section").count()
            # The NMS explorer, drawn by the widget renderer from the state saved in the notebook.
            status = page.locator(".widget-html", has_text=re.compile(r"kept \d+ of \d+ boxes"))
            expect(status.first).to_be_attached(timeout=30_000)
            page.screenshot(path=str(ROOT / "test-artifacts" / "slides-02_anchors_and_nms.png"))
        finally:
            browser.close()

    assert num_slides > 1 and sections > 1, f"reveal.js shows {num_slides} slides ({sections} sections)"
    assert not refused, f"the deck asked the network for {refused}"


@pytest.mark.browser
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_deck_slides_fit_the_screen(decks, notebook):
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page, _ = _open_offline(browser, _deck(decks, notebook))
            # Each slide's height in slide pixels, before reveal.js scales the 1280 x 720 slide to
            # the window (x 0.96 here, its 4% margin): taller than the slide means cut off.
            slides = page.evaluate(fit_slides.MEASURE)
            limit = page.evaluate("() => deck.getConfig().height")
        finally:
            browser.close()

    assert limit == SCREEN["height"], f"the deck's slide is {limit} px tall, expected 720 (16:9)"
    assert len(slides) > 1, f"{notebook.name}: reveal.js found {len(slides)} slides"
    too_tall = [
        f"slide {slide['h']}.{slide['v']}: {slide['height']} px"
        for slide in slides
        if slide["height"] > limit
    ]
    assert not too_tall, (
        f"{notebook.name}: {len(too_tall)} of {len(slides)} slides are taller than {limit} px "
        f"(fix: .venv/bin/python lab/fit_slides.py notebooks/{notebook.name}):\n" + "\n".join(too_tall)
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_cell_has_slideshow_metadata(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    missing = [cell.get("id") for cell in cells if not isinstance(cell["metadata"].get("slideshow"), dict)]
    continuing = [cell.get("id") for cell in cells if fit_slides.slide_type(cell) == "-"
                  and "slide_type" in cell["metadata"].get("slideshow", {})]
    assert not missing, f"{notebook.name}: cells without a slideshow dict: {missing}"
    assert not continuing, (
        f'{notebook.name}: cells with slide_type "-" (jupyterlab-deck hides them; use "slideshow": {{}}): '
        f"{continuing}"
    )


def _cell(cell_id: str, slide_type: str | None = None) -> dict:
    slideshow = {} if slide_type is None else {"slide_type": slide_type}
    return {"cell_type": "markdown", "id": cell_id, "metadata": {"slideshow": slideshow}, "source": ""}


def _measured(*stacks: list[tuple[str, float]], limit: int = 720, padding: float = 20) -> object:
    """A hand-made measurement: each slide a list of (cell id, height), cells stacked from y = 20."""
    slides = []
    for h, stack in enumerate(stacks):
        top, cells = 20.0, []
        for cell_id, height in stack:
            cells.append({"id": cell_id, "top": top, "bottom": top + height})
            top += height
        slides.append({"h": h, "v": 0, "height": top + padding, "padding": padding, "cells": cells})
    return fit_slides.Measure(slides=slides, limit=limit)


def test_fit_slides_splits_where_a_slide_overflows():
    notebook = {"cells": [_cell("title", "slide"), _cell("a"), _cell("b"), _cell("c"), _cell("d")]}
    # Cells end at y = 120, 320, 620, 920, 1220 and the last one must end by 720 - 20 (padding):
    # "c" starts a subslide, which moves it up by 600; "d" then ends at 620 and stays with it.
    measure = _measured([("title", 100), ("a", 200), ("b", 300), ("c", 300), ("d", 300)])
    assert fit_slides.plan_splits(notebook, measure) == (["c"], [])
    # "b" ends at 770: it starts a subslide (up by 300, ends at 470); "c" ends at 1070 - 300 = 770:
    # another (up by 750); "d" ends at 1370 - 750 = 620 and stays with "c".
    measure = _measured([("title", 100), ("a", 200), ("b", 450), ("c", 300), ("d", 300)])
    assert fit_slides.plan_splits(notebook, measure) == (["b", "c"], [])


def test_fit_slides_keeps_a_fragment_together_and_skips_notes():
    notebook = {"cells": [
        _cell("title", "slide"), _cell("notes", "notes"), _cell("frag", "fragment"), _cell("more"),
        _cell("hidden", "skip"), _cell("next", "subslide"),
    ]}
    assert fit_slides.fragment_starts(notebook) == {
        "title": "title", "frag": "frag", "more": "frag", "next": "next"
    }
    # "more" overflows, and continues the fragment that "frag" starts: the split is at "frag".
    measure = _measured([("title", 300), ("frag", 200), ("more", 300)], [("next", 100)])
    assert fit_slides.plan_splits(notebook, measure) == (["frag"], [])


def test_fit_slides_reports_a_cell_taller_than_the_slide():
    notebook = {"cells": [_cell("title", "slide"), _cell("huge")]}
    measure = _measured([("title", 100), ("huge", 800)])
    assert fit_slides.plan_splits(notebook, measure) == (["huge"], ["huge"])


def test_fit_slides_normalize():
    notebook = {"cells": [_cell("a", "-"), {"id": "b", "metadata": {}}, _cell("c", "fragment")]}
    assert fit_slides.normalize(notebook)
    assert [cell["metadata"]["slideshow"] for cell in notebook["cells"]] == [
        {}, {}, {"slide_type": "fragment"}
    ]
    assert not fit_slides.normalize(notebook)


def test_fit_slides_deck_safe_promotes_a_subslide_after_a_lone_subslide():
    # jupyterlab-deck 0.2.0 cannot step from the one-cell subslide "s1" down to "s2": "s2" becomes
    # a slide. "s2b" follows a slide and "s3" a subslide with a continuing cell: both are fine.
    notebook = {"cells": [
        _cell("title", "slide"), _cell("s1", "subslide"), _cell("note", "notes"), _cell("s2", "subslide"),
        _cell("s2b", "subslide"), _cell("more"), _cell("s3", "subslide"),
    ]}
    assert fit_slides.deck_safe(notebook) == ["s2"]
    assert [fit_slides.slide_type(cell) for cell in notebook["cells"]] == [
        "slide", "subslide", "notes", "slide", "subslide", "-", "subslide"
    ]
    assert fit_slides.deck_safe(notebook) == []
