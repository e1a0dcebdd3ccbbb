"""Helpers for tests in a real browser: a `streamlit run` server on a free localhost port, and Chromium.

Debian's Chromium is used (test tools cannot download browsers here); without it, browser tests are
skipped with a reason that says how to get it, except under CI, where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.servers import answers_ok, free_port, running, streamlit_command

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]


def require_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` (as root); .ci/run does"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is missing: `make test` installs it"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)


@contextlib.contextmanager
def streamlit_server(script: Path, timeout: float = 90.0) -> Iterator[str]:
    """Start `streamlit run` on 127.0.0.1, wait until /_stcore/health answers ok, stop it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp, \
            running(streamlit_command(script, port), answers_ok(f"{url}/_stcore/health"), Path(tmp) / "streamlit.log",
                    timeout=timeout):
        yield url


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for_app(page: object, timeout_ms: int = 60_000) -> None:
    """Wait until the script has finished running (Streamlit's own tests wait for the same).

    It returns at once when the rerun an action asked for has not started yet: for about 200 ms after
    a case is picked in the teaching list the page still shows the old form. After an action, wait for
    what it must show (`wait_until_selected`, `locator.wait_for`) or wrap it in `rerun_done`.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout_ms,
    )


def choose(page: object, label: str, option: str) -> None:
    """Pick an option in a Streamlit selectbox or multiselect found by its label."""
    widget = page.locator('[data-testid="stSelectbox"], [data-testid="stMultiSelect"]').filter(
        has=page.get_by_text(label, exact=True)
    ).first
    field = widget.locator("input").first
    field.click()
    field.fill(option)  # filters the list, which only renders the options in view
    page.get_by_role("option", name=option, exact=True).first.click()
    page.keyboard.press("Escape")
def press_assess(page: object) -> None:
    """Click the form's Assess button (by its exact name, so no other button that says "assess" matches)."""
    page.get_by_role("button", name="Assess", exact=True).click()


def _selectbox_input(page: object, label: str) -> object:
    widget = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).first
    return widget.locator("input").first


def selected(page: object, label: str) -> str:
    """The option a Streamlit selectbox shows, found by its label (it is the value of its input)."""
    return _selectbox_input(page, label).input_value()


def wait_until_selected(page: object, label: str, option: str, timeout_ms: int = 60_000) -> None:
    """Wait until a selectbox shows `option`: a rerun has delivered it (the page may still show the last answer)."""
    from playwright.sync_api import expect

    expect(_selectbox_input(page, label)).to_have_value(option, timeout=timeout_ms)
    wait_for_app(page)


_WATCH_RUNS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    window.__stRuns = {started: false, finished: 0};
    if (window.__stRunsObserver) window.__stRunsObserver.disconnect();
    // read each record's old value too: a fast run can go running -> notRunning within one batch of records
    window.__stRunsObserver = new MutationObserver((records) => {
        for (const record of records) {
            if (record.oldValue === 'running') window.__stRuns.started = true;
        }
        const state = app.getAttribute('data-test-script-state');
        if (state === 'running') window.__stRuns.started = true;
        else if (state === 'notRunning' && window.__stRuns.started) window.__stRuns.finished += 1;
    });
    window.__stRunsObserver.observe(app, {attributes: true, attributeOldValue: true,
                                          attributeFilter: ['data-test-script-state']});
}"""


@contextlib.contextmanager
def rerun_done(page: object, timeout_ms: int = 60_000, quiet_ms: int = 5_000) -> Iterator[None]:
    """Around an action that reruns the script: afterwards, wait until that rerun has run and finished
    (stApp's data-test-script-state went to running and back), so nothing is read from the page before.
    A run still going when the action starts would hide the start of the next, so wait for it first.

    A fast run can start and end within one render, leaving no trace in the attribute (seen about 1 in 5
    under load); then, after `quiet_ms` with the script not running, the run is taken as done. Callers
    still wait for what the action must show (`wait_until_selected`, `expect`)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    idle = """() => document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state') === 'notRunning'"""
    page.wait_for_function(idle, timeout=timeout_ms)
    page.evaluate(_WATCH_RUNS)
    yield
    try:
        page.wait_for_function("() => window.__stRuns.finished > 0", timeout=quiet_ms)
    except PlaywrightTimeout:
        page.wait_for_function(idle, timeout=timeout_ms)
    wait_for_app(page)
