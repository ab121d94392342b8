"""The browser tests: a real JupyterLab in Chromium runs notebook 02 as a student and a lecturer would.

Each test starts `jupyter lab` on 127.0.0.1 with a token over a temporary copy of the notebook and
with the course's JupyterLab settings (lab/overrides.json, what `make lab` installs), opens it in
Debian's Chromium driven by Playwright, runs all cells through the Run menu and waits for the
kernel to go idle. Then:

- the notebook view: move the NMS explorer's "IoU threshold" slider, the printed count of kept
  boxes changes;
- the deck (jupyterlab-deck): start it from the notebook toolbar, step with its on-screen remote to
  the NMS explorer's slide, move the slider, the count and the figure change;
- a reload: save, reload the page, and again with the kernel shut down; the explorer comes back as
  a widget (the course's settings save widget state), never as ``VBox(children=...)`` text.

Screenshots are saved under test-artifacts/. The server is stopped by its PID. CI sets
COURSE_REQUIRE_BROWSER=1, which turns a missing Chromium into a failure. One test without a
browser checks lab/overrides.json against the setting schemas JupyterLab has installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_anchors_and_nms.ipynb"
COURSE_SETTINGS = ROOT / "lab" / "overrides.json"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEPT_PATTERN = re.compile(r"kept (\d+) of (\d+) boxes")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _require_browser() -> None:
    missing = [what for what, ok in (
        (CHROMIUM, os.path.exists(CHROMIUM)),
        ("playwright", _has_playwright()),
    ) if not ok]
    if not missing:
        return
    reason = f"browser test needs {', '.join(missing)} (apt-get install chromium; pip install playwright)"
    if os.environ.get("COURSE_REQUIRE_BROWSER"):
        pytest.fail(reason + "; COURSE_REQUIRE_BROWSER is set, so this is a failure")
    pytest.skip(reason)


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(
        f"{base}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else None


def _installed_schema(plugin_id: str) -> dict:
    """The JSON schema JupyterLab serves for ``plugin_id`` ("package:plugin"), from this venv."""
    package, plugin = plugin_id.split(":")
    share = Path(sys.prefix) / "share" / "jupyter"
    candidates = [
        share / "lab" / "schemas" / package / f"{plugin}.json",  # JupyterLab's own plugins
        share / "labextensions" / package / "schemas" / package / f"{plugin}.json",  # extensions
    ]
    for path in candidates:
        if path.exists():
            return json.loads(path.read_text())
    raise AssertionError(f"no installed schema for {plugin_id}; looked in {candidates}")


def test_course_settings_match_installed_schemas():
    """Every setting in lab/overrides.json exists in the installed JupyterLab and is valid."""
    import jsonschema

    overrides = json.loads(COURSE_SETTINGS.read_text())
    assert overrides["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    for plugin_id, values in overrides.items():
        schema = _installed_schema(plugin_id)
        unknown = set(values) - set(schema["properties"])
        assert not unknown, f"{plugin_id} has no setting {sorted(unknown)}"
        for name, value in values.items():
            jsonschema.validate(value, schema["properties"][name])


@pytest.fixture
def lab_server(tmp_path):
    """A JupyterLab server on 127.0.0.1 over a temporary copy of notebook 02.

    It reads the course's settings from lab/overrides.json through its own application settings
    directory, as `make lab` installs them into the venv's, and its own user settings and
    workspaces, so nothing a developer set by hand changes what the test sees.
    """
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(NOTEBOOK, workdir / NOTEBOOK.name)
    app_settings = tmp_path / "app-settings"
    app_settings.mkdir()
    shutil.copy(COURSE_SETTINGS, app_settings / "overrides.json")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    log = open(tmp_path / "lab.log", "wb")
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workdir}",
        f"--LabApp.app_settings_dir={app_settings}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if os.geteuid() == 0:  # CI runs as root
        command.append("--allow-root")
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError(
                        "jupyter lab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.5)
        yield {"base": base, "token": token, "pid": process.pid, "log": tmp_path / "lab.log"}
    finally:
        # Stop the server (and the kernels it started, same process group) by its PID.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


def _wait_until_idle(page, server, timeout_s: float = 240) -> None:
    """Wait until no cell shows the [*] prompt and every kernel reports idle."""
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.locator(".jp-InputArea-prompt", has_text="[*]").count()
        try:
            kernels = _api(server["base"], server["token"], "/api/kernels")
        except OSError:
            # The server answers 500 now and then while a kernel starts or restarts (seen once
            # in CI); that is "not idle yet", not a failure.
            kernels = None
        busy = kernels is None or any(kernel["execution_state"] != "idle" for kernel in kernels)
        if running == 0 and not busy and kernels:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 2:
                return
        else:
            quiet_since = None
        time.sleep(0.5)
    raise AssertionError("the notebook did not finish running in time")


def _kept_count(status) -> tuple[int, int]:
    text = status.text_content() or ""
    match = KEPT_PATTERN.search(text)
    assert match, f"no 'kept k of n boxes' in {text!r}"
    return int(match.group(1)), int(match.group(2))


@contextlib.contextmanager
def _chromium(viewport: dict[str, int]):
    """A new page in Debian's Chromium, closed (with the browser) on exit."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser.new_page(viewport=viewport)
        finally:
            browser.close()


