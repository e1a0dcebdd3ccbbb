"""Where the form and the answer sit: side by side on a wide screen, one above the other on a phone.

On a screen at least WIDE_PX wide the form takes the left column and the answer the right, so that
the plan box is in view beside the details that made it (1280x800 included); the answer column stays
in view (sticky) and scrolls on its own while the form scrolls with the page. Narrower, the two stack,
form first: Streamlit stacks columns only below 640 px, and two columns between 640 and 1100 px
leave each too narrow to read, so the CSS below stacks them from WIDE_PX down. The print view hides
Streamlit's own top bar and toolbar, which would otherwise print on every page. The CSS is fixed text;
nothing typed or taken from the knowledge base goes into it.
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

WIDE_PX = 1100
FORM_KEY = "patient_form_column"
ANSWER_KEY = "answer_column"

ROW_KEY = "form_and_answer"
# The row of the two columns, found from its keyed container without :has(), which makes Chromium
# re-check the selector on every change below it (every rerun changes hundreds of nodes).
_ROW = f'.st-key-{ROW_KEY} > [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"]'
_STACK_BELOW_WIDE = f"""<style>
@media (min-width: {WIDE_PX}px) {{
  [data-testid="stMainBlockContainer"] {{ padding-left: 2rem; padding-right: 2rem; }}
  {_ROW} > [data-testid="stColumn"]:last-child {{
    position: sticky; top: 3.75rem; align-self: flex-start;
    max-height: calc(100vh - 4.5rem); overflow-y: auto; padding-right: 0.5rem;
  }}
}}
@media (max-width: {WIDE_PX - 0.02}px) {{
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
