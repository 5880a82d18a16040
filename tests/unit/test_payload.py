"""A record's payload: exact keys and values, warnings, and its fingerprint."""

from typing import Any

import pytest

from ingest.payload import PayloadWarning, build_payload, record_fingerprint
from ingest.records import Record

STAMP = {
    "sha256": "ab" * 32,
    "model_version": "vit-b-32__ft1",
    "ingested_at": "2024-05-01T12:00:00Z",
}


def _build(record: Record, **overrides: Any) -> tuple[dict[str, Any], list[PayloadWarning]]:
    arguments: dict[str, Any] = {
        "collection": "dpd",
        "image": "images/dpd_0001.jpg",
        **STAMP,
        **overrides,
    }
    return build_payload(record, **arguments)


def test_full_record() -> None:
    record = Record(
        id="dpd_0001",
        image="images/dpd_0001.jpg",
        caption="A man spading in a landscape",
        title="Device of Joannes Maire",
        iconclass=(" 25F32(CROW)(+1)", "46A170:5(+12)", "86(FAC ET SPERA)", ""),
        aat=("aat:300033618", "http://vocab.getty.edu/aat/300041273", "300033618"),
        date="1651",
        year_start=1651,
        year_end=1666,
        place="Leiden",
        lat=52.16,
        lon=4.49,
        collection="printers-devices",
        url="https://example.org/dpd_0001",
        license="CC0",
        extra={"aat_labels": ["paintings", "prints"], "printers": "Joannes Maire"},
    )
    payload, warnings = _build(record)
    assert warnings == []
    assert payload == {
        "record_id": "dpd_0001",
        "collection": "printers-devices",  # the record's own column wins over the alias
        "title": "Device of Joannes Maire",
        "caption": "A man spading in a landscape",
        "image": "images/dpd_0001.jpg",
        "url": "https://example.org/dpd_0001",
        "license": "CC0",
        "iconclass": ["25F32(CROW)(+1)", "46A170:5(+12)", "86(FAC ET SPERA)"],
        "iconclass_path": sorted(
            [
                "2",
                "25",
                "25F",
                "25F3",
                "25F32",
                "25F32(CROW)",
                "25F32(CROW)(+1)",
                "4",
                "46",
                "46A",
                "46A1",
                "46A17",
                "46A170",
                "5",
                "5(+1)",
                "5(+12)",
                "46A170:5(+12)",
                "8",
                "86",
                "86(FAC ET SPERA)",
            ]
        ),
        "iconclass_top": ["2", "4", "5", "8"],
        "iconclass_labels": [
            "song-birds: crow (+ animals used symbolically)",
            "Labour : Abstract Ideas and Concepts (+ abstract concept represented by male figure)",
            "proverbs, sayings, etc. (FAC ET SPERA)",
        ],
        "aat": ["300033618", "300041273"],
        "aat_labels": ["paintings", "prints"],
        "year_start": 1651,
        "year_end": 1666,
        "date": "1651",
        "place": ["Leiden"],
        "geo": {"lat": 52.16, "lon": 4.49},
        "sha256": "ab" * 32,
        "model_version": "vit-b-32__ft1",
        "ingested_at": "2024-05-01T12:00:00Z",
        "extra": {"printers": "Joannes Maire"},
    }


def test_empty_record_keeps_a_stable_schema() -> None:
    payload, warnings = _build(Record(id="x"), image=None, sha256=None)
    assert warnings == []
    assert payload == {
        "record_id": "x",
        "collection": "dpd",
        "title": None,
        "caption": None,
        "image": None,
        "url": None,
        "license": None,
        "iconclass": [],
        "iconclass_path": [],
        "iconclass_top": [],
        "iconclass_labels": [],
        "aat": [],
        "aat_labels": [],
        "year_start": None,
        "year_end": None,
        "date": None,
        "place": [],
        "sha256": None,
        "model_version": "vit-b-32__ft1",
        "ingested_at": "2024-05-01T12:00:00Z",
        "extra": {},
    }


def test_years_from_the_date_when_no_columns() -> None:
    payload, warnings = _build(Record(id="k", date="-490 to -480"))
    assert (payload["year_start"], payload["year_end"], payload["date"]) == (
        -490,
        -480,
        "-490 to -480",
    )
    assert warnings == []


