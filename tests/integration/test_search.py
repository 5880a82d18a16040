"""Search through the real store and model: every filter names its exact ids."""

import json
from pathlib import Path

import pytest
import qdrant_edge
from PIL import Image
from qdrant_client import QdrantClient, models

from ingest.runner import ingest_collection
from services.errors import CollectionNotFoundError, QueryError
from services.filters import Filters, GeoCircle
from services.search import SearchRequest
from services.settings import Settings
from services.wiring import Services
from tests.support.sample_data import sample_items

ALL = 100


def ids(services: Services, **request: object) -> set[str]:
    result = services.searcher.search(SearchRequest(collection="sample", limit=ALL, **request))  # type: ignore[arg-type]
    return {hit.id for hit in result.hits}


def expected(predicate) -> set[str]:  # type: ignore[no-untyped-def]
    return {item.id for item in sample_items() if predicate(item)}


def test_text_search_returns_ranked_hits_with_payload(searchable: Services) -> None:
    result = searchable.searcher.search(
        SearchRequest(collection="sample", text="a red circle", limit=5)
    )
    assert len(result.hits) == 5
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert {"record_id", "iconclass_path", "year_start", "sha256", "model_version"} <= set(
        result.hits[0].payload
    )


def test_iconclass_filter_is_hierarchical(searchable: Services) -> None:
    found = ids(searchable, text="animal", filters=Filters(iconclass=("25F",)))
    assert found == expected(lambda item: item.iconclass.startswith("25F"))
    assert found == ids(searchable, text="x", filters=Filters(iconclass=("25F2", "25F3")))


def test_aat_filter_accepts_either_spelling(searchable: Services) -> None:
    want = expected(lambda item: item.aat.endswith("300041273"))
    assert ids(searchable, text="vase", filters=Filters(aat=("300041273",))) == want
    assert ids(searchable, text="vase", filters=Filters(aat=("aat:300041273",))) == want


def test_year_filter_matches_overlapping_spans(searchable: Services) -> None:
    # 1550/1600, 156X, 16th century (1500-1599) and 1600-1610 overlap 1560:1600; 1620, 1650~, ca. 1700 and BCE do not.
    want = expected(lambda item: item.date in {"1550/1600", "156X", "16th century", "1600-1610"})
    assert ids(searchable, text="print", filters=Filters(years=(1560, 1600))) == want
    bce = expected(lambda item: item.date == "-490 to -480")
    assert ids(searchable, text="vase", filters=Filters(years=(-500, -485))) == bce


def test_place_geo_and_extra_filters(searchable: Services) -> None:
    assert ids(searchable, text="x", filters=Filters(place=("Leiden",))) == expected(
        lambda i: i.place == "Leiden"
    )
    near_amsterdam = Filters(near=GeoCircle(lat=52.37, lon=4.89, km=10))
    assert ids(searchable, text="x", filters=near_amsterdam) == expected(
        lambda i: i.place == "Amsterdam"
    )
    woodcuts = Filters(extra={"technique": "woodcut"})
    assert ids(searchable, text="x", filters=woodcuts) == expected(
        lambda i: i.technique == "woodcut"
    )


def test_filters_combine(searchable: Services) -> None:
    combined = Filters(
        iconclass=("25F",), place=("Leiden", "Antwerpen"), extra={"technique": "engraving"}
    )
    want = expected(
        lambda i: (
            i.iconclass.startswith("25F")
            and i.place in {"Leiden", "Antwerpen"}
            and i.technique == "engraving"
        )
    )
    assert want, "the sample must make this combination non-empty"
    assert ids(searchable, text="x", filters=combined) == want


def test_image_query_finds_the_same_image_first(
    searchable: Services, sample_manifest: Path
) -> None:
    item = sample_items()[7]
    image = Image.open(sample_manifest.parent / item.image)
    result = searchable.searcher.search(SearchRequest(collection="sample", image=image, limit=3))
    assert result.hits[0].id == item.id
    assert result.hits[0].score == pytest.approx(1.0, abs=1e-3)


def test_like_uses_the_stored_vector_and_skips_the_item(
    searchable: Services, sample_manifest: Path
) -> None:
    item = sample_items()[5]
    by_like = searchable.searcher.search(
        SearchRequest(collection="sample", like=(item.id,), limit=5)
    )
    assert item.id not in {hit.id for hit in by_like.hits}
    image = Image.open(sample_manifest.parent / item.image)
    by_image = searchable.searcher.search(SearchRequest(collection="sample", image=image, limit=6))
    assert [hit.id for hit in by_image.hits[1:]] == [hit.id for hit in by_like.hits]


def test_weight_moves_between_text_and_image(searchable: Services, sample_manifest: Path) -> None:
    image = Image.open(sample_manifest.parent / sample_items()[2].image)
    text = "a green triangle"

    def order(**request: object) -> list[str]:
        hits = searchable.searcher.search(
            SearchRequest(collection="sample", limit=ALL, **request)
        ).hits  # type: ignore[arg-type]
        return [hit.id for hit in hits]

    assert order(text=text, image=image, text_weight=1.0) == order(text=text)
    assert order(text=text, image=image, text_weight=0.0) == order(image=image)
    assert order(text=text, image=image, text_weight=0.5) not in (
        order(text=text),
        order(image=image),
    )


