"""Reading manifests and image folders into Records and RowProblems."""

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from ingest.mapping import ColumnMapping, load_mapping_file, parse_map_flags
from ingest.records import Record, RowProblem
from ingest.sources import Row, open_source
from services.errors import SourceError

DATA = Path(__file__).parents[3] / "shared" / "data"
MAPPINGS = Path(__file__).parents[2] / "ingest" / "mappings"
NO_MAPPING = ColumnMapping()


def read(path: Path, mapping: ColumnMapping = NO_MAPPING) -> list[Row]:
    return list(open_source(path, mapping).records())


def records(rows: list[Row]) -> list[Record]:
    return [row for row in rows if isinstance(row, Record)]


def problems(rows: list[Row]) -> list[RowProblem]:
    return [row for row in rows if isinstance(row, RowProblem)]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("delimiter", [",", ";", "|", "\t"])
def test_every_delimiter(tmp_path: Path, delimiter: str) -> None:
    lines = [
        ["id", "image", "caption", "iconclass", "lat", "technique"],
        ["a1", "images/a1.jpg", "A lion, rampant", "25F23(LION);31A2748", "52.16", "woodcut"],
        ["a2", "images/a2.jpg", "An eagle", "25F33(EAGLE)", "", "engraving"],
    ]
    quoted = [
        [f'"{cell}"' if "," in cell or delimiter in cell else cell for cell in line]
        for line in lines
    ]
    manifest = write(tmp_path / "m.csv", "\n".join(delimiter.join(line) for line in quoted) + "\n")
    source = open_source(manifest, NO_MAPPING)
    assert source.kind == "csv"
    assert source.root == tmp_path
    first, second = source.records()
    assert first == Record(
        id="a1",
        image="images/a1.jpg",
        caption="A lion, rampant",
        iconclass=("25F23(LION)", "31A2748"),
        lat=52.16,
        extra={"technique": "woodcut"},
    )
    assert isinstance(second, Record)
    assert second.lat is None
    assert second.extra == {"technique": "engraving"}


def test_tsv_with_commas_and_semicolons_in_values(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.tsv", "id\tcaption\na;1\tone, two; three\n")
    assert records(read(manifest))[0].caption == "one, two; three"


def test_utf8_bom(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "id,caption\nx,Città\n", encoding="utf-8-sig")
    assert read(manifest) == [Record(id="x", caption="Città")]


def test_latin1_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    manifest = write(tmp_path / "m.csv", "id;caption\nx;Gravure à l'eau-forte\n", "cp1252")
    with caplog.at_level(logging.WARNING):
        rows = read(manifest)
    assert rows == [Record(id="x", caption="Gravure à l'eau-forte")]
    assert "not UTF-8" in caplog.text


def test_utf16_with_bom(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.txt", "id\tcaption\nx\tStraße\n", encoding="utf-16")
    assert read(manifest) == [Record(id="x", caption="Straße")]


def test_embedded_newlines_and_spreadsheet_row_numbers(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.csv",
        'id,caption\r\na,"two\r\nlines"\r\n,no id\r\nb,"x ""quoted"""\r\n',
    )
    rows = read(manifest)
    assert rows == [
        Record(id="a", caption="two\r\nlines"),
        RowProblem(3, "missing id"),
        Record(id="b", caption='x "quoted"'),
    ]


def test_duplicates_keep_the_first(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "id,caption\na,one\nb,two\n\na,three\n")
    rows = read(manifest)
    assert [row.id for row in records(rows)] == ["a", "b"]
    assert problems(rows) == [RowProblem(5, "duplicate id 'a' (first seen on row 2)", "a")]


def test_row_with_too_many_values(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "id,caption\na,one,two\nb,ok,\n")
    rows = read(manifest)
    assert problems(rows)[0].row == 2
    assert "3 values but 2 columns" in problems(rows)[0].reason
    assert [row.id for row in records(rows)] == ["b"]


def test_mapping_renames_and_drops(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.csv",
        "dpd_id,caption_en,places,year_min,has_record\nd1,A mark,Leiden|Delft,1651,True\n",
    )
    mapping = parse_map_flags(
        ["id=dpd_id", "caption=caption_en", "place=places:|", "year_start=year_min"]
    )
    mapping = mapping.model_copy(update={"drop": ["has_record"]})
    assert read(manifest, mapping) == [
        Record(
            id="d1",
            caption="A mark",
            place="Leiden",
            year_start=1651,
            extra={"place_all": ["Leiden", "Delft"]},
        )
    ]


def test_missing_id_column_suggests_a_mapping(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "image,caption\na.jpg,x\n")
    with pytest.raises(SourceError, match=r"columns are: image, caption.*--map id=COLUMN"):
        open_source(manifest, NO_MAPPING)


def test_mapped_column_missing_from_header(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "id,caption\na,x\n")
    with pytest.raises(SourceError, match="no column 'caption_en' \\(for caption\\)"):
        open_source(manifest, parse_map_flags(["caption=caption_en"]))


def test_blank_and_repeated_header_names(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "id,note,,note\na,x,y,z\n")
    record = records(read(manifest))[0]
    assert record.extra == {"note": "x", "column_3": "y", "note_2": "z"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.csv", b"", "is empty"),
        ("m.jsonl", b"\n\n", "is empty"),
        ("m.xlsx", b"PK\x03\x04", "expected a folder of images or a manifest"),
        ("m.csv", b"PK\x03\x04rest", "spreadsheet workbook"),
        ("m.jpg", b"\xff\xd8", "single image"),
    ],
)
def test_unreadable_sources(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError, match=message):
        open_source(tmp_path / name, NO_MAPPING)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_source(tmp_path / "nope.csv", NO_MAPPING)


def test_jsonl_good_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "iconclass": ["25F23(LION)", ""], "lat": 52.1, "year_start": 1600}),
        "{not json",
        "",
        json.dumps(["a list"]),
        json.dumps({"caption": "no id"}),
        json.dumps({"id": "a", "caption": "again"}),
        json.dumps({"id": "b", "aat": "300033618; aat:300041273", "tags": {"k": 1}}),
    ]
    manifest = write(tmp_path / "m.jsonl", "\n".join(lines) + "\n")
    source = open_source(manifest, NO_MAPPING)
    assert source.kind == "jsonl"
    rows = list(source.records())
    assert records(rows) == [
        Record(id="a", iconclass=("25F23(LION)",), lat=52.1, year_start=1600),
        Record(id="b", aat=("300033618", "aat:300041273"), extra={"tags": {"k": 1}}),
    ]
    found = problems(rows)
    assert [problem.row for problem in found] == [2, 4, 5, 6]
    assert found[0].reason.startswith("not valid JSON")
    assert found[1].reason == "expected a JSON object, got list"
    assert found[2].reason == "missing id"
    assert found[3].reason == "duplicate id 'a' (first seen on row 1)"


