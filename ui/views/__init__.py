"""The pages of the app, one script each; `ui/app.py` routes them with `st.navigation`.

Not named `pages/`: Streamlit runs an entry file with a `pages/` folder beside it
in its legacy multipage mode until `st.navigation` has run once in the process,
so a deep link to a page on a fresh server would bypass the app's navigation.
"""