def test_negative_text_changes_the_ranking(searchable: Services) -> None:
    plain = searchable.searcher.search(
        SearchRequest(collection="sample", text="a blue square", limit=ALL)
    )
    unlike = searchable.searcher.search(
        SearchRequest(
            collection="sample", text="a blue square", negative=("a red circle",), limit=ALL
        )
    )
    assert {hit.id for hit in plain.hits} == {hit.id for hit in unlike.hits}
    assert [hit.id for hit in plain.hits] != [hit.id for hit in unlike.hits]


def test_limit_offset_and_min_score(searchable: Services) -> None:
    everything = searchable.searcher.search(
        SearchRequest(collection="sample", text="x", limit=ALL)
    ).hits
    page = searchable.searcher.search(
        SearchRequest(collection="sample", text="x", limit=5, offset=5)
    ).hits
    assert [hit.id for hit in page] == [hit.id for hit in everything[5:10]]
    cut = (everything[3].score + everything[4].score) / 2
    kept = searchable.searcher.search(
        SearchRequest(collection="sample", text="x", limit=ALL, min_score=cut)
    ).hits
    assert [hit.id for hit in kept] == [hit.id for hit in everything[:4]]


def test_facets_count_the_filtered_items(searchable: Services) -> None:
    result = searchable.searcher.search(
        SearchRequest(
            collection="sample", text="x", filters=Filters(place=("Leiden",)), facets=True
        )
    )
    assert dict(result.facets["place"]) == {"Leiden": len(expected(lambda i: i.place == "Leiden"))}
    tops = dict(result.facets["iconclass_top"])
    leiden = [i for i in sample_items() if i.place == "Leiden"]
    assert tops["2"] == sum(1 for i in leiden if i.iconclass.startswith("2"))


def test_bad_requests_explain_themselves(searchable: Services) -> None:
    with pytest.raises(QueryError, match="something to search for"):
        searchable.searcher.search(SearchRequest(collection="sample"))
    with pytest.raises(QueryError, match="no item"):
        searchable.searcher.search(SearchRequest(collection="sample", like=("nope",)))
    with pytest.raises(CollectionNotFoundError, match="vitrine ingest"):
        searchable.searcher.search(SearchRequest(collection="missing", text="x"))
    with pytest.raises(QueryError, match="ends before it starts"):
        searchable.searcher.search(
            SearchRequest(collection="sample", text="x", filters=Filters(years=(1700, 1600)))
        )


def plain_condition() -> models.Filter:
    return models.Filter(
        must=[
            models.FieldCondition(key="iconclass_path", match=models.MatchValue(value="25F")),
            models.FieldCondition(key="year_end", range=models.Range(gte=1500)),
        ]
    )


PLAIN_WANT = expected(lambda i: i.iconclass.startswith("25F") and i.date not in {"-490 to -480"})


def test_plain_qdrant_client_reads_the_documented_payload(
    searchable: Services, backend: str
) -> None:
    """Users may skip vitrine and query Qdrant directly on the documented fields."""
    if backend == "edge":
        pytest.skip("an Edge store is read with Qdrant Edge's own API: see the next test")
    client: QdrantClient = searchable.store.client
    vector = [1.0] + [0.0] * (searchable.store.info("sample").vector_size - 1)
    points = client.query_points(
        "sample", query=vector, using="image", query_filter=plain_condition(), limit=ALL
    ).points
    assert {p.payload["record_id"] for p in points} == PLAIN_WANT
    assert all(p.payload["year_start"] <= p.payload["year_end"] for p in points)


def test_qdrant_edge_api_reads_the_documented_payload(
    settings: Settings, sample_manifest: Path
) -> None:
    """An Edge store is one Qdrant Edge shard per collection, readable with `qdrant_edge`
    once vitrine has closed it; the alias file names the shard."""
    services = Services(settings)
    summary = ingest_collection(services, "sample", sample_manifest)
    physical = services.store.resolve("sample")
    services.close()
    assert summary.embedded == 24
    aliases = json.loads((settings.edge_store_path / "aliases.json").read_text())
    assert aliases == {"sample": physical}
    shard = qdrant_edge.EdgeShard.load(str(settings.edge_store_path / "collections" / physical))
    try:
        condition = qdrant_edge.Filter(
            must=[
                qdrant_edge.FieldCondition(
                    key="iconclass_path", match=qdrant_edge.MatchValue("25F")
                ),
                qdrant_edge.FieldCondition(key="year_end", range=qdrant_edge.RangeFloat(gte=1500)),
            ]
        )
        records, _ = shard.scroll(qdrant_edge.ScrollRequest(limit=ALL, filter=condition))
    finally:
        shard.close()
    assert {record.payload["record_id"] for record in records} == PLAIN_WANT