def test_warnings_name_the_value() -> None:
    record = Record(
        id="w",
        date="sometime in spring",
        aat=("aat:30003361", "300033618", " "),
        iconclass=("25F", "garbage"),
        lat=123.0,
        lon=4.5,
    )
    payload, warnings = _build(record)
    assert [(w.kind, str(w)) for w in warnings] == [
        ("iconclass", "invalid Iconclass notation 'garbage'"),
        ("date", "unparseable date 'sometime in spring'"),
        ("aat", "invalid AAT id 'aat:30003361'"),
        ("geo", "coordinates out of range lat=123.0 lon=4.5"),
    ]
    assert payload["aat"] == ["300033618"]
    assert payload["iconclass"] == ["25F", "garbage"]
    assert payload["iconclass_path"] == ["2", "25", "25F"]
    assert payload["iconclass_labels"] == ["animals"]
    assert (payload["year_start"], payload["year_end"]) == (None, None)
    assert "geo" not in payload


def test_explicit_years_silence_an_unparseable_date() -> None:
    payload, warnings = _build(Record(id="y", date="undated", year_start=1600))
    assert (payload["year_start"], payload["year_end"], warnings) == (1600, 1600, [])


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [
        (52.0, None, "incomplete coordinates lat=52.0 lon=None"),
        (None, 4.0, "incomplete coordinates lat=None lon=4.0"),
        (0.0, 181.0, "coordinates out of range lat=0.0 lon=181.0"),
        (float("nan"), 4.0, "coordinates out of range lat=nan lon=4.0"),
    ],
)
def test_unusable_coordinates(lat: float | None, lon: float | None, message: str) -> None:
    payload, warnings = _build(Record(id="g", lat=lat, lon=lon))
    assert "geo" not in payload
    assert warnings == [PayloadWarning("geo", message)]


def test_edge_coordinates_are_kept() -> None:
    payload, _ = _build(Record(id="g", lat=-90.0, lon=180.0))
    assert payload["geo"] == {"lat": -90.0, "lon": 180.0}


def test_places_split_or_taken_from_the_full_list() -> None:
    split, _ = _build(Record(id="p", place="Amsterdam; Alkmaar;;Leiden"))
    assert split["place"] == ["Amsterdam", "Alkmaar", "Leiden"]
    full, _ = _build(
        Record(id="p", place="Amsterdam", extra={"place_all": ["Amsterdam", "Alkmaar"], "n": 3})
    )
    assert full["place"] == ["Amsterdam", "Alkmaar"]
    assert full["extra"] == {"n": 3}


def test_motto_split_on_its_semicolon_is_put_back() -> None:
    record = Record(id="m", iconclass=("49L8", "86(EIA AGE, QUID METUIS PATIENDA", " O, SCANDE)"))
    payload, warnings = _build(record)
    assert payload["iconclass"] == ["49L8", "86(EIA AGE, QUID METUIS PATIENDA; O, SCANDE)"]
    assert "86(EIA AGE, QUID METUIS PATIENDA; O, SCANDE)" in payload["iconclass_path"]
    assert warnings == []


def test_aat_labels_from_text() -> None:
    payload, _ = _build(Record(id="a", extra={"aat_labels": "paintings; prints"}))
    assert payload["aat_labels"] == ["paintings", "prints"]
    assert payload["extra"] == {}


def test_labels_follow_the_language() -> None:
    payload, _ = _build(Record(id="l", iconclass=("25F32",)), lang="de")
    assert payload["iconclass_labels"] == ["Singvögel"]


def test_fingerprint_ignores_image_model_and_time() -> None:
    record = Record(id="f", title="A", iconclass=("25F",))
    first, _ = _build(record)
    second, _ = _build(record, sha256="cd" * 32, model_version="other", ingested_at="later")
    assert record_fingerprint(first) == record_fingerprint(second)
    assert len(record_fingerprint(first)) == 64
    stored = {**first, "fingerprint": record_fingerprint(first)}
    assert record_fingerprint(stored) == record_fingerprint(first)


def test_fingerprint_changes_with_the_catalogue() -> None:
    first, _ = _build(Record(id="f", title="A"))
    retitled, _ = _build(Record(id="f", title="B"))
    moved, _ = _build(Record(id="f", title="A"), image="elsewhere.jpg")
    fingerprints = {record_fingerprint(p) for p in (first, retitled, moved)}
    assert len(fingerprints) == 3


def test_fingerprint_is_independent_of_key_order() -> None:
    payload, _ = _build(Record(id="o", title="A", extra={"b": 1, "a": 2}))
    reordered = dict(reversed(list(payload.items())))
    assert record_fingerprint(reordered) == record_fingerprint(payload)
