"""What the answer says beside the form and in the sidebar, carried in the answer and copied there in the browser.

After Assess the answer's part runs on its own (page.py). Written as Streamlit elements into the form (a
refused value, a "record this" prompt) and the sidebar (the teaching point), each place made Streamlit send
its wrappers with every answer and the browser draw the form's and the sidebar's blocks again: about 15 ms
of submit to cards in a same-run A/B (BENCHMARKS.md). Instead the answer carries each place's text hidden
(`copy`), and a script installed once per page (`install`) copies it into the place's `anchor`, drawn with
the form or the sidebar; an anchor whose text the answer no longer carries is emptied. The nodes copied are
the ones Streamlit already sanitised (cloned, not parsed again); the script is fixed text.
"""

from __future__ import annotations

import streamlit as st

from webapp.text import h

SIDEBAR_POINT = "teaching-point"  # the sidebar's place for the teaching point

_SCRIPT = """<script>
(() => {
  if (window.__copyWatch) return;  // once per page: a later run of the whole page sends the same script
  window.__copyWatch = true;
  const doc = window.parent.document;
  function sync() {
    const copies = new Map();  // the last copy of a place wins: a stale answer leaves the page when its run ends
    doc.querySelectorAll("[data-copy]").forEach((c) => copies.set(c.dataset.copy, c));
    doc.querySelectorAll("[data-anchor]").forEach((a) => {
      const c = copies.get(a.dataset.anchor);
      if (a.innerHTML !== (c ? c.innerHTML : "")) a.replaceChildren(...(c ? [...c.childNodes].map((n) => n.cloneNode(true)) : []));
    });
  }
  new MutationObserver(sync).observe(doc.body, {childList: true, subtree: true});
  sync();
})();
</script>"""


def install() -> None:
    """The copying script, in a run of the whole page (not in the print view, which has no form or sidebar)."""
    st.html(_SCRIPT, unsafe_allow_javascript=True)


def anchor(place: str, before: str = "") -> None:
    """The place's anchor, after `before` (HTML drawn in the same element, so that no empty element adds space)."""
    st.html(f'{before}<div class="mx-anchor" data-anchor="{h(place)}"></div>')


def copy(place: str, body: str) -> str:
    """The place's text, hidden in the answer ('' when there is nothing to say: the anchor is then emptied)."""
    return f'<div hidden data-copy="{h(place)}">{body}</div>' if body else ""
