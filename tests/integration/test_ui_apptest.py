"""The Streamlit app driven through AppTest, over a collection ingested with the tiny model.

Each test names exactly which items must show, computed from the sample's
known metadata; settings reach the app the way they reach it in production,
through VITRINE_* environment variables.
"""

import io
import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from ingest.runner import ingest_collection
from services.embedder import Embedder
from services.job_table import JobTable
from services.settings import Settings
from services.store import Store
from services.wiring import Services
from tests.support.sample_data import SampleItem, sample_items, write_sample_collection

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
COLLECTION = "sample"
TIMEOUT = 120
MODEL_CARD = {
    "version": "tiny-ft-1",
    "parent": "tiny",
    "metrics": {"validation": {"recall@5": 0.61, "recall@1": 0.32}, "alpha": 0.4},
    "curves": {"train loss": [2.1, 1.7, 1.2], "validation recall@5": [0.41, 0.55, 0.61]},
}
# Dates whose year span overlaps 1560..1600 (see tests/integration/test_search.py).
OVERLAPS_1560_1600 = {"1550/1600", "156X", "16th century", "1600-1610"}


@pytest.fixture(scope="module")
def sample_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated sample plus one row whose image is missing (so there is an error report)."""
    manifest = write_sample_collection(tmp_path_factory.mktemp("ui-sample"))
    rows = manifest.read_text(encoding="utf-8").rstrip("\n").splitlines()
    bad = {"id": "item-missing", "image": "images/not-there.jpg", "caption": "nothing"}
    rows.append(",".join(bad.get(column, "") for column in rows[0].split(",")))
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


def app_environment(data_dir: Path, model_dir: Path) -> dict[str, str]:
    """The app's settings as the VITRINE_* variables it reads."""
    return {
        "VITRINE_DATA_DIR": str(data_dir),
        "VITRINE_MODEL": f"local-dir:{model_dir}",
        "VITRINE_DEVICE": "cpu",
        "VITRINE_BATCH_SIZE": "8",
        "VITRINE_DECODE_WORKERS": "1",
    }


def environment_settings(environment: dict[str, str]) -> Settings:
    """The same settings as an object, for preparing the data folder before the app opens it."""
    return Settings(
        data_dir=Path(environment["VITRINE_DATA_DIR"]),
        model=environment["VITRINE_MODEL"],
        device="cpu",
        batch_size=8,
        decode_workers=1,
        _env_file=None,
    )


@pytest.fixture(scope="module")
def ui_environment(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, sample_manifest: Path
) -> Iterator[dict[str, str]]:
    """The 24-item sample ingested once for this module; the app's settings as variables."""
    environment = app_environment(tmp_path_factory.mktemp("ui-data"), tiny_model_dir)
    settings = environment_settings(environment)
    fine_tuned = settings.registry_path / "tiny-ft-1"
    shutil.copytree(tiny_model_dir, fine_tuned)
    (fine_tuned / "model_card.json").write_text(json.dumps(MODEL_CARD), encoding="utf-8")
    services = Services(settings)
    try:
        summary = ingest_collection(services, COLLECTION, sample_manifest)
        assert (summary.embedded, summary.failed) == (24, 1), summary
    finally:
        services.close()  # the app opens the embedded store itself
    yield environment
    st.cache_resource.clear()  # closes the app's Services, releasing the store


