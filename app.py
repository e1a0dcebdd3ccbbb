"""Entry point: `streamlit run app.py` serves the page (page.py) and loads the knowledge base as the server starts.

The page itself is page.py. Served through st.App so that a lifespan hook can load the knowledge base,
the teaching cases and the page's modules while the browser fetches Streamlit's JavaScript, instead of
in the first page's run (webapp/warm.py), and so that the plan's picture and downloads are plain links
served by routes of the app (webapp/files.py).
"""

import streamlit as st

from webapp.files import ROUTES
from webapp.warm import lifespan

app = st.App("page.py", lifespan=lifespan, routes=ROUTES)  # the plan's picture and downloads (webapp/files.py)
