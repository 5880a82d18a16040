"""Collections: size, model version, last ingest and its problems, error report download."""

import streamlit as st

from services.errors import VitrineError
from ui.collection_overview import CollectionRow, collection_rows
from ui.state import services

ERRORS = ("failed", "missing", "date_unparsed")


def summary_table(rows: list[CollectionRow]) -> list[dict[str, object]]:
    table: list[dict[str, object]] = []
    for row in rows:
        last = row.last_run
        table.append(
            {
                "collection": row.name,
                "items": row.info.points if row.info else None,
                "model version": row.info.model_version if row.info else None,
                "last ingest": last.started_at if last else None,
                "failed": last.failed if last else None,
                "missing": last.missing if last else None,
                "dates unread": last.date_unparsed if last else None,
            }
        )
    return table


def details(row: CollectionRow) -> None:
    with st.container(border=True):
        st.subheader(row.name, anchor=False)
        if row.info is None:
            st.warning("Not searchable: no finished ingest built this collection yet.")
        else:
            st.markdown(
                f"**{row.info.points}** items · model version `{row.info.model_version}` · "
                f"physical collection `{row.info.physical}` · "
                f"{row.info.vector_size}-dimensional vectors"
            )
        if row.state and row.state.source:
            st.caption(f"Source: {row.state.source}")
        last = row.last_run
        if last is None:
            st.caption("No ingest recorded.")
            return
        st.markdown(
            f"Last ingest {last.started_at} ({last.seconds:.1f} s): {last.seen} seen, "
            f"{last.embedded} embedded, {last.unchanged} unchanged, {last.updated} updated."
        )
        counts = st.columns(len(ERRORS))
        for column, name in zip(counts, ERRORS, strict=True):
            column.metric(name.replace("_", " "), getattr(last, name), border=True)
        report = row.report
        if report is not None:
            st.download_button(
                "Download the error report (JSONL)",
                data=report.read_bytes,
                file_name=f"{row.name}-{report.name}",
                mime="application/jsonl",
                key=f"report:{row.name}",
                on_click="ignore",
            )
        elif last.report:
            st.caption(f"The error report {last.report} is no longer there.")
        else:
            st.caption("The last ingest reported no problems.")


def main() -> None:
    shared = services()
    st.title("Collections")
    st.caption(f"Store: {shared.store.location}")
    try:
        rows = collection_rows(shared)
    except VitrineError as error:
        st.error(str(error))
        return
    if not rows:
        st.info("No collections yet: create one with `vitrine ingest` or `vitrine demo`.")
        return
    st.dataframe(summary_table(rows), hide_index=True)
    for row in rows:
        details(row)


main()
