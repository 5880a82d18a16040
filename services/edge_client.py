"""The embedded store on Qdrant Edge: the Qdrant engine in-process, one shard per collection.

`EdgeClient` answers the part of the `QdrantClient` API that `services.store`
uses, so the Store is the same code over a server, the old local mode and
this. Unlike the local mode, Edge keeps payload indexes, builds HNSW indexes
and stores vectors and payloads on disk; several processes share it through a
lease per shard (`services.shard_lease`). Aliases live in `aliases.json`,
replaced atomically under a store-wide file lock.

Layout of the folder::

    aliases.json            alias -> physical collection
    collections/NAME/       one Edge shard per physical collection
    leases/NAME/            the lease lock and waiting markers of that shard
"""

import fcntl
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as edge
from qdrant_client import models
from qdrant_client.http.models import QueryResponse

from services import edge_convert as convert
from services.atomic import write_text_atomic
from services.errors import CollectionNotFoundError, VitrineError
from services.shard_lease import ShardLease

ALIASES_FILE = "aliases.json"
HANDOVER_SECONDS = 0.1
FULL_SCAN_KB = 100_000
"""Searches that can match fewer points than this many KB of vectors (about
50,000 points of 512 floats) score every candidate exactly: a filter's matches,
found through the payload indexes, or a whole segment that small. Larger ones
walk the HNSW graph."""
# One HNSW graph per searched vector, with Qdrant's default m but fewer
# construction candidates (100 by default) to build faster on a laptop. 48 is
# safe because graphs cover one segment (SEGMENT_POINTS) each: at 1M points,
# recall@10 0.99 in benchmarks/query.py with 48, where one graph of the whole
# million built with 48 reached 0.942 (2 CPU cores). No extra graphs per
# payload value (payload_m=0): with indexes on Iconclass and years those made
# building 50k points five times slower (55 s against 10 s). Filtered searches
# use an exact scan of few matches (FULL_SCAN_KB) and ACORN on the main graph
# for many.
GRAPH_M = 16
EF_CONSTRUCT = 48
HNSW_EF = 2048
"""Search beam: recall@10 0.99 at 1M points, 1.0 at 100k; store-only search p50
26 / 7 ms (benchmarks/query.py, 2 CPU cores)."""
SEGMENT_POINTS = 500_000
"""Points written before the shard indexes them as one segment and starts the next.
Qdrant searches and opens a shard's segments in parallel, a thread each, so a
million points kept as two segments use both cores of a laptop. Measured on 1M
points, 2 CPU cores, ef_construct 64, two segments against one: graphs built in
369 s against 444, a filtered query (Iconclass + years) p50 9 ms against 15 after
a first round, recall@10 0.994 at the same beam (one graph: 0.962), opened in
3.5-4.4 s against 4.8-6.2 s."""
ACORN = edge.AcornSearchParams(enable=True)
"""Filtered graph walks look two hops ahead, as no per-value graphs exist."""
RESCORE = edge.QuantizationSearchParams(rescore=True, oversampling=2.0)
SCHEMA_TYPES = {
    models.PayloadSchemaType.KEYWORD: edge.PayloadSchemaType.Keyword,
    models.PayloadSchemaType.INTEGER: edge.PayloadSchemaType.Integer,
    models.PayloadSchemaType.FLOAT: edge.PayloadSchemaType.Float,
    models.PayloadSchemaType.GEO: edge.PayloadSchemaType.Geo,
    models.PayloadSchemaType.BOOL: edge.PayloadSchemaType.Bool,
}


