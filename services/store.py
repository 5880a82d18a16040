"""The Qdrant store: physical collections per model version behind an alias.

One front over a Qdrant server, the embedded Qdrant Edge store
(`services.edge_client`) and qdrant-client's local mode. Users query the
alias (`prints`); points live in `prints__<model version>`. Transient faults
of a server are retried with back-off; what cannot be fixed by retrying
becomes a `StoreUnavailableError` that says what to check.
"""

import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from services.edge_client import EdgeClient
from services.errors import CollectionNotFoundError, StoreUnavailableError, VitrineError
from services.settings import Settings

IMAGE_VECTOR = "image"
CAPTION_VECTOR = "caption"
VERSION_SEPARATOR = "__"
POINT_NAMESPACE = uuid.UUID("7f1d6a52-3c4e-4f0e-9a51-7c1d2b9e0a11")

KEYWORD_FIELDS = (
    "record_id",
    "collection",
    "iconclass",
    "iconclass_path",
    "iconclass_top",
    "aat",
    "place",
    "sha256",
    "model_version",
)
INTEGER_FIELDS = ("year_start", "year_end")
GEO_FIELDS = ("geo",)

T = TypeVar("T")


def new_point(
    pid: str | int, vectors: dict[str, list[float]], payload: dict[str, Any]
) -> models.PointStruct:
    """A point made from our own vectors and payload, without pydantic's check of
    every value: that costs 100 µs a point with two 512-d vectors, a tenth of a
    million-point load. Points read from files go through `models.PointStruct`."""
    return models.PointStruct.model_construct(id=pid, vector=vectors, payload=payload)


