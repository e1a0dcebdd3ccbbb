"""Take the README's screenshot of the app: `make screenshot` (needs Chromium, like the browser tests)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.browser import ROOT, choose, chromium, streamlit_server, wait_for_app


def main(target: str) -> None:
    with streamlit_server(ROOT / "app.py") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(url)
        wait_for_app(page)
        choose(page, "Presentations", "Oesophageal achalasia")
        wait_for_app(page)
        page.get_by_label("Age", exact=True).fill("58")
        page.get_by_label("Age", exact=True).press("Enter")
        choose(page, "Subtype", "type III (spastic)")
        choose(page, "Diagnosis confirmed", "yes")
        choose(page, "Malignancy excluded", "yes")
        choose(page, "Fitness for anaesthesia and surgery", "high risk (unfit for general anaesthesia or surgery)")
        page.get_by_role("button", name="Assess").click()
        page.get_by_text("Download plan (JSON)", exact=True).wait_for(timeout=60_000)  # the end of the page
        wait_for_app(page)
        page.evaluate("document.fonts.ready")
        heading = page.get_by_text("3. The plan and its basis", exact=True).first
        heading.evaluate("el => el.scrollIntoView({block: 'start'})")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=target, full_page=False)
        print(f"saved {target}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
