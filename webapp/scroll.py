"""After an assessment, bring the flags and the plan box into view, and reopen the folded parts the reader had open.

Scrolls the results heading to the top (of Streamlit's main area, or of the answer column, which scrolls on its
own on a wide screen), then further if the plan box would start below the middle: at 1280x800 and on a phone the
flags and the plan box are in view after Assess, and a stop flag is never scrolled out of sight to show the plan.

The script is installed once per page (`install`, in the whole page's run) and watches the page for a results
heading carrying a new `marker`: the answer asks for a scroll by marking its heading, not by sending a script
of its own with each Assess (about 9 ms of the browser's work after Assess, BENCHMARKS.md). Fixed text: nothing
typed or taken from the knowledge base goes into it. It runs in the page (window.parent is the window itself).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import streamlit as st

from webapp.results import STOP_CLASS

ATTRIBUTE = "data-scroll"

_SCRIPT = """<script>
(() => {
  if (window.__answerWatch) return;  // once per page: a later run of the whole page sends the same script
  window.__answerWatch = true;
  const doc = window.parent.document;
  let tries = 0;
  // a folded part the reader opened (a card's basis, "why not") opens again in the next answer
  const open = new Set();
  doc.addEventListener("toggle", (e) => {
    const key = e.target.dataset ? e.target.dataset.key : undefined;
    if (key) e.target.open ? open.add(key) : open.delete(key);
  }, true);
  function go() {
    doc.querySelectorAll("details[data-key]").forEach((d) => { if (open.has(d.dataset.key)) d.open = true; });
    const head = doc.getElementById("results"), plan = doc.getElementById("plan");
    if (!head || !plan) { if (tries++ < 30) setTimeout(go, 100); return; }
    head.scrollIntoView({block: "start"});
    let box = plan.parentElement;
    while (box && !(box.scrollHeight > box.clientHeight && /auto|scroll/.test(window.parent.getComputedStyle(box).overflowY))) {
      box = box.parentElement;
    }
    let low = plan.getBoundingClientRect().top - window.parent.innerHeight * 0.5;
    const top = head.getBoundingClientRect().top;  // a stop flag stays where the heading was, with a little space
    const stop = [...doc.querySelectorAll(".STOP")].find(e => e.getBoundingClientRect().top >= top);
    if (stop) low = Math.min(low, stop.getBoundingClientRect().top - top - 12);
    if (box && low > 0) box.scrollBy(0, low);
  }
  let done = null;
  function check() {
    const head = doc.getElementById("results");
    const marker = head ? head.getAttribute("ATTRIBUTE") : null;
    if (!marker || marker === done) return;
    done = marker;
    tries = 0;
    // after the next frame, when the browser has laid out the answer: scrolling while its parts were still
    // arriving forced a layout of its own (20 ms of each Assess in a profile); again once the page has settled
    requestAnimationFrame(() => setTimeout(go, 0));
    setTimeout(() => { tries = 0; go(); }, 600);
  }
  new MutationObserver(check).observe(doc.body, {childList: true, subtree: true});
  check();  // the answer may be in the page already (a link opens an assessed plan)
})();
</script>""".replace("STOP", STOP_CLASS).replace("ATTRIBUTE", ATTRIBUTE)


def install() -> None:
    """The watching script, in a run of the whole page (not in the print view, which does not scroll)."""
    st.html(_SCRIPT, unsafe_allow_javascript=True)


def marker(session: MutableMapping[str, Any]) -> str:
    """The attribute for the results heading when this run's answer should come into view: a new number each
    time (the session's count), so the page scrolls once per assessment and not on other runs; else ''."""
    if not session.pop("scroll_to_results", False):
        return ""
    session["scrolls"] = session.get("scrolls", 0) + 1
    return f' {ATTRIBUTE}="{session["scrolls"]}"'