def point_id(collection: str, record_id: str) -> str:
    """uuid5 of the collection (alias) name and the record id: stable across versions."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{collection}/{record_id}"))


def physical_name(alias: str, version: str) -> str:
    return f"{alias}{VERSION_SEPARATOR}{version}"


def version_of(physical: str) -> str:
    """The model version a physical collection was built with."""
    return physical.split(VERSION_SEPARATOR, 1)[-1]


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, (ResponseHandlingException, httpx.TransportError, ConnectionError)):
        return True
    if isinstance(error, UnexpectedResponse):
        return error.status_code is not None and error.status_code >= 500
    return type(error).__name__ in {"_InactiveRpcError", "AioRpcError"}


def _retry_policy(attempts: int) -> Any:
    """Retry transient faults up to `attempts` times, waiting 0.5 s, 1 s, 2 s ... (at most 8 s)."""
    return retry(
        retry=retry_if_exception(_is_transient),
        wait=wait_exponential(multiplier=0.5, max=8),
        stop=stop_after_attempt(attempts),
        reraise=True,
    )


@dataclass(frozen=True)
class CollectionLayout:
    """How new physical collections are laid out on a Qdrant server or cluster.

    The embedded mode accepts these parameters and ignores them: it has one
    shard, no replicas and keeps everything in its own files.
    """

    shards: int | None = None
    replication: int = 1
    write_consistency: int = 1
    on_disk: bool = False
    quantization: str = "none"

    @classmethod
    def from_settings(cls, settings: Settings) -> "CollectionLayout":
        return cls(
            shards=settings.qdrant_shards,
            replication=settings.qdrant_replication,
            write_consistency=settings.qdrant_write_consistency,
            on_disk=settings.qdrant_on_disk,
            quantization=settings.qdrant_quantization,
        )

    def quantization_config(self) -> models.ScalarQuantization | None:
        """int8 scalar quantization, the compact copy pinned in RAM for fast scoring."""
        if self.quantization != "int8":
            return None
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=0.99, memory=models.Memory.PINNED
            )
        )


@dataclass(frozen=True)
class CollectionInfo:
    """What `vitrine collections info` shows."""

    name: str
    physical: str
    points: int
    model_version: str
    vector_size: int


@dataclass(frozen=True)
class StoredPoint:
    """A point as ingest needs to see it to decide what to re-embed."""

    point_id: str
    payload: dict[str, Any]


class Store:
    """Collections, aliases, points and queries over one Qdrant client."""

    def __init__(
        self,
        client: QdrantClient,
        *,
        location: str,
        layout: CollectionLayout | None = None,
        retries: int = 5,
    ) -> None:
        self.client = client
        self.location = location
        self.layout = layout or CollectionLayout()
        self._retrying = _retry_policy(retries)

    @classmethod
    def open(cls, settings: Settings) -> "Store":
        """Open the server named in settings, or the embedded store in the data folder."""
        layout = CollectionLayout.from_settings(settings)
        if settings.qdrant_url:
            key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            client = QdrantClient(
                url=settings.qdrant_url,
                api_key=key,
                prefer_grpc=settings.qdrant_prefer_grpc,
                grpc_port=settings.qdrant_grpc_port,
                timeout=60,
            )
            store = cls(
                client,
                location=settings.qdrant_url,
                layout=layout,
                retries=settings.qdrant_retries,
            )
            store.call(client.get_collections)
            return store
        if settings.embedded_backend == "edge":
            path = settings.edge_store_path
            edge_client = EdgeClient(path)
            return cls(edge_client, location=str(path), layout=layout, retries=1)  # type: ignore[arg-type]
        path = settings.store_path
        path.mkdir(parents=True, exist_ok=True)
        try:
            client = QdrantClient(path=str(path))
        except (RuntimeError, BlockingIOError) as error:
            raise StoreUnavailableError(
                f"The embedded store in {path} is open in another vitrine process (the UI, a "
                "worker or another command). Close it and try again, or run a Qdrant server "
                "and set VITRINE_QDRANT_URL so several processes can share it."
            ) from error
        return cls(client, location=str(path), layout=layout, retries=settings.qdrant_retries)

    @property
    def is_embedded(self) -> bool:
        return not self.location.startswith(("http://", "https://"))

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one client call, retrying transient faults, explaining permanent ones."""
        try:
            return self._retrying(func)(*args, **kwargs)
        except VitrineError:
            raise
        except Exception as error:
            if _is_transient(error):
                raise StoreUnavailableError(
                    f"Qdrant at {self.location} is not answering ({error}). Check that the "
                    "server is running and reachable, and that VITRINE_QDRANT_URL and "
                    "VITRINE_QDRANT_API_KEY are right."
                ) from error
            if isinstance(error, UnexpectedResponse) and error.status_code in (401, 403):
                raise StoreUnavailableError(
                    f"Qdrant at {self.location} refused the API key: set VITRINE_QDRANT_API_KEY."
                ) from error
            raise

    def close(self) -> None:
        self.client.close()

    # -- collections and aliases ------------------------------------------------

    def aliases(self) -> dict[str, str]:
        """alias -> physical collection, for every alias."""
        answer = self.call(self.client.get_aliases)
        return {alias.alias_name: alias.collection_name for alias in answer.aliases}

    def resolve(self, alias: str) -> str:
        """The physical collection behind `alias`."""
        physical = self.aliases().get(alias)
        if physical is None:
            known = ", ".join(sorted(self.aliases())) or "none yet"
            raise CollectionNotFoundError(
                f"No collection named {alias!r} (known: {known}). Create it with "
                f"`vitrine ingest SOURCE --collection {alias}`."
            )
        return physical

    def exists(self, alias: str) -> bool:
        return alias in self.aliases()

    def create_physical(self, physical: str, dim: int) -> None:
        """Create a physical collection with our vectors and payload indexes.

        Shards, replicas, on-disk storage and quantization follow the store's
        layout (from settings); the embedded mode ignores what it has no use for.
        """
        if self.call(self.client.collection_exists, physical):
            return
        layout = self.layout
        cold = models.Memory.COLD if layout.on_disk else None
        vector = models.VectorParams(size=dim, distance=models.Distance.COSINE, memory=cold)
        self.call(
            self.client.create_collection,
            physical,
            vectors_config={IMAGE_VECTOR: vector, CAPTION_VECTOR: self._caption_params(vector)},
            shard_number=layout.shards,
            replication_factor=layout.replication,
            write_consistency_factor=layout.write_consistency,
            payload=models.PayloadStorageParams(memory=cold) if cold else None,
            quantization_config=layout.quantization_config(),
        )
        self._create_indexes(physical)

    def _caption_params(self, vector: models.VectorParams) -> models.VectorParams:
        """Caption vectors are stored for export and for Qdrant API users. Nothing in
        vitrine searches them and Qdrant's API cannot reach the embedded Edge store,
        so there they get no HNSW graph (a million-point load builds one, not two)."""
        if isinstance(self.client, EdgeClient):
            return vector.model_copy(update={"hnsw_config": models.HnswConfigDiff(m=0)})
        return vector

    def _create_indexes(self, physical: str) -> None:
        schema: list[tuple[str, models.PayloadSchemaType]] = [
            *((name, models.PayloadSchemaType.KEYWORD) for name in KEYWORD_FIELDS),
            *((name, models.PayloadSchemaType.INTEGER) for name in INTEGER_FIELDS),
            *((name, models.PayloadSchemaType.GEO) for name in GEO_FIELDS),
        ]
        with warnings.catch_warnings():
            # The embedded mode warns that indexes have no effect there; a server uses them.
            warnings.simplefilter("ignore", UserWarning)
            for field, kind in schema:
                self.call(self.client.create_payload_index, physical, field, kind)

    def point_alias(self, alias: str, physical: str) -> None:
        """Point `alias` at `physical` in one atomic call (create or switch)."""
        operations: list[Any] = []
        if alias in self.aliases():
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=physical, alias_name=alias)
            )
        )
        self.call(self.client.update_collection_aliases, change_aliases_operations=operations)

    def physical_collections(self, alias: str) -> list[str]:
        """Every physical collection built for `alias`, whatever its version."""
        names = self.call(self.client.get_collections).collections
        prefix = f"{alias}{VERSION_SEPARATOR}"
        return sorted(c.name for c in names if c.name.startswith(prefix))

    def delete_physical(self, physical: str) -> None:
        """Drop a physical collection (never the one an alias points at)."""
        if physical in self.aliases().values():
            raise VitrineError(f"{physical!r} is in use by an alias; it cannot be deleted.")
        self.call(self.client.delete_collection, physical)

    def ensure_collection(self, alias: str, version: str, dim: int) -> str:
        """The physical collection for (alias, version), created with the alias if new.

        Raises:
            VitrineError: the alias exists but was built with another model version.
        """
        current = self.aliases().get(alias)
        wanted = physical_name(alias, version)
        if current is None:
            self.create_physical(wanted, dim)
            self.point_alias(alias, wanted)
            return wanted
        if current != wanted:
            built_with = version_of(current)
            raise VitrineError(
                f"Collection {alias!r} was built with model version {built_with!r}, not "
                f"{version!r}. Ingest with the model it was built with (--model), or build a "
                "new version of the collection with the new model (re-embed)."
            )
        return current

    def info(self, alias: str) -> CollectionInfo:
        physical = self.resolve(alias)
        return CollectionInfo(
            name=alias,
            physical=physical,
            points=self.count(physical),
            model_version=version_of(physical),
            vector_size=self._vector_size(physical),
        )

    def _vector_size(self, physical: str) -> int:
        if isinstance(self.client, EdgeClient):
            return self.client.vector_size(physical)
        details = self.call(self.client.get_collection, physical)
        vectors = details.config.params.vectors
        params = vectors[IMAGE_VECTOR] if isinstance(vectors, dict) else vectors
        return int(params.size) if params is not None else 0

    def optimize(self, physical: str) -> None:
        """Build search indexes after a bulk write. The embedded Edge store builds them
        only when asked; a server and the local mode need nothing."""
        if isinstance(self.client, EdgeClient):
            self.call(self.client.optimize, physical)

    def count(self, collection: str, query_filter: models.Filter | None = None) -> int:
        return self.call(self.client.count, collection, count_filter=query_filter, exact=True).count

    # -- points ------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[models.PointStruct]) -> None:
        """Write points and wait until they are stored."""
        if points:
            self.call(self.client.upsert, collection, points=list(points), wait=True)

    def set_payload(self, collection: str, point: str, payload: dict[str, Any]) -> None:
        self.call(
            self.client.overwrite_payload, collection, payload=payload, points=[point], wait=True
        )

    def delete(self, collection: str, point_ids: Sequence[str]) -> None:
        if point_ids:
            self.call(
                self.client.delete,
                collection,
                points_selector=models.PointIdsList(points=list(point_ids)),
                wait=True,
            )

    def fetch(
        self, collection: str, point_ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[models.Record]:
        """Points by id (missing ids are left out)."""
        if not point_ids:
            return []
        return self.call(
            self.client.retrieve,
            collection,
            ids=list(point_ids),
            with_payload=True,
            with_vectors=with_vectors,
        )

    def scroll(
        self,
        collection: str,
        *,
        payload: bool | Sequence[str] = True,
        with_vectors: bool = False,
        page: int = 512,
        query_filter: models.Filter | None = None,
    ) -> Iterator[models.Record]:
        """Every point of a collection, page by page."""
        offset: Any = None
        while True:
            records, offset = self.call(
                self.client.scroll,
                collection,
                scroll_filter=query_filter,
                limit=page,
                offset=offset,
                with_payload=payload if isinstance(payload, bool) else list(payload),
                with_vectors=with_vectors,
            )
            yield from records
            if offset is None:
                return

    def stored_state(self, collection: str, fields: Iterable[str]) -> dict[str, dict[str, Any]]:
        """point id -> the named payload fields, for every point."""
        wanted = list(fields)
        return {
            str(record.id): dict(record.payload or {})
            for record in self.scroll(collection, payload=wanted)
        }

    # -- queries ---------------------------------------------------------------------

    def query(
        self,
        collection: str,
        query: Any,
        *,
        query_filter: models.Filter | None,
        limit: int,
        offset: int = 0,
        min_score: float | None = None,
        using: str = IMAGE_VECTOR,
    ) -> list[models.ScoredPoint]:
        answer = self.call(
            self.client.query_points,
            collection,
            query=query,
            using=using,
            query_filter=query_filter,
            limit=limit,
            offset=offset,
            score_threshold=min_score,
            with_payload=True,
        )
        return list(answer.points)

    def facet(
        self, collection: str, key: str, query_filter: models.Filter | None, limit: int = 20
    ) -> list[tuple[str, int]]:
        answer = self.call(
            self.client.facet, collection, key=key, facet_filter=query_filter, limit=limit
        )
        return [(str(hit.value), int(hit.count)) for hit in answer.hits]