def app_for(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


@pytest.fixture
def app(ui_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return app_for(ui_environment, monkeypatch)


def result_ids(at: AppTest, section: str = "result") -> list[str]:
    prefix = f"{section}-open:"
    return [
        button.key[len(prefix) :]
        for button in at.button
        if button.key and button.key.startswith(prefix)
    ]


def expected(predicate: Callable[[SampleItem], bool]) -> set[str]:
    return {item.id for item in sample_items() if predicate(item)}


def no_failures(at: AppTest) -> None:
    assert not at.exception, [element.value for element in at.exception]
    assert not at.error, [element.value for element in at.error]


def searched(at: AppTest, text: str) -> AppTest:
    at.run()
    at.text_input(key="q").input(text).run()
    no_failures(at)
    return at


def test_a_text_search_shows_a_page_of_ranked_results(app: AppTest) -> None:
    at = searched(app, "a red circle")
    ids = result_ids(at)
    assert len(ids) == 20 and set(ids) <= expected(lambda item: True)
    assert any("24 matching items · page 1 of 2" in caption.value for caption in at.caption)
    assert at.query_params["q"] == "a red circle"
    assert at.query_params["collection"] == COLLECTION


def test_a_second_query_loads_no_model_and_opens_no_store(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = searched(app, "a red circle")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("built again instead of taken from st.cache_resource")

    monkeypatch.setattr(Embedder, "from_spec", refuse)
    monkeypatch.setattr(Store, "open", refuse)
    at.text_input(key="q").input("a green triangle").run()
    no_failures(at)
    assert len(result_ids(at)) == 20
    at.switch_page("views/collections.py").run()
    no_failures(at)


def test_filters_narrow_the_results_to_exactly_the_matching_items(app: AppTest) -> None:
    at = searched(app, "a shape")
    at.checkbox(key="place:Leiden").check().run()
    no_failures(at)
    assert set(result_ids(at)) == expected(lambda item: item.place == "Leiden")

    at.text_input(key="iconclass_query").input("25F").run()  # hierarchical: all of 25F...
    no_failures(at)
    assert at.checkbox(key="iconclass:25F").value
    assert set(result_ids(at)) == expected(
        lambda item: item.place == "Leiden" and item.iconclass.startswith("25F")
    )

    at.checkbox(key="place:Leiden").uncheck().run()
    at.slider(key="years:sample").set_range(1560, 1600).run()
    no_failures(at)
    assert set(result_ids(at)) == expected(
        lambda item: item.iconclass.startswith("25F") and item.date in OVERLAPS_1560_1600
    )
    assert at.query_params["years"] == "1560:1600"
    assert at.query_params["iconclass"] == "25F"


def test_facet_counts_follow_the_other_filters(app: AppTest) -> None:
    at = searched(app, "a shape")
    at.text_input(key="iconclass_query").input("25F").run()
    no_failures(at)
    animals = [item for item in sample_items() if item.iconclass.startswith("25F")]
    places = Counter(item.place for item in animals)
    shown = {box.key: box.label for box in at.checkbox if (box.key or "").startswith("place:")}
    assert set(shown) == {f"place:{place}" for place in places}  # no zero counts
    for place, count in places.items():
        assert shown[f"place:{place}"] == f"{place} ({count})"
    chosen = animals[0].place
    at.checkbox(key=f"place:{chosen}").check().run()
    both = sum(1 for item in animals if item.place == chosen)
    assert at.checkbox(key="iconclass:25F").label.endswith(f"({both})")
    # Values of one field are alternatives: checking a place leaves the places' counts.
    for place, count in places.items():
        assert at.checkbox(key=f"place:{place}").label == f"{place} ({count})"


def test_an_iconclass_word_offers_notations_with_labels(app: AppTest) -> None:
    at = searched(app, "a shape")
    at.text_input(key="iconclass_query").input("lion").run()
    no_failures(at)
    suggestion = at.button(key="suggest:25F23(LION)")
    assert "lion" in suggestion.label.lower()
    suggestion.click().run()
    assert set(result_ids(at)) == expected(lambda item: item.iconclass == "25F23(LION)")
    at.selectbox(key="lang").select("de").run()
    assert "Löwe" in at.checkbox(key="iconclass:25F23(LION)").label


def test_an_uploaded_image_finds_itself_first(app: AppTest, sample_manifest: Path) -> None:
    item = sample_items()[7]
    data = (sample_manifest.parent / item.image).read_bytes()
    app.run()
    app.file_uploader(key="upload-0").upload(Path(item.image).name, data, "image/jpeg").run()
    no_failures(app)
    assert result_ids(app)[0] == item.id


def test_text_and_image_together_show_the_weight_slider(
    app: AppTest, sample_manifest: Path
) -> None:
    item = sample_items()[2]
    buffer = io.BytesIO()
    Image.open(sample_manifest.parent / item.image).save(buffer, "WEBP")
    at = searched(app, "a green triangle")
    at.file_uploader(key="upload-0").upload("query.webp", buffer.getvalue(), "image/webp").run()
    no_failures(at)
    at.slider(key="weight").set_value(0.0).run()
    no_failures(at)
    assert result_ids(at)[0] == item.id


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.jpg", b"\xff\xd8\xff\xe0 this is not really a JPEG", "could not be read"),
        ("empty.png", b"", "empty"),
        ("notes.tiff", b"II*\x00garbage", "could not be read"),
    ],
)
def test_a_bad_upload_shows_a_message_not_a_traceback(
    app: AppTest, name: str, content: bytes, message: str
) -> None:
    app.run()
    app.file_uploader(key="upload-0").upload(name, content, "image/jpeg").run()
    assert not app.exception
    assert any(message in error.value and name in error.value for error in app.error)


def test_a_url_restores_the_search(app: AppTest) -> None:
    app.query_params.update(
        {
            "collection": COLLECTION,
            "q": "a lion",
            "iconclass": "25F",
            "years": "1550:1650",
            "place": ["Leiden", "Antwerpen"],
        }
    )
    app.run()
    no_failures(app)
    assert app.text_input(key="q").value == "a lion"
    assert app.checkbox(key="iconclass:25F").value
    assert app.checkbox(key="place:Leiden").value and app.checkbox(key="place:Antwerpen").value
    assert app.slider(key="years:sample").value == (1550, 1650)
    overlapping = OVERLAPS_1560_1600 | {"1620", "1650~"}
    assert set(result_ids(app)) == expected(
        lambda item: (
            item.iconclass.startswith("25F")
            and item.place in {"Leiden", "Antwerpen"}
            and item.date in overlapping
        )
    )


def test_a_url_restores_the_page_and_the_negative_terms(app: AppTest) -> None:
    app.query_params.update({"collection": COLLECTION, "q": "a circle", "page": "2", "not": "red"})
    app.run()
    no_failures(app)
    assert app.text_input(key="not_text").value == "red"
    page_two = result_ids(app)
    assert len(page_two) == 4  # 24 items, 20 a page
    first = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    first.query_params.update({"collection": COLLECTION, "q": "a circle", "not": "red"})
    page_one = result_ids(first.run())
    assert set(page_one) | set(page_two) == expected(lambda item: True)


def test_a_url_opens_an_item_view(app: AppTest) -> None:
    app.query_params.update({"collection": COLLECTION, "item": "item-003", "years": "1600:"})
    app.run()
    no_failures(app)
    assert app.query_params["item"] == "item-003"
    assert app.query_params["years"].startswith("1600:")
    assert any("Nearest neighbours" in header.value for header in app.subheader)
    assert "item-003" not in result_ids(app, "neighbour")


def test_more_like_this_and_the_item_view(app: AppTest) -> None:
    at = searched(app, "a blue square")
    chosen = result_ids(at)[0]
    at.button(key=f"result-like:{chosen}").click().run()
    no_failures(at)
    assert at.query_params["like"] == chosen
    assert "q" not in at.query_params
    similar = result_ids(at)
    assert similar and chosen not in similar

    at.button(key=f"result-open:{similar[0]}").click().run()
    no_failures(at)
    assert at.query_params["item"] == similar[0]
    neighbours = result_ids(at, "neighbour")
    assert len(neighbours) == 8 and similar[0] not in neighbours
    assert any("Near duplicates" in header.value for header in at.subheader)
    assert any(f"**Id**: {similar[0]}" in md.value.replace("\\", "") for md in at.markdown)


def test_an_unknown_collection_in_the_url_is_explained(app: AppTest) -> None:
    app.query_params.update({"collection": "nope", "q": "x", "years": "1700:1600"})
    app.run()
    assert not app.exception
    warnings = " ".join(warning.value for warning in app.warning)
    assert "no collection 'nope'" in warnings and "ends before it starts" in warnings


def test_collections_models_and_jobs_pages(app: AppTest) -> None:
    app.run()
    at = app.switch_page("views/collections.py").run()
    no_failures(at)
    assert any(COLLECTION in header.value for header in at.subheader)
    assert any("**24** items" in markdown.value for markdown in at.markdown)
    assert at.get("download_button"), "the error report of the last ingest can be downloaded"
    at = app.switch_page("views/models.py").run()
    no_failures(at)
    headers = [header.value for header in at.subheader]
    assert any(header.startswith("tiny-") and "configured" in header for header in headers)
    assert "tiny-ft-1" in headers
    metrics = at.dataframe[0].value["value"].to_dict()
    assert metrics["validation / recall@5"] == "0.61"
    assert at.get("arrow_line_chart") or at.get("vega_lite_chart"), "the training curves"
    at = app.switch_page("views/jobs.py").run()
    no_failures(at)
    assert at.dataframe[0].value["collection"].tolist() == [COLLECTION]


def test_jobs_page_shows_background_jobs_and_cancels_one(
    app: AppTest, ui_environment: dict[str, str]
) -> None:
    table = JobTable(Path(ui_environment["VITRINE_DATA_DIR"]) / "jobs" / "jobs.db")
    job = table.create("reembed", COLLECTION, {"version": "tiny-ft-1"})
    app.run()
    at = app.switch_page("views/jobs.py").run()
    no_failures(at)
    listed = at.dataframe[0].value
    assert job.id in listed["id"].tolist()
    assert listed.set_index("id").loc[job.id, "status"] == "queued"
    at.selectbox[0].set_value(job.id).run()
    at.button(key=f"cancel-{job.id}").click().run()
    no_failures(at)
    assert table.get(job.id).status == "cancelled" or table.get(job.id).cancel_requested
    assert at.dataframe[1].value["collection"].tolist() == [COLLECTION]


# -- the Duplicates page --------------------------------------------------------------

# Distinct sample images, and copies of two of them under other ids: a copy scores
# 1.0 against its original, two distinct images below 0.995 with the tiny model.
COPIES = {"item-001-copy": "item-001", "item-001-again": "item-001", "item-000-copy": "item-000"}
STRICT = 0.999


@pytest.fixture(scope="module")
def duplicates_environment(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
) -> Iterator[dict[str, str]]:
    """Collection `prints` (six distinct items, three copies) and collection `empty`."""
    root = tmp_path_factory.mktemp("ui-duplicates")
    manifest = write_sample_collection(root / "prints", count=6)
    rows = manifest.read_text(encoding="utf-8").splitlines()
    originals = {row.split(",", 1)[0]: row for row in rows[1:]}
    rows += [originals[original].replace(original, copy, 1) for copy, original in COPIES.items()]
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    environment = app_environment(root / "data", tiny_model_dir)
    services = Services(environment_settings(environment))
    try:
        assert ingest_collection(services, "prints", manifest).embedded == 9
        services.store.ensure_collection("empty", "tiny", dim=32)
    finally:
        services.close()
    yield environment
    st.cache_resource.clear()


@pytest.fixture
def no_collections_environment(tmp_path: Path, tiny_model_dir: Path) -> Iterator[dict[str, str]]:
    yield app_environment(tmp_path / "data", tiny_model_dir)
    st.cache_resource.clear()


def duplicates_page(app: AppTest) -> AppTest:
    app.run()
    at = app.switch_page("views/duplicates.py").run()
    no_failures(at)
    return at


def shown_clusters(at: AppTest) -> list[tuple[str, set[str]]]:
    """(cluster heading, ids of the cards under it), in page order."""
    ids = [caption.value.split("`")[1] for caption in at.caption if caption.value.startswith("`")]
    headings = [header.value for header in at.subheader if header.value.startswith("Cluster")]
    sizes = [int(heading.split(" · ")[1].split()[0]) for heading in headings]
    found: list[tuple[str, set[str]]] = []
    start = 0
    for heading, size in zip(headings, sizes, strict=True):
        found.append((heading, set(ids[start : start + size])))
        start += size
    return found


def test_duplicates_page_lists_the_copies_biggest_cluster_first(
    duplicates_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = duplicates_page(app_for(duplicates_environment, monkeypatch))
    at.selectbox(key="duplicates-collection").select("prints").run()
    assert not shown_clusters(at), "nothing is scanned before the button is pressed"
    at.slider(key="duplicates-threshold").set_value(STRICT).run()
    at.button(key="duplicates-run").click().run()
    no_failures(at)
    assert shown_clusters(at) == [
        ("Cluster 1 · 3 items", {"item-001", "item-001-copy", "item-001-again"}),
        ("Cluster 2 · 2 items", {"item-000", "item-000-copy"}),
    ]
    table = at.dataframe[0].value
    assert table["size"].tolist() == [3, 2]
    assert table["min score"].min() >= STRICT
    assert len(at.get("download_button")) == 2
    assert any("**2** clusters holding **5** of 9 items" in md.value for md in at.markdown)
    links = {link.proto.query_string for link in at.get("page_link")}
    assert "collection=prints&item=item-000-copy" in links, "each card opens its item view"

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("scanned again instead of regrouping the cached neighbours")

    monkeypatch.setattr("services.neighbours.scan_neighbours", refuse)
    at.slider(key="duplicates-threshold").set_value(0.5).run()
    no_failures(at)
    assert shown_clusters(at)[0][0] == "Cluster 1 · 9 items"
    assert any("Cluster 1 holds 9 of 9 items" in warning.value for warning in at.warning)


def test_duplicates_page_explains_an_empty_collection(
    duplicates_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = duplicates_page(app_for(duplicates_environment, monkeypatch))
    at.selectbox(key="duplicates-collection").select("empty").run()
    no_failures(at)
    assert any("'empty' has no items yet" in info.value for info in at.info)
    assert "duplicates-run" not in {button.key for button in at.button}


def test_duplicates_page_without_collections(
    no_collections_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = duplicates_page(app_for(no_collections_environment, monkeypatch))
    assert any("There are no collections yet" in info.value for info in at.info)
