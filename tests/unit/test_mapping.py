"""Column mappings: --map flags, mapping files, merging, applying one to a row."""

import json
from pathlib import Path

import pytest

from ingest.mapping import ColumnMapping, build_record, load_mapping_file, merge, parse_map_flags
from ingest.records import Record, RowProblem
from services.errors import ConfigError

MAPPINGS = Path(__file__).parents[2] / "ingest" / "mappings"


def test_flags_name_columns_and_separators() -> None:
    mapping = parse_map_flags(
        ["caption=caption_en", "iconclass=iconclass_notations:;", "place=places:|"]
    )
    assert mapping.columns == {
        "caption": "caption_en",
        "iconclass": "iconclass_notations",
        "place": "places",
    }
    assert mapping.separators == {"iconclass": ";", "place": "|"}
    assert mapping.separator("aat") == ";"
    assert mapping.column("id") == "id"


def test_flag_column_may_hold_a_colon() -> None:
    mapping = parse_map_flags(["title=dc:title", "iconclass=dc:subject", "aat=x:y:,"])
    assert mapping.columns == {"title": "dc:title", "iconclass": "dc:subject", "aat": "x:y"}
    assert mapping.separators == {"aat": ","}


def test_flag_tab_separator() -> None:
    assert parse_map_flags(["place=places:\\t"]).separator("place") == "\t"


def test_unknown_field_names_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match="unknown field 'captoin'.*id image caption title"):
        parse_map_flags(["captoin=caption_en"])


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("caption", "expected FIELD=COLUMN"),
        ("=caption_en", "expected FIELD=COLUMN"),
        ("caption=", "no column given"),
        ("iconclass=:;", "no column given"),
        ("iconclass=notations:", "empty separator"),
        ("caption=caption_en:;", "only list fields take a separator"),
    ],
)
def test_malformed_flags(flag: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_map_flags([flag])


def test_field_given_twice() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        parse_map_flags(["id=a", "id=b"])


def test_mapping_file_toml(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text(
        'drop = ["internal"]\n[columns]\nid = "dpd_id"\n[separators]\nplace = "|"\n',
        encoding="utf-8",
    )
    mapping = load_mapping_file(path)
    assert mapping == ColumnMapping(
        columns={"id": "dpd_id"}, separators={"place": "|"}, drop=["internal"]
    )


def test_mapping_file_json(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"columns": {"caption": "alt"}, "separators": {"aat": ","}}))
    mapping = load_mapping_file(path)
    assert mapping.column("caption") == "alt"
    assert mapping.separator("aat") == ","
    assert mapping.drop == []


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("map.toml", "[columns]\nid = ", "not valid TOML"),
        ("map.json", "{", "not valid JSON"),
        ("map.yaml", "columns: {}", "must end in .toml or .json"),
        ("map.toml", '[columns]\ncolour = "c"\n', "unknown field 'colour'"),
        ("map.toml", '[separators]\ncaption = ";"\n', "unknown list field 'caption'"),
        ("map.toml", '[colums]\nid = "x"\n', "colums"),
        ("map.json", "[1, 2]", "must hold an object"),
    ],
)
def test_bad_mapping_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_mapping_file(path)


def test_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read mapping file"):
        load_mapping_file(tmp_path / "absent.toml")


def test_merge_lets_flags_win_key_by_key() -> None:
    remembered = ColumnMapping(
        columns={"id": "dpd_id", "caption": "caption_nl"},
        separators={"place": "|"},
        drop=["a"],
    )
    flags = parse_map_flags(["caption=caption_en", "iconclass=notations:,"])
    merged = merge(remembered, flags)
    assert merged.columns == {"id": "dpd_id", "caption": "caption_en", "iconclass": "notations"}
    assert merged.separators == {"place": "|", "iconclass": ","}
    assert merged.drop == ["a"]


def test_mapping_round_trips_through_json() -> None:
    mapping = parse_map_flags(["id=dpd_id", "place=places:|"])
    assert ColumnMapping.model_validate(json.loads(mapping.model_dump_json())) == mapping


def test_mapping_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        ColumnMapping().drop = ["x"]  # type: ignore[misc]


@pytest.mark.parametrize("name", ["dpd-printers-devices", "getty-cva10-kraters"])
def test_shipped_mapping_files_load(name: str) -> None:
    assert load_mapping_file(MAPPINGS / f"{name}.toml").columns["id"]


def test_build_record_renames_splits_and_keeps_the_rest() -> None:
    mapping = parse_map_flags(["id=ref", "caption=caption_en", "year_start=year_min"])
    row = {
        "ref": " a1 ",
        "caption_en": "A lion",
        "iconclass": "25F23(LION); 86(FAC ET SPERA; ORA) ;;",
        "place": "Leiden;Amsterdam",
        "year_min": "1651",
        "lat": "52,16",
        "printer": "Elzevier",
        "empty": "  ",
    }
    record = build_record(row, 2, mapping)
    assert record == Record(
        id="a1",
        caption="A lion",
        iconclass=("25F23(LION)", "86(FAC ET SPERA; ORA)"),
        place="Leiden",
        year_start=1651,
        lat=52.16,
        extra={"printer": "Elzevier", "place_all": ["Leiden", "Amsterdam"]},
    )


def test_build_record_keeps_unparseable_numbers_raw() -> None:
    row = {"id": "x", "lat": "north", "lon": "200", "year_start": "c. 1600", "year_end": "1650.0"}
    record = build_record(row, 3, ColumnMapping())
    assert isinstance(record, Record)
    assert (record.lat, record.lon, record.year_start, record.year_end) == (None, None, None, 1650)
    assert record.extra == {"lat_raw": "north", "lon_raw": "200", "year_start_raw": "c. 1600"}


def test_build_record_accepts_json_values() -> None:
    row = {"id": 7, "aat": ["aat:300033618", " ", 300041273], "lat": 52.1, "tags": ["a"]}
    record = build_record(row, 1, ColumnMapping())
    assert record == Record(
        id="7", aat=("aat:300033618", "300041273"), lat=52.1, extra={"tags": ["a"]}
    )


def test_build_record_problems() -> None:
    assert build_record({"id": " "}, 4, ColumnMapping()) == RowProblem(4, "missing id")
    problem = build_record({"id": "x", "caption": ["a", "b"]}, 5, ColumnMapping())
    assert problem == RowProblem(5, "'caption' must be a single value for caption", "x")


def test_build_record_drops_columns() -> None:
    record = build_record({"id": "x", "secret": "s"}, 2, ColumnMapping(drop=["secret"]))
    assert isinstance(record, Record)
    assert record.extra == {}
