"""Near-duplicates in a collection: pairs, clusters and groups, found by Qdrant.

Every item's nearest neighbours come from Qdrant's batched queries
(`services.neighbours`); the pairs among them at or above the threshold are the
edges of a graph whose connected components are the clusters.

Example:
    >>> clusters = find_clusters(services.store, "dpd", threshold=0.95)
    >>> [(member.id, member.title) for member in clusters[0].members]
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.duplicate_metrics import connected_groups
from services.errors import QueryError
from services.neighbours import (
    BATCH,
    DEFAULT_NEIGHBOURS,
    SCORE_SLACK,
    Neighbourhood,
    Progress,
    chunks,
    image_vector,
    record_id_of,
    scan_neighbours,
)
from services.search import Hit
from services.store import Store, point_id

DEFAULT_THRESHOLD = 0.95
"""A common starting point for CLIP image vectors; calibrate with labelled pairs for yours."""
OVERSIZED_SHARE = 0.25
"""A cluster holding more than this share of a collection means the threshold is too low."""


@dataclass(frozen=True)
class DuplicatePair:
    """Two record ids (in sorted order) and the cosine similarity of their images."""

    a: str
    b: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "score": self.score}


@dataclass(frozen=True)
class ClusterMember:
    """One item of a cluster: its best score to another member, and its title."""

    id: str
    score: float
    title: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "title": self.title}


@dataclass(frozen=True)
class DuplicateCluster:
    """Items linked by pairs at or above the threshold, directly or through each other."""

    id: int
    members: tuple[ClusterMember, ...]
    pairs: tuple[DuplicatePair, ...]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def max_score(self) -> float:
        return max(pair.score for pair in self.pairs)

    @property
    def min_score(self) -> float:
        return min(pair.score for pair in self.pairs)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "size": self.size,
            "max_score": self.max_score,
            "min_score": self.min_score,
            "members": [member.to_json() for member in self.members],
            "pairs": [pair.to_json() for pair in self.pairs],
        }


def pairs_from_neighbours(
    neighbours: dict[str, Neighbourhood], threshold: float
) -> list[DuplicatePair]:
    """Each pair at or above `threshold` once (A's list naming B and B's naming A is one pair)."""
    best: dict[tuple[str, str], float] = {}
    for item, near in neighbours.items():
        for other, score in near:
            if score >= threshold and other != item:
                key = (item, other) if item <= other else (other, item)
                best[key] = max(score, best.get(key, score))
    return [DuplicatePair(a, b, score) for (a, b), score in sorted(best.items())]


def build_clusters(
    pairs: Sequence[DuplicatePair], titles: dict[str, str] | None = None
) -> list[DuplicateCluster]:
    """Connected components of the pairs, largest (then closest) first, numbered from 1."""
    titles = titles or {}
    best: dict[str, float] = {}
    for pair in pairs:
        for member in (pair.a, pair.b):
            best[member] = max(pair.score, best.get(member, pair.score))
    groups = connected_groups((pair.a, pair.b) for pair in pairs)
    group_of = {member: index for index, group in enumerate(groups) for member in group}
    pairs_of: list[list[DuplicatePair]] = [[] for _ in groups]
    for pair in pairs:
        pairs_of[group_of[pair.a]].append(pair)
    inside = [(sorted(group), tuple(pairs_of[index])) for index, group in enumerate(groups)]
    inside.sort(key=lambda entry: (-len(entry[0]), -max(p.score for p in entry[1]), entry[0][0]))
    return [
        DuplicateCluster(
            id=number,
            members=tuple(ClusterMember(rid, best[rid], titles.get(rid, "")) for rid in members),
            pairs=group_pairs,
        )
        for number, (members, group_pairs) in enumerate(inside, start=1)
    ]


def titles_of(store: Store, collection: str, record_ids: Iterable[str]) -> dict[str, str]:
    """record id -> its title, else its caption (empty when it has neither)."""
    physical = store.resolve(collection)
    titles: dict[str, str] = {}
    for chunk in chunks(record_ids, BATCH):
        for point in store.fetch(physical, [point_id(collection, rid) for rid in chunk]):
            payload = point.payload or {}
            titles[record_id_of(point)] = str(payload.get("title") or payload.get("caption") or "")
    return titles


def find_pairs(
    store: Store,
    collection: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    neighbours: int = DEFAULT_NEIGHBOURS,
    progress: Progress | None = None,
) -> list[DuplicatePair]:
    """Every pair of items with image similarity at or above `threshold`.

    An item pairs with at most its `neighbours` nearest items; a cluster larger
    than that is still found whole, through the members' own neighbours.

    Raises:
        CollectionNotFoundError: no such collection.
    """
    near = scan_neighbours(
        store, collection, neighbours=neighbours, min_score=threshold, progress=progress
    )
    return pairs_from_neighbours(near, threshold)


def find_clusters(
    store: Store,
    collection: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    neighbours: int = DEFAULT_NEIGHBOURS,
    progress: Progress | None = None,
) -> list[DuplicateCluster]:
    """Clusters of near-duplicates over the whole collection, largest first, with titles.

    Example:
        >>> for cluster in find_clusters(store, "dpd", threshold=0.93):
        ...     print(cluster.id, cluster.max_score, [m.id for m in cluster.members])
    """
    near = scan_neighbours(
        store, collection, neighbours=neighbours, min_score=threshold, progress=progress
    )
    return clusters_from_neighbours(store, collection, near, threshold)


def clusters_from_neighbours(
    store: Store, collection: str, neighbours: dict[str, Neighbourhood], threshold: float
) -> list[DuplicateCluster]:
    """The clusters at `threshold` among neighbours scanned once, with titles from the store.

    A scan at a lower minimum score (or none) serves every threshold above it,
    so a page can move its threshold without asking Qdrant for neighbours again.
    """
    pairs = pairs_from_neighbours(neighbours, threshold)
    members = {rid for pair in pairs for rid in (pair.a, pair.b)}
    return build_clusters(pairs, titles_of(store, collection, sorted(members)))


def oversized_cluster(clusters: Sequence[DuplicateCluster], items: int) -> DuplicateCluster | None:
    """The largest cluster when it holds more than `OVERSIZED_SHARE` of `items`, else None.

    Such a cluster chains unrelated images together: the threshold is too low
    for the model.
    """
    if clusters and clusters[0].size > OVERSIZED_SHARE * items:
        return clusters[0]
    return None


def duplicate_groups(
    store: Store,
    collection: str,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    neighbours: int = DEFAULT_NEIGHBOURS,
) -> dict[str, str]:
    """record id -> group id for every item that has a near-duplicate.

    The group id is the smallest record id in the group, so items without a
    near-duplicate can stand for their own group (`groups.get(rid, rid)`)
    without colliding. For keeping near-duplicates on one side of a train/test
    split.
    """
    pairs = find_pairs(store, collection, threshold=threshold, neighbours=neighbours)
    groups = connected_groups((pair.a, pair.b) for pair in pairs)
    return {member: min(group) for group in groups for member in group}


def near_duplicates(
    store: Store,
    collection: str,
    record_id: str,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = DEFAULT_NEIGHBOURS,
) -> list[Hit]:
    """The items whose images are near-duplicates of one item's, best first.

    Raises:
        QueryError: the collection has no item `record_id`.
    """
    physical = store.resolve(collection)
    records = store.fetch(physical, [point_id(collection, record_id)], with_vectors=True)
    if not records:
        raise QueryError(f"There is no item {record_id!r} in {collection!r}.")
    record = records[0]
    points = store.query(
        physical,
        image_vector(record).tolist(),
        query_filter=None,
        limit=limit + 1,
        min_score=threshold - SCORE_SLACK,
    )
    return [
        Hit(id=record_id_of(point), score=float(point.score), payload=dict(point.payload or {}))
        for point in points
        if point.id != record.id and point.score >= threshold
    ][:limit]
