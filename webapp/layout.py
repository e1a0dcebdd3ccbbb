"""Where the form and the answer sit: side by side when the page has room, one above the other when not.

When the width left for them (the page's width less the sidebar when it is open) is at least TWO_COLUMNS_PX,
the form takes the left column and the answer the right, so that the plan box is in view beside the
details that made it (1280x800 with the sidebar open included); the answer column stays in view (sticky)
and scrolls on its own while the form scrolls with the page. Narrower, the two stack, form first. The
width is the row's own (a CSS container query), not the screen's: with the sidebar open a 1100 px screen
leaves about 640 px, two columns of about 300 px each, too narrow to read; closing the sidebar gives the
room back and the columns return. Streamlit itself stacks columns only below a 640 px screen. The print
view hides Streamlit's own top bar and toolbar, which would otherwise print on every page. The CSS is
fixed text; nothing typed or taken from the knowledge base goes into it.
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

WIDE_PX = 1100  # a screen this wide gets narrower page margins
TWO_COLUMNS_PX = 880  # the row's own width from which the form and the answer sit side by side (1280 with the sidebar: 916)
FORM_KEY = "patient_form_column"
ANSWER_KEY = "answer_column"

ROW_KEY = "form_and_answer"
# The row of the two columns, found from its keyed container without :has(), which makes Chromium
# re-check the selector on every change below it (every rerun changes hundreds of nodes).
_ROW = f'.st-key-{ROW_KEY} > [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"]'
_STACK_BELOW_WIDE = f"""<style>
@media (min-width: {WIDE_PX}px) {{
  [data-testid="stMainBlockContainer"] {{ padding-left: 2rem; padding-right: 2rem; }}
}}
.st-key-{ROW_KEY} {{ container-type: inline-size; }}
@container (min-width: {TWO_COLUMNS_PX}px) {{
  {_ROW} > [data-testid="stColumn"]:last-child {{
    position: sticky; top: 3.75rem; align-self: flex-start;
    max-height: calc(100vh - 4.5rem); overflow-y: auto; padding-right: 0.5rem;
  }}
}}
@container (max-width: {TWO_COLUMNS_PX - 0.02}px) {{
  {_ROW} {{ flex-direction: column; }}
  {_ROW} > [data-testid="stColumn"] {{ width: 100% !important; flex: 1 1 auto !important; min-width: 100% !important; }}
}}
</style>"""

_PRINT = """<style>
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stStatusWidget"], [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding-top: 1rem !important; }
@media print { [data-testid="stAppViewContainer"] { overflow: visible !important; } }
</style>"""


def columns() -> tuple[DeltaGenerator, DeltaGenerator]:
    """The form's column and the answer's column (each a keyed container, which the CSS finds)."""
    st.html(_STACK_BELOW_WIDE)
    form_column, answer_column = st.container(key=ROW_KEY).columns([1, 1], gap="large")
    return form_column.container(key=FORM_KEY), answer_column.container(key=ANSWER_KEY)


def print_page() -> DeltaGenerator:
    """The print view's one column, without Streamlit's top bar, toolbar and sidebar."""
    st.html(_PRINT)
    return st.container(key=ANSWER_KEY)
