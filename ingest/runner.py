"""`ingest_collection`: the whole ingest as one call, for the CLI, jobs and scripts.

Remembers the source and column mapping with the collection, so a re-ingest
needs only the collection name, and records each run in its history.

Example:
    >>> services = Services(Settings())
    >>> summary = ingest_collection(services, "prints", Path("catalogue.csv"),
    ...                             map_flags=["caption=caption_en"])
"""

from collections.abc import Sequence
from pathlib import Path

from ingest.images import ImageLoader
from ingest.mapping import ColumnMapping, load_mapping_file, merge, parse_map_flags
from ingest.pipeline import Ingest, IngestSummary, Progress
from ingest.report import ErrorReport
from ingest.sources import open_source
from services.collection_state import CollectionState, IngestRun, check_name, utc_now
from services.errors import SourceError
from services.models import ModelSpec
from services.store import version_of
from services.thumbnails import THUMBNAIL_SIZE
from services.wiring import Services


def ingest_collection(
    services: Services,
    collection: str,
    source: Path | None = None,
    *,
    map_flags: Sequence[str] = (),
    mapping_file: Path | None = None,
    prune: bool = False,
    lang: str = "en",
    progress: Progress | None = None,
    trigger: str = "manual",
    model: ModelSpec | None = None,
) -> IngestSummary:
    """Ingest `source` (or the collection's remembered source) into `collection`.

    `model` overrides the model; without it, an existing collection is ingested
    with the model it is built with unless a model was named in the settings
    (a new model version reaches a collection through re-embedding). `trigger` is recorded with the run in the collection's history (`manual`,
    `schedule`, `job`).

    Raises:
        SourceError: no source given and none remembered, or it cannot be read.
        VitrineError: the store or model cannot be used.
    """
    check_name(collection)
    state = services.states.load(collection) or CollectionState(name=collection)
    source_path = source or (Path(state.source) if state.source else None)
    if source_path is None:
        raise SourceError(
            f"Collection {collection!r} has no remembered source: give one, as in "
            f"`vitrine ingest catalogue.csv --collection {collection}`."
        )
    mapping = ColumnMapping.model_validate(state.mapping) if state.mapping else ColumnMapping()
    if mapping_file is not None:
        mapping = merge(mapping, load_mapping_file(mapping_file))
    if map_flags:
        mapping = merge(mapping, parse_map_flags(list(map_flags)))
    opened = open_source(source_path, mapping)
    embedder = services.embedder(model or _built_with(services, collection))
    state.source = str(source_path.resolve())
    state.mapping = mapping.model_dump()
    services.states.save(state)
    started_at = utc_now()
    loader = ImageLoader.from_settings(
        services.settings, embedder.loaded.preprocess, embedder.image_size, THUMBNAIL_SIZE
    )
    with ErrorReport(services.states.report_path(collection, started_at)) as report, loader:
        summary = Ingest(
            collection=collection,
            store=services.store,
            embedder=embedder,
            loader=loader,
            report=report,
            lang=lang,
            progress=progress,
            thumbnails=services.settings.data_dir,
        ).run(opened, prune=prune)
    if summary.embedded or summary.updated or summary.pruned:
        services.store.optimize(services.store.resolve(collection))
    state.model_version = embedder.version
    state.history.append(
        IngestRun.model_validate(
            {
                "started_at": started_at,
                "model_version": embedder.version,
                "trigger": trigger,
                **summary.model_dump(exclude={"collection"}),
            }
        )
    )
    services.states.save(state)
    return summary


def _built_with(services: Services, collection: str) -> ModelSpec | None:
    """The model an existing collection was built with, unless settings name one."""
    if "model" in services.settings.model_fields_set or not services.store.exists(collection):
        return None
    return services.catalog.spec_for(version_of(services.store.resolve(collection)))
