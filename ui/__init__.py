"""The Streamlit app: pages that call `services` and nothing else.

Run it with `vitrine ui` (or `vitrine demo`); `ui/app.py` is the entry file.
"""
