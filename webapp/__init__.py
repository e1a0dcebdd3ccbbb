"""The Streamlit app's parts: the form built from the input model, and the rendering of results."""
