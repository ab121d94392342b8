"""The one browser test: a real JupyterLab in Chromium runs notebook 02 and moves the NMS slider.

It starts `jupyter lab` on 127.0.0.1 with a token over a temporary copy of the notebook, opens it
in Debian's Chromium driven by Playwright, runs all cells through the Run menu, waits for the
kernel to go idle, moves the "IoU threshold" slider with the keyboard, and checks that the printed
count of kept boxes changed. A screenshot is saved under test-artifacts/. The server is stopped by
its PID. CI sets COURSE_REQUIRE_BROWSER=1, which turns a missing Chromium into a failure.
"""

from __future__ import annotations

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

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_anchors_and_nms.ipynb"
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


def _api(base: str, token: str, path: str) -> object:
    request = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@pytest.fixture
def lab_server(tmp_path):
    """A JupyterLab server on 127.0.0.1 over a temporary copy of notebook 02."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(NOTEBOOK, workdir / NOTEBOOK.name)
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
        "--LabApp.news_url=None",
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
        kernels = _api(server["base"], server["token"], "/api/kernels")
        busy = any(kernel["execution_state"] != "idle" for kernel in kernels)
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


def test_nms_slider_in_jupyterlab(lab_server):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(
                f"{lab_server['base']}/lab/tree/{NOTEBOOK.name}?token={lab_server['token']}",
                timeout=120_000,
            )
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-KernelStatus", timeout=60_000)
            _wait_until_idle(page, lab_server, timeout_s=120)  # the kernel has started

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            _wait_until_idle(page, lab_server)

            # The NMS explorer is the widget box that shows "kept k of n boxes"; its slider
            # "IoU threshold" is the one to move (other explorers may use the same label).
            status = page.locator(".widget-html").filter(has_text=KEPT_PATTERN).first
            # JupyterLab skips rendering off-screen cells, so bring the explorer into view first.
            status.scroll_into_view_if_needed(timeout=60_000)
            expect(status).to_contain_text(KEPT_PATTERN, timeout=60_000)
            explorer = page.locator(".widget-vbox").filter(has=status).last
            slider = explorer.locator(".widget-slider").filter(
                has=page.locator(".widget-label", has_text=re.compile(r"^IoU threshold$"))
            ).first
            slider.scroll_into_view_if_needed()
            before = _kept_count(status)
            handle = slider.locator(".noUi-handle").first
            handle.focus()
            for key in ["ArrowLeft", "ArrowLeft", "ArrowLeft"]:
                handle.press(key)
            expect(status).not_to_contain_text(
                f"kept {before[0]} of {before[1]} boxes", timeout=30_000
            )
            _wait_until_idle(page, lab_server, timeout_s=60)  # every key press has been handled
            after = _kept_count(status)
            page.screenshot(path=str(ARTIFACTS / "browser-02_anchors_and_nms.png"), full_page=False)
        finally:
            browser.close()

    assert before[1] == after[1], f"the number of boxes changed: {before} -> {after}"
    assert before[0] != after[0], f"moving the IoU threshold did not change the kept count: {before}"
