"""Take the README's screenshots of the app: `make screenshot` (needs Chromium, like the browser tests).

docs/screenshot.png at 1280x800 and docs/screenshot-390.png at a phone's 390x844, each the view right
after Assess (the page brings the flags and the plan box into view), and docs/screenshot-print.png,
the top of the print view. The presenter view at a projector's 1280x800: docs/screenshot-presenter.png
(a case before the reveal, with the class exercise), docs/screenshot-presenter-revealed.png (the answer,
flags first) and docs/screenshot-exercise.png (the class's picks: right, not right, missed, and why).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.browser import ROOT, choose, chromium, press_assess, rerun_done, streamlit_server, wait_for_app

PRESENTED = "pyloric_stenosis_bilious_vomiting_still_alkalotic"
COUNTS = {"Stop: suggests malrotation or volvulus, a different emergency": 4, "Ramstedt extramucosal pyloromyotomy": 9}


def _fill_and_assess(page: object) -> None:
    from playwright.sync_api import expect

    choose(page, "Presentations", "Oesophageal achalasia")
    expect(page.get_by_role("button", name="Assess", exact=True)).to_be_enabled(timeout=30_000)
    wait_for_app(page)
    page.get_by_label("Age", exact=True).fill("58")
    choose(page, "Subtype", "type III (spastic)")
    choose(page, "Diagnosis confirmed", "yes")
    choose(page, "Malignancy excluded", "yes")
    choose(page, "Fitness for anaesthesia and surgery", "high risk (unfit for general anaesthesia or surgery)")
    press_assess(page)
    page.locator(".mx-end").wait_for(state="attached", timeout=60_000)
    wait_for_app(page)
    page.evaluate("document.fonts.ready")
    page.wait_for_timeout(1500)  # the scroll to the plan runs once the page has settled


def _scroll_to(page: object, text: str) -> None:
    page.get_by_text(text, exact=True).first.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)


def _presenter(browser: object, url: str, out: Path) -> None:
    """A class has counted its picks for one case; then the reveal, and how the picks fared."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{url}/?present=1&case={PRESENTED}")
    page.get_by_role("button", name="Reveal the answer").wait_for(timeout=60_000)
    wait_for_app(page)
    for label, count in COUNTS.items():
        with rerun_done(page):
            page.get_by_label(label, exact=True).fill(str(count))
            page.get_by_label(label, exact=True).press("Enter")
    page.evaluate("document.fonts.ready")
    page.get_by_text("Presenter view ·").first.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "screenshot-presenter.png"))
    with rerun_done(page):
        page.get_by_role("button", name="Reveal the answer").click()
    page.get_by_text("The class's picks", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    _scroll_to(page, "Infantile hypertrophic pyloric stenosis")
    page.screenshot(path=str(out / "screenshot-presenter-revealed.png"))
    _scroll_to(page, "The class's picks")
    page.screenshot(path=str(out / "screenshot-exercise.png"))
    for name in ("screenshot-presenter.png", "screenshot-presenter-revealed.png", "screenshot-exercise.png"):
        print(f"saved {out / name}")


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with streamlit_server(ROOT / "app.py") as url, chromium() as browser:
        for name, (width, height) in {"screenshot.png": (1280, 800), "screenshot-390.png": (390, 844)}.items():
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            wait_for_app(page)
            if width < 600:
                page.keyboard.press("Escape")  # the sidebar opens over the page on a phone
            _fill_and_assess(page)
            page.screenshot(path=str(out / name))
            print(f"saved {out / name}")
            if width > 600:
                link = page.get_by_role("link", name="Print view").get_attribute("href")
                page.goto(url + "/" + link)
                page.locator(".mx-end").wait_for(state="attached", timeout=60_000)
                wait_for_app(page)
                page.wait_for_timeout(1000)
                page.screenshot(path=str(out / "screenshot-print.png"))
                print(f"saved {out / 'screenshot-print.png'}")
        _presenter(browser, url, out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
