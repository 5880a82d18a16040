"""Filtered searches on an indexed Qdrant Edge shard find the true best matches.

The Edge store builds one HNSW graph per searched vector and no extra graphs per
payload value; a filter matching few points is answered by an exact scan of its
matches, one matching many by a filtered walk of the graph. Both paths are run
here, with a full-scan threshold small enough that a few hundred points
reach the graph walk, and compared with exact numpy answers.
"""

from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as edge
from qdrant_client import models

from services.edge_client import EdgeClient

DIM = 512
POINTS = 30_000
TAGS = 50


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[EdgeClient, np.ndarray]:
    rng = np.random.default_rng(3)
    basis = rng.normal(size=(16, DIM))
    vectors = rng.normal(size=(POINTS, 16)) @ basis + rng.normal(size=(POINTS, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    # 1,000 KB of 512-d vectors is 500 points: larger filtered sets walk the graph.
    client = EdgeClient(Path(tmp_path_factory.mktemp("edge")), full_scan_kb=1_000)
    client.create_collection("c", {"image": models.VectorParams(size=DIM, distance="Cosine")})
    client.create_payload_index("c", "tag", models.PayloadSchemaType.KEYWORD)
    client.create_payload_index("c", "year", models.PayloadSchemaType.INTEGER)
    for start in range(0, POINTS, 5000):
        client.upsert(
            "c",
            [
                models.PointStruct(
                    id=index,
                    vector={"image": vectors[index].tolist()},
                    payload={"tag": f"t{index % TAGS}", "year": 1500 + index % 100},
                )
                for index in range(start, start + 5000)
            ],
        )
    client.optimize("c")
    yield client, vectors
    client.close()


def _condition(tag: str | None, years: tuple[int, int]) -> models.Filter:
    must: list[models.Condition] = [
        models.FieldCondition(key="year", range=models.Range(gte=years[0], lte=years[1]))
    ]
    if tag:
        must.append(models.FieldCondition(key="tag", match=models.MatchValue(value=tag)))
    return models.Filter(must=must)


def _matches(tag: str | None, years: tuple[int, int]) -> np.ndarray:
    index = np.arange(POINTS)
    year = 1500 + index % 100
    keep = (year >= years[0]) & (year <= years[1])
    if tag:
        keep &= index % TAGS == int(tag[1:])
    return keep


@pytest.mark.parametrize(
    ("tag", "years"),
    [
        ("t3", (1500, 1549)),  # 1 %, 300 points: exact scan of the matches
        ("t3", (1500, 1599)),  # 2 %: a walk of the graph, where few neighbours match
        (None, (1500, 1509)),  # 10 %: graph walk
        (None, (1500, 1529)),  # 30 %: graph walk
        (None, (1500, 1599)),  # everything
    ],
)
def test_filtered_search_finds_the_exact_best_matches(
    indexed: tuple[EdgeClient, np.ndarray], tag: str | None, years: tuple[int, int]
) -> None:
    client, vectors = indexed
    keep = _matches(tag, years)
    probes = np.random.default_rng(11).choice(POINTS, size=20, replace=False)
    recalls = []
    for probe in probes:
        scores = np.where(keep, vectors @ vectors[probe], -np.inf)
        exact = set(np.argsort(-scores)[:10].tolist())
        hits = client.query_points(
            "c", vectors[probe].tolist(), using="image", query_filter=_condition(tag, years)
        ).points
        assert all(keep[int(hit.id)] for hit in hits)
        recalls.append(len({int(hit.id) for hit in hits} & exact) / 10)
    assert np.mean(recalls) >= 0.95


def test_a_stored_vector_without_graph_is_still_searchable(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path)
    unindexed = models.VectorParams(
        size=4, distance="Cosine", hnsw_config=models.HnswConfigDiff(m=0)
    )
    client.create_collection("c", {"caption": unindexed})
    points = [[1, 0, 0, 0], [0, 1, 0, 0], [0.9, 0.1, 0, 0]]
    client.upsert(
        "c",
        [models.PointStruct(id=i, vector={"caption": vector}) for i, vector in enumerate(points)],
    )
    client.optimize("c")
    hits = client.query_points("c", [1, 0, 0, 0], using="caption", limit=2).points
    client.close()
    assert [hit.id for hit in hits] == [0, 2]


def test_a_large_write_is_indexed_as_segments_that_answer_as_one(tmp_path: Path) -> None:
    """Every `segment_points` written become an indexed segment of their own (searched
    in parallel by Qdrant); indexing does not merge them back, and a search over
    them finds the same best matches as an exact scan."""
    rng = np.random.default_rng(5)
    points, segment_points = 36_000, 12_000
    vectors = rng.normal(size=(points, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    client = EdgeClient(tmp_path, segment_points=segment_points)
    client.create_collection("c", {"image": models.VectorParams(size=DIM, distance="Cosine")})
    for start in range(0, points, 4_000):
        client.upsert(
            "c",
            [
                models.PointStruct(id=index, vector={"image": vectors[index].tolist()})
                for index in range(start, start + 4_000)
            ],
        )
    client.optimize("c")
    recalls = []
    for probe in rng.choice(points, size=20, replace=False):
        exact = set(np.argsort(-(vectors @ vectors[probe]))[:10].tolist())
        hits = client.query_points("c", vectors[probe].tolist(), using="image").points
        recalls.append(len({int(hit.id) for hit in hits} & exact) / 10)
    client.close()
    shard = edge.EdgeShard.load(str(tmp_path / "collections" / "c"))
    info = shard.info()
    shard.close()
    assert info.points_count == points
    assert info.indexed_vectors_count == points
    # Three indexed segments and the empty one that takes the next writes.
    assert info.segments_count == points // segment_points + 1
    assert np.mean(recalls) >= 0.95
