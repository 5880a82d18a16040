"""The vitrine web app: `streamlit run ui/app.py` (or `vitrine ui`).

Routes the pages; each page builds nothing itself but takes the process-wide
services from `ui.state`.
"""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="vitrine", page_icon=":material/museum:", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "search.py", title="Search", icon=":material/search:", default=True),
        st.Page(
            PAGES / "collections.py", title="Collections", icon=":material/collections_bookmark:"
        ),
        st.Page(PAGES / "duplicates.py", title="Duplicates", icon=":material/content_copy:"),
        st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:"),
        st.Page(PAGES / "jobs.py", title="Jobs", icon=":material/history:"),
    ]
)
navigation.run()
