"""Jobs: background jobs (ingest, re-embed) with progress and logs, and past ingest runs."""

import streamlit as st

from services.errors import VitrineError
from services.job_table import Job
from ui.collection_overview import ingest_runs
from ui.state import services

RUN_COLUMNS = (
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
JOB_COLUMNS = (
    "id",
    "kind",
    "collection",
    "status",
    "progress",
    "created_at",
    "finished_at",
    "error",
)


def _progress(job: Job) -> str:
    return f"{job.done}/{job.total}" if job.total else str(job.done)


def background_jobs() -> None:
    table = services().jobs.table
    jobs = table.recent(limit=50)
    st.subheader("Background jobs")
    if not jobs:
        st.info(
            "No background jobs yet: `vitrine models promote`, `vitrine collections reembed` "
            "and `vitrine schedule` queue them; `vitrine worker` runs them."
        )
        return
    rows = [{**job.to_json(), "progress": _progress(job)} for job in jobs]
    st.dataframe(rows, hide_index=True, column_order=JOB_COLUMNS)
    chosen = st.selectbox("Job", [job.id for job in jobs], format_func=lambda job_id: job_id)
    job = table.get(chosen)
    if job.total:
        st.progress(min(1.0, job.done / job.total), text=f"{job.status}: {_progress(job)}")
    if not job.finished and st.button("Cancel this job", key=f"cancel-{job.id}"):
        table.request_cancel(job.id)
        st.success("Cancel requested: the worker stops the job at its next step.")
    log = table.logs(job.id)
    if log:
        st.code("\n".join(f"{at}  {text}" for at, text in log), language=None)


def past_runs() -> None:
    st.subheader("Ingest runs")
    runs = ingest_runs(services())
    if not runs:
        st.info("No runs yet: `vitrine ingest` records each run here.")
        return
    table = [{"collection": name, **run.model_dump(include=set(RUN_COLUMNS))} for name, run in runs]
    st.dataframe(table, hide_index=True, column_order=("collection", *RUN_COLUMNS))


def main() -> None:
    st.title("Jobs")
    try:
        background_jobs()
        past_runs()
    except VitrineError as error:
        st.error(str(error))


main()
