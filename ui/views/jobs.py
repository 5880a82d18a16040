"""Jobs: past ingest runs of every collection, newest first."""

import streamlit as st

from services.errors import VitrineError
from ui.collection_overview import ingest_runs
from ui.state import services

COLUMNS = (
    "started_at",
    "seconds",
    "model_version",
    "seen",
    "embedded",
    "unchanged",
    "updated",
    "failed",
    "missing",
    "pruned",
    "date_unparsed",
    "report",
)


def main() -> None:
    shared = services()
    st.title("Jobs")
    st.caption("Ingest runs as each collection recorded them, newest first.")
    try:
        runs = ingest_runs(shared)
    except VitrineError as error:
        st.error(str(error))
        return
    if not runs:
        st.info("No runs yet: `vitrine ingest` records each run here.")
        return
    table = [{"collection": name, **run.model_dump(include=set(COLUMNS))} for name, run in runs]
    st.dataframe(table, hide_index=True, column_order=("collection", *COLUMNS))


main()
