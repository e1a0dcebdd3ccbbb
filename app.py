"""Placeholder page until the web form lands (issue 3): shows that the knowledge base loads."""

import streamlit as st

from rules import KnowledgeBaseError, default_context

st.set_page_config(page_title="Myotomy decision support", layout="wide")
st.title("Myotomy decision support (prototype)")
st.caption("Supports a clinician's decision; it does not diagnose or order a procedure.")
try:
    kb, _engine = st.cache_resource(default_context)()
except KnowledgeBaseError as error:
    st.error(f"The knowledge base could not be loaded: {error}")
    st.stop()
st.write(f"Knowledge base {kb.version}: {len(kb.presentations)} presentations, {len(kb.rules)} rules.")
st.info("The assessment form is being built. Meanwhile use the command line: `myotomy-cds assess FILE`.")