def _open_notebook(page, server) -> None:
    """Open the notebook and wait until its kernel has started."""
    page.goto(
        f"{server['base']}/lab/tree/{NOTEBOOK.name}?token={server['token']}", timeout=120_000
    )
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-KernelStatus", timeout=60_000)
    _wait_until_idle(page, server, timeout_s=120)


def _run_all(page, server) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    _wait_until_idle(page, server)


def _nms_explorer(page):
    """The NMS explorer's status line ("kept k of n boxes") and the widget box that holds it."""
    status = page.locator(".widget-html").filter(has_text=KEPT_PATTERN).first
    return status, page.locator(".widget-vbox").filter(has=status).last


def _move_iou_threshold(page, server, explorer, status) -> tuple[tuple[int, int], tuple[int, int]]:
    """Press ArrowLeft three times on the "IoU threshold" slider; return the counts around it."""
    from playwright.sync_api import expect

    # Other explorers may use the same label, so the slider is looked up inside this one.
    slider = explorer.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=re.compile(r"^IoU threshold$"))
    ).first
    slider.scroll_into_view_if_needed()
    before = _kept_count(status)
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for key in ["ArrowLeft", "ArrowLeft", "ArrowLeft"]:
        handle.press(key)
    expect(status).not_to_contain_text(f"kept {before[0]} of {before[1]} boxes", timeout=30_000)
    _wait_until_idle(page, server, timeout_s=60)  # every key press has been handled
    return before, _kept_count(status)


@pytest.mark.browser
def test_nms_slider_in_jupyterlab(lab_server):
    from playwright.sync_api import expect

    with _chromium({"width": 1400, "height": 1000}) as page:
        _open_notebook(page, lab_server)
        _run_all(page, lab_server)
        status, explorer = _nms_explorer(page)
        # JupyterLab skips rendering off-screen cells, so bring the explorer into view first.
        status.scroll_into_view_if_needed(timeout=60_000)
        expect(status).to_contain_text(KEPT_PATTERN, timeout=60_000)
        before, after = _move_iou_threshold(page, lab_server, explorer, status)
        page.screenshot(path=str(ARTIFACTS / "browser-02_anchors_and_nms.png"), full_page=False)

    assert before[1] == after[1], f"the number of boxes changed: {before} -> {after}"
    assert before[0] != after[0], f"moving the IoU threshold did not change the kept count: {before}"


