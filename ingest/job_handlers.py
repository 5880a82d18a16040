"""The ingest and re-embed jobs: how to queue them, and how a worker runs them.

Example:
    >>> job = enqueue_reembed(services, "prints", "finetuned-v2")     # doctest: +SKIP
    >>> Jobs(data_dir, job_handlers(services)).work(until_idle=True)
"""

from pathlib import Path
from typing import Any

from ingest.reembed import reembed_collection
from ingest.runner import ingest_collection
from services.collection_state import check_name
from services.job_table import Job
from services.jobs import Handler, JobContext
from services.wiring import Services

INGEST = "ingest"
REEMBED = "reembed"


def enqueue_ingest(
    services: Services,
    collection: str,
    source: Path | None = None,
    *,
    prune: bool = True,
    trigger: str = "job",
) -> Job:
    """Queue a (re-)ingest of `collection` from `source` or its remembered source."""
    check_name(collection)
    params = {"source": str(source) if source else None, "prune": prune, "trigger": trigger}
    return services.jobs.submit(INGEST, collection, params)


def enqueue_reembed(services: Services, collection: str, model: str, *, keep: int = 1) -> Job:
    """Queue a re-embed of `collection` with `model` (a version or a model spec)."""
    check_name(collection)
    return services.jobs.submit(REEMBED, collection, {"model": model, "keep": keep})


def enqueue_reembed_all(services: Services, version: str, *, keep: int = 1) -> list[Job]:
    """Queue a re-embed with `version` for every collection vitrine knows (by its state)."""
    return [enqueue_reembed(services, name, version, keep=keep) for name in services.states.names()]


def job_handlers(services: Services) -> dict[str, Handler]:
    """The handlers a worker needs for ingest and re-embed jobs."""

    def ingest(job: Job, context: JobContext) -> dict[str, Any]:
        assert job.collection is not None
        source = job.params.get("source")
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            context.progress(done, None)

        state = services.states.load(job.collection)
        built_with = state.model_version if state else None
        summary = ingest_collection(
            services,
            job.collection,
            Path(source) if source else None,
            prune=bool(job.params.get("prune", True)),
            progress=advance,
            trigger=str(job.params.get("trigger", "job")),
            model=services.catalog.spec_for(built_with) if built_with else None,
        )
        context.log(
            f"ingested: {summary.embedded} embedded, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {summary.pruned} pruned, {summary.failed} failed"
        )
        return summary.to_json()

    def reembed(job: Job, context: JobContext) -> dict[str, Any]:
        assert job.collection is not None
        summary = reembed_collection(
            services,
            job.collection,
            str(job.params["model"]),
            keep=int(job.params.get("keep", 1)),
            job=job.id,
            progress=context.progress,
            log=context.log,
        )
        return summary.to_json()

    return {INGEST: ingest, REEMBED: reembed}