class EdgeClient:
    """A folder of Edge shards with aliases, shaped like the QdrantClient calls we use."""

    def __init__(
        self,
        path: Path,
        *,
        wait_seconds: float = 300.0,
        full_scan_kb: int = FULL_SCAN_KB,
        segment_points: int = SEGMENT_POINTS,
    ) -> None:
        self.path = path
        self._wait_seconds = wait_seconds
        self._full_scan_kb = full_scan_kb
        self._segment_points = segment_points
        self._unindexed: dict[str, int] = {}
        """Points this process wrote to each shard since it last indexed it."""
        self._leases: dict[str, ShardLease] = {}
        self._leases_guard = threading.Lock()
        (path / "collections").mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._handover = threading.Thread(target=self._hand_over_idle, daemon=True)
        self._handover.start()

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        self._handover.join(timeout=5)
        with self._leases_guard:
            leases = list(self._leases.values())
        for lease in leases:
            lease.release()

    def _hand_over_idle(self) -> None:
        while not self._stop.wait(HANDOVER_SECONDS):
            with self._leases_guard:
                leases = list(self._leases.values())
            for lease in leases:
                lease.release_if_wanted()

    # -- aliases -------------------------------------------------------------------

    @contextmanager
    def _store_lock(self) -> Iterator[None]:
        with (self.path / "store.lock").open("ab") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(stream, fcntl.LOCK_UN)

    def _read_aliases(self) -> dict[str, str]:
        file = self.path / ALIASES_FILE
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

    def get_aliases(self) -> models.CollectionsAliasesResponse:
        return models.CollectionsAliasesResponse(
            aliases=[
                models.AliasDescription(alias_name=alias, collection_name=physical)
                for alias, physical in sorted(self._read_aliases().items())
            ]
        )

    def update_collection_aliases(self, change_aliases_operations: Sequence[Any]) -> bool:
        """Apply delete/create operations together: readers see all or none of them."""
        with self._store_lock():
            aliases = self._read_aliases()
            for operation in change_aliases_operations:
                if isinstance(operation, models.DeleteAliasOperation):
                    aliases.pop(operation.delete_alias.alias_name, None)
                elif isinstance(operation, models.CreateAliasOperation):
                    target = operation.create_alias.collection_name
                    if not self.collection_exists(target):
                        raise CollectionNotFoundError(f"No physical collection {target!r}.")
                    aliases[operation.create_alias.alias_name] = target
                else:
                    raise convert.UnsupportedByEdge(f"Unknown alias operation {operation!r}.")
            write_text_atomic(self.path / ALIASES_FILE, json.dumps(aliases, indent=1) + "\n")
        return True

    # -- collections -----------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise VitrineError(f"{name!r} cannot name a collection.")
        return self.path / "collections" / name

    def _lease(self, name: str) -> ShardLease:
        with self._leases_guard:
            lease = self._leases.get(name)
            if lease is None:
                lease = self._leases[name] = self._new_lease(name)
            return lease

    def _new_lease(self, name: str) -> ShardLease:
        folder = self._folder(name)
        return ShardLease(
            self.path / "leases" / name,
            lambda: edge.EdgeShard.load(str(folder)),
            wait_seconds=self._wait_seconds,
        )

    def _physical(self, name: str) -> str:
        """The physical collection named directly or by an alias (as Qdrant allows)."""
        if not self.collection_exists(name):
            name = self._read_aliases().get(name, name)
        if not self.collection_exists(name):
            raise CollectionNotFoundError(f"No physical collection {name!r} in {self.path}.")
        return name

    @contextmanager
    def _shard(self, name: str) -> Iterator[Any]:
        """The open shard of a collection, named directly or by an alias."""
        with self._lease(self._physical(name)).use() as shard:
            yield shard

    def collection_exists(self, name: str) -> bool:
        return (self._folder(name) / "edge_config.json").is_file()

    def get_collections(self) -> models.CollectionsResponse:
        names = sorted(
            folder.name
            for folder in (self.path / "collections").iterdir()
            if (folder / "edge_config.json").is_file()
        )
        return models.CollectionsResponse(
            collections=[models.CollectionDescription(name=name) for name in names]
        )

    def create_collection(
        self,
        name: str,
        vectors_config: dict[str, models.VectorParams],
        quantization_config: models.ScalarQuantization | None = None,
        **_layout: Any,
    ) -> bool:
        """A new shard; shard, replica and storage settings have no meaning here.

        Vectors and payloads live on disk and are read through the page cache
        (`Memory.Cold`), so a million points load and serve within a laptop's
        RAM; the int8 copies that searches walk stay in RAM. A vector whose
        `hnsw_config` has m=0 gets neither a graph nor an int8 copy.
        """
        quantization = _quantization(quantization_config)
        graphed = {vector: _graphed(params) for vector, params in vectors_config.items()}
        config = edge.EdgeConfig(
            vectors={
                vector: edge.EdgeVectorParams(
                    size=params.size,
                    distance=edge.Distance.Cosine,
                    memory=edge.Memory.Cold,
                    hnsw_config=self._graph(graphed=graphed[vector]),
                    quantization_config=quantization if graphed[vector] else None,
                )
                for vector, params in vectors_config.items()
            },
            hnsw_config=self._graph(graphed=True),
            payload_memory=edge.Memory.Cold,
            optimizers=edge.EdgeOptimizersConfig(
                max_segment_size=self._segment_kb(vectors_config.values())
            ),
        )
        folder = self._folder(name)

        def create_or_load() -> Any:
            # Another process may have created it while this one waited for the lease.
            if (folder / "edge_config.json").is_file():
                return edge.EdgeShard.load(str(folder))
            return edge.EdgeShard.create(str(folder), config)

        with self._lease(name).use(opener=create_or_load):
            return True

    def _segment_kb(self, vectors: Iterable[models.VectorParams]) -> int:
        """`segment_points` as KB of the largest vector, for Qdrant's `max_segment_size`:
        with it, indexing does not merge two full segments back into one (without
        it, Edge merged them)."""
        largest = max((params.size for params in vectors), default=1)
        return max(1, self._segment_points * largest * 4 // 1024)

    def _graph(self, *, graphed: bool) -> edge.HnswIndexConfig:
        return edge.HnswIndexConfig(
            m=GRAPH_M if graphed else 0,
            ef_construct=EF_CONSTRUCT,
            full_scan_threshold=self._full_scan_kb,
            payload_m=0,
        )

    def create_payload_index(
        self, name: str, field_name: str, field_schema: models.PayloadSchemaType
    ) -> None:
        with self._shard(name) as shard:
            shard.update(
                edge.UpdateOperation.create_field_index(field_name, SCHEMA_TYPES[field_schema])
            )

    def delete_collection(self, name: str) -> bool:
        if not self.collection_exists(name):
            return False
        with self._leases_guard:
            lease = self._leases.pop(name, None) or self._new_lease(name)
        self._unindexed.pop(name, None)
        lease.remove(self._folder(name))
        return True

    def vector_size(self, name: str) -> int:
        config = json.loads((self._folder(name) / "edge_config.json").read_text(encoding="utf-8"))
        sizes = [int(params["size"]) for params in config.get("vectors", {}).values()]
        return sizes[0] if sizes else 0

    def optimize(self, name: str) -> None:
        """Merge segments and build the HNSW and payload indexes, blocking until done."""
        physical = self._physical(name)
        with self._lease(physical).use() as shard:
            shard.optimize()
            self._unindexed.pop(physical, None)

    # -- points -----------------------------------------------------------------------

    def count(
        self, name: str, count_filter: models.Filter | None = None, exact: bool = True
    ) -> models.CountResult:
        with self._shard(name) as shard:
            found = shard.count(
                edge.CountRequest(exact=exact, filter=convert.to_filter(count_filter))
            )
        return models.CountResult(count=found)

    def upsert(self, name: str, points: Sequence[models.PointStruct], wait: bool = True) -> None:
        """Write points; every `segment_points` of them are indexed as a segment of their own."""
        converted = [convert.to_point(point) for point in points]
        physical = self._physical(name)
        with self._lease(physical).use() as shard:
            shard.update(edge.UpdateOperation.upsert_points(converted))
            written = self._unindexed.get(physical, 0) + len(converted)
            if written >= self._segment_points:
                shard.optimize()
                written = 0
            self._unindexed[physical] = written

    def overwrite_payload(
        self, name: str, payload: dict[str, Any], points: Sequence[Any], wait: bool = True
    ) -> None:
        ids = [convert.point_id(point) for point in points]
        with self._shard(name) as shard:
            shard.update(edge.UpdateOperation.overwrite_payload(ids, payload))

    def delete(self, name: str, points_selector: models.PointIdsList, wait: bool = True) -> None:
        ids = [convert.point_id(point) for point in points_selector.points]
        with self._shard(name) as shard:
            shard.update(edge.UpdateOperation.delete_points(ids))

    def retrieve(
        self,
        name: str,
        ids: Sequence[Any],
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> list[models.Record]:
        with self._shard(name) as shard:
            records = shard.retrieve(
                [convert.point_id(value) for value in ids],
                convert.with_payload(with_payload),
                convert.with_payload(with_vectors),
            )
        return [convert.to_record(record) for record in records]

    def scroll(
        self,
        name: str,
        scroll_filter: models.Filter | None = None,
        limit: int = 10,
        offset: Any = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> tuple[list[models.Record], Any]:
        request = edge.ScrollRequest(
            offset=None if offset is None else convert.point_id(offset),
            limit=limit,
            filter=convert.to_filter(scroll_filter),
            with_payload=convert.with_payload(with_payload),
            with_vector=convert.with_payload(with_vectors),
        )
        with self._shard(name) as shard:
            records, next_offset = shard.scroll(request)
        following = None if next_offset is None else convert.point_id(next_offset)
        return [convert.to_record(record) for record in records], following

    # -- queries ---------------------------------------------------------------------------

    def query_points(
        self,
        name: str,
        query: Any,
        using: str,
        query_filter: models.Filter | None = None,
        search_params: models.SearchParams | None = None,
        limit: int = 10,
        offset: int = 0,
        score_threshold: float | None = None,
        with_payload: bool | Sequence[str] = True,
    ) -> QueryResponse:
        request = models.QueryRequest(
            query=query,
            using=using,
            filter=query_filter,
            params=search_params,
            limit=limit,
            offset=offset,
            score_threshold=score_threshold,
            with_payload=convert.with_payload(with_payload),
        )
        return self.query_batch_points(name, [request])[0]

    def query_batch_points(
        self, name: str, requests: Sequence[models.QueryRequest]
    ) -> list[QueryResponse]:
        batch = [self._request(name, request) for request in requests]
        with self._shard(name) as shard:
            answers = shard.query_batch(edge.QueryBatchRequest(batch))
        return [
            QueryResponse(points=[convert.to_scored(point) for point in points])
            for points in answers
        ]

    def facet(
        self, name: str, key: str, facet_filter: models.Filter | None = None, limit: int = 10
    ) -> models.FacetResponse:
        request = edge.FacetRequest(
            key=key, limit=limit, exact=True, filter=convert.to_filter(facet_filter)
        )
        with self._shard(name) as shard:
            answer = shard.facet(request)
        return models.FacetResponse(
            hits=[models.FacetValueHit(value=hit.value, count=hit.count) for hit in answer.hits]
        )

    def _request(self, name: str, request: models.QueryRequest) -> edge.QueryRequest:
        """One nearest-vector request; stored items given as examples are left out of
        the answer, as a Qdrant server does for a query by id."""
        using = request.using or ""
        query_filter = request.filter
        vector, examples = self._query_vector(name, request.query, using)
        if examples:
            leave_out = models.HasIdCondition(has_id=examples)
            base = query_filter or models.Filter()
            must_not = [*convert.as_list(base.must_not), leave_out]
            query_filter = base.model_copy(update={"must_not": must_not})
        return edge.QueryRequest(
            limit=request.limit or 10,
            offset=request.offset or 0,
            query=edge.Query.Nearest(vector, using=using),
            filter=convert.to_filter(query_filter),
            score_threshold=request.score_threshold,
            with_payload=convert.payload_selector(request.with_payload),
            params=_search_params(request.params, query_filter),
        )

    def _query_vector(self, name: str, query: Any, using: str) -> tuple[list[float], list[Any]]:
        """The vector to search with, and the ids of stored examples it was made from.

        A recommendation averages its examples as Qdrant's `average_vector`
        strategy does: mean(positives) * 2 - mean(negatives), or mean(positives).
        """
        positive: list[Any]
        negative: list[Any]
        if isinstance(query, list):
            positive, negative = [query], []
        elif isinstance(query, models.NearestQuery):
            positive, negative = [query.nearest], []
        elif isinstance(query, models.RecommendQuery):
            recommend = query.recommend
            if recommend.strategy not in (None, models.RecommendStrategy.AVERAGE_VECTOR):
                raise convert.UnsupportedByEdge(
                    f"The embedded store recommends with average_vector only, not "
                    f"{recommend.strategy}."
                )
            positive, negative = list(recommend.positive or []), list(recommend.negative or [])
        else:
            raise convert.UnsupportedByEdge(
                f"The embedded store cannot run {type(query).__name__}."
            )
        examples = [item for item in [*positive, *negative] if isinstance(item, (str, int))]
        stored = self._stored_vectors(name, examples, using)
        positives = np.array([_unit(stored.get(str(item), item)) for item in positive])
        if not negative:
            return positives.mean(axis=0).tolist(), examples
        negatives = np.array([_unit(stored.get(str(item), item)) for item in negative])
        return (positives.mean(axis=0) * 2 - negatives.mean(axis=0)).tolist(), examples

    def _stored_vectors(self, name: str, ids: list[Any], using: str) -> dict[str, Any]:
        if not ids:
            return {}
        records = self.retrieve(name, ids, with_payload=False, with_vectors=[using])
        found = {
            str(record.id): record.vector[using]
            for record in records
            if isinstance(record.vector, dict) and using in record.vector
        }
        missing = [str(item) for item in ids if str(item) not in found]
        if missing:
            raise CollectionNotFoundError(f"No point {missing[0]!r} with a {using!r} vector.")
        return found


def _unit(vector: Any) -> np.ndarray:
    """Cosine collections store unit vectors; query examples are made unit the same way."""
    values = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(values))
    return values / norm if norm > 0 else values


def _graphed(params: models.VectorParams) -> bool:
    """Whether a vector gets a graph: all but those asking for m=0."""
    return params.hnsw_config is None or params.hnsw_config.m != 0


def _search_params(
    given: models.SearchParams | None, query_filter: models.Filter | None
) -> edge.SearchParams:
    """The store's search settings, with the beam a request asks for, if any."""
    return edge.SearchParams(
        hnsw_ef=given.hnsw_ef if given is not None and given.hnsw_ef else HNSW_EF,
        quantization=RESCORE,
        acorn=ACORN if query_filter is not None else None,
    )


def _quantization(config: models.ScalarQuantization | None) -> edge.ScalarQuantizationConfig:
    """int8 scalar quantization for every searched vector, asked for or not.

    A quarter of the memory per vector in RAM, HNSW graphs built several times
    faster on a laptop; answers are rescored with the original vectors.
    """
    quantile = config.scalar.quantile if config is not None else 0.99
    return edge.ScalarQuantizationConfig(
        type=edge.ScalarType.Int8, quantile=quantile, always_ram=True
    )