def test_jsonl_without_id_key(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.ndjson", '{"ref": "a"}\n{"ref": "b"}\n')
    with pytest.raises(SourceError, match="columns are: ref.*--map id=COLUMN"):
        open_source(manifest, NO_MAPPING)
    assert [row.id for row in records(read(manifest, parse_map_flags(["id=ref"])))] == ["a", "b"]


def save_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)


def test_image_folder_with_sidecars(tmp_path: Path) -> None:
    save_image(tmp_path / "b.png")
    save_image(tmp_path / "a.jpg")
    save_image(tmp_path / "sub" / "c.d.TIF")
    save_image(tmp_path / ".hidden" / "x.jpg")
    save_image(tmp_path / "._a.jpg")
    (tmp_path / "a.txt").write_text("  A lion\n", encoding="utf-8")
    (tmp_path / "sub" / "c.d.txt").write_bytes("Città".encode("cp1252"))
    (tmp_path / "notes.md").write_text("not an image")
    source = open_source(tmp_path, NO_MAPPING)
    assert (source.kind, source.root) == ("folder", tmp_path)
    assert list(source.records()) == [
        Record(id="a", image="a.jpg", caption="A lion", title="a"),
        Record(id="b", image="b.png", title="b"),
        Record(id="sub/c.d", image="sub/c.d.TIF", caption="Città", title="c.d"),
    ]


def test_image_folder_duplicate_stems(tmp_path: Path) -> None:
    save_image(tmp_path / "a.jpg")
    save_image(tmp_path / "a.png")
    rows = read(tmp_path)
    assert problems(rows) == [RowProblem(2, "duplicate id 'a' (first seen on row 1)", "a")]


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text("id\na\n")
    with pytest.raises(SourceError, match="holds no images.*give the file \\(metadata.csv\\)"):
        open_source(tmp_path, NO_MAPPING)


CATALOGUES = [
    ("dpd-printers-devices", 1200),
    ("getty-cva10-kraters", 164),
]


@pytest.mark.parametrize(("name", "count"), CATALOGUES)
def test_real_catalogue_every_row_is_a_record(name: str, count: int) -> None:
    manifest = DATA / name / "metadata.csv"
    if not manifest.exists():
        pytest.skip(f"{manifest} is not here")
    rows = read(manifest, load_mapping_file(MAPPINGS / f"{name}.toml"))
    assert problems(rows) == []
    assert len(records(rows)) == count
    assert all(
        record.image and (manifest.parent / record.image).is_file() for record in records(rows)
    )


@pytest.fixture
def dpd() -> dict[str, Record]:
    manifest = DATA / "dpd-printers-devices" / "metadata.csv"
    if not manifest.exists():
        pytest.skip(f"{manifest} is not here")
    mapping = load_mapping_file(MAPPINGS / "dpd-printers-devices.toml")
    return {record.id: record for record in records(read(manifest, mapping))}


def test_dpd_fields(dpd: dict[str, Record]) -> None:
    first = dpd["dpd_0001"]
    assert len(first.iconclass) == 25
    assert first.iconclass[-3:] == ("86(FAC ET SPERA)", "92B11221", "92D1916")
    assert (first.year_start, first.year_end) == (1651, 1666)
    assert (first.title, first.place) == ("FAC ET SPERA", "Leiden")
    assert first.caption and first.caption.startswith("A man spading")
    assert first.extra["printers"].startswith("Joannes Maire;")
    assert "has_record" not in first.extra
    assert dpd["dpd_0002"].extra["place_all"] == ["Amsterdam", "Alkmaar", "Leiden"]


def test_dpd_notation_with_a_semicolon_in_its_text(dpd: dict[str, Record]) -> None:
    assert len(dpd["dpd_1254"].iconclass) == 14
    assert (
        "86(EIA AGE, QUID METUIS PATIENDA; O, SCANDE CACUMEN ILLIC DE COELO VIVA CORONA DATUR)"
        in dpd["dpd_1254"].iconclass
    )


def test_getty_fields() -> None:
    manifest = DATA / "getty-cva10-kraters" / "metadata.csv"
    if not manifest.exists():
        pytest.skip(f"{manifest} is not here")
    mapping = load_mapping_file(MAPPINGS / "getty-cva10-kraters.toml")
    first = records(read(manifest, mapping))[0]
    assert first.id == "73AE135-detail-a"
    assert first.caption == "Detail showing just the female figure"
    assert first.title == "73.AE.135, side A, detail of body"
    assert first.date == "-490 to -480"
    assert first.extra["accession_number"] == "73.AE.135"
    assert "kind" not in first.extra
