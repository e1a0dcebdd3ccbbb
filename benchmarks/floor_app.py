"""The framework's floor for the app benchmark: a trivial one-field Streamlit form."""

import streamlit as st

with st.form("floor"):
    value = st.number_input("Age", value=None)
    submitted = st.form_submit_button("Assess")
if submitted:
    st.subheader("Result")
    st.write(f"Value: {value}")