@pytest.mark.browser
def test_nms_slider_in_deck(lab_server):
    """jupyterlab-deck presents the live notebook: step to the NMS explorer's slide and use it."""
    from playwright.sync_api import expect

    with _chromium({"width": 1280, "height": 720}) as page:
        _open_notebook(page, lab_server)
        _run_all(page, lab_server)
        # The deck starts at the active cell: make it the first one, in command mode.
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Escape")
        page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='deck'] button").click()
        expect(page.locator("body")).to_have_attribute("data-jp-deck-mode", "presenting")
        remote = page.locator(".jp-Deck-Remote")
        expect(remote).to_be_visible()

        # Step with the remote, as a lecturer clicks through: down through the cells of a slide
        # and its subslides, forward to the next slide, until the NMS explorer is on screen.
        status, explorer = _nms_explorer(page)
        steps = 0
        while not status.is_visible():
            down = remote.locator("button.jp-deck-mod-direction-down:not(.jp-mod-disabled)")
            forward = remote.locator("button.jp-deck-mod-direction-forward:not(.jp-mod-disabled)")
            if down.count():
                down.click()
            elif forward.count():
                forward.click()
            else:
                raise AssertionError(
                    f"reached the end of the deck after {steps} steps without showing the NMS "
                    "explorer (jupyterlab-deck 0.2.0 hides cells whose slide_type is '-' and skips a "
                    "subslide after a one-cell subslide: run lab/fit_slides.py on the notebook)"
                )
            steps += 1
            page.wait_for_timeout(300)  # the deck restyles the notebook after each step
        # A slide shows only its own cells: the title slide is hidden now.
        expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_hidden()

        figure = explorer.locator(".widget-output img").first
        figure_before = figure.get_attribute("src")
        before, after = _move_iou_threshold(page, lab_server, explorer, status)
        expect(figure).not_to_have_attribute("src", figure_before or "", timeout=30_000)
        status.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-deck-02_anchors_and_nms.png"), full_page=False)

    assert before[1] == after[1], f"the number of boxes changed: {before} -> {after}"
    assert before[0] != after[0], f"moving the IoU threshold did not change the kept count: {before}"


def _saved_widget_state(server) -> tuple[str, dict]:
    """The NMS explorer's widget model id in the saved notebook, and the saved widget state."""
    model = _api(server["base"], server["token"], f"/api/contents/{NOTEBOOK.name}")["content"]
    model_ids = [
        output["data"][WIDGET_VIEW]["model_id"]
        for cell in model["cells"]
        if cell["cell_type"] == "code" and "NMSExplorer(" in "".join(cell["source"])
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    ]
    assert len(model_ids) == 1, f"expected one saved NMS explorer output, got {model_ids}"
    state = model["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return model_ids[0], state


def _assert_explorer_is_a_widget(page, what: str) -> None:
    from playwright.sync_api import expect

    status, explorer = _nms_explorer(page)
    status.scroll_into_view_if_needed(timeout=60_000)
    expect(status).to_contain_text(KEPT_PATTERN, timeout=60_000)
    expect(explorer.locator(".noUi-handle").first).to_be_attached()
    outputs = page.locator(".jp-Notebook .jp-OutputArea-output")
    assert outputs.filter(has_text="VBox(children=").count() == 0, (
        f"{what}: an explorer shows as VBox(...) text instead of a widget"
    )


@pytest.mark.browser
def test_explorer_survives_reload(lab_server):
    """With the course's settings, a saved notebook brings its explorers back after a reload."""
    with _chromium({"width": 1400, "height": 1000}) as page:
        _open_notebook(page, lab_server)
        _run_all(page, lab_server)
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 60
        while True:  # saveState writes every live model into the notebook's metadata
            model_id, state = _saved_widget_state(lab_server)
            if model_id in state or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert model_id in state, "the saved notebook holds no state for the NMS explorer"

        page.reload()
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        _wait_until_idle(page, lab_server, timeout_s=120)
        _assert_explorer_is_a_widget(page, "after a page reload")
        page.screenshot(path=str(ARTIFACTS / "browser-reload-02_anchors_and_nms.png"))

        # Reopening with the kernel gone (the lab restarted, the kernel shut down): the view is
        # rebuilt from the state saved in the notebook.
        for session in _api(lab_server["base"], lab_server["token"], "/api/sessions"):
            _api(lab_server["base"], lab_server["token"], f"/api/sessions/{session['id']}", "DELETE")
        page.reload()
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        _wait_until_idle(page, lab_server, timeout_s=120)
        _assert_explorer_is_a_widget(page, "after reopening with a new kernel")
        page.screenshot(path=str(ARTIFACTS / "browser-reopen-02_anchors_and_nms.png"))
