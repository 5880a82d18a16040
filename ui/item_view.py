"""One item: its full metadata, its nearest neighbours and its near duplicates."""

import re
from typing import Any

import streamlit as st

from services.errors import VitrineError
from services.search import SearchRequest
from services.wiring import Services
from ui.collection_queries import fetch_item
from ui.iconclass_vocabulary import IconclassVocabulary
from ui.result_cards import (
    TITLE_CHARS,
    OnItem,
    escape,
    grid,
    place_text,
    thumbnail,
    title_text,
    years_text,
)

LINK = re.compile(r"^https?://[^\s()<>]+$")
NEIGHBOURS = 8
DUPLICATES = 12
DUPLICATE_SCORE = 0.95
HIDDEN = {
    "fingerprint",
    "iconclass_path",
    "iconclass_top",
    "iconclass_labels",  # shown in the chosen language instead
    "aat_labels",
    "date",
    "year_end",
    "extra",
}
FIRST = ("record_id", "title", "caption", "year_start", "place", "iconclass", "aat", "url")
NAMES = {
    "record_id": "Id",
    "year_start": "Date",
    "aat": "Getty AAT",
    "url": "Catalogue record",
    "geo": "Position",
    "model_version": "Model version",
    "ingested_at": "Ingested",
    "image": "Image file",
    "sha256": "Image SHA-256",
}


def render_item(
    services: Services,
    collection: str,
    record_id: str,
    *,
    lang: str,
    vocabulary: IconclassVocabulary,
    on_open: OnItem,
    on_like: OnItem,
    on_back: OnItem,
) -> None:
    st.button("← Back to the results", key="item-back", on_click=on_back, args=(record_id,))
    payload = fetch_item(services, collection, record_id)
    if payload is None:
        st.warning(f"There is no item {record_id!r} in {collection!r}.")
        return
    picture, facts = st.columns([1, 2], gap="medium")
    with picture:
        image = thumbnail(services, collection, record_id)
        st.image(str(image) if not isinstance(image, bytes) else image, width="stretch")
        with st.container(horizontal=True, gap="small"):
            st.button("More like this", key="item-like", on_click=on_like, args=(record_id,))
            if payload.get("url"):
                st.link_button("Catalogue record ↗", str(payload["url"]))
    with facts:
        st.subheader(title_text(record_id, payload), anchor=False)
        st.markdown("\n".join(metadata_lines(payload, vocabulary, lang)))
    st.subheader("Nearest neighbours", anchor=False)
    _related(services, collection, record_id, None, NEIGHBOURS, "neighbour", on_open, on_like)
    st.subheader("Near duplicates", anchor=False)
    st.caption(f"Items whose image scores at least {DUPLICATE_SCORE} against this one.")
    _related(
        services, collection, record_id, DUPLICATE_SCORE, DUPLICATES, "duplicate", on_open, on_like
    )


def _related(
    services: Services,
    collection: str,
    record_id: str,
    min_score: float | None,
    limit: int,
    section: str,
    on_open: OnItem,
    on_like: OnItem,
) -> None:
    request = SearchRequest(
        collection=collection, like=(record_id,), limit=limit, min_score=min_score
    )
    try:
        hits = services.searcher.search(request).hits
    except VitrineError as error:
        st.error(str(error))
        return
    if not hits:
        st.caption("None found." if min_score is None else f"None above {min_score}.")
        return
    grid(
        services,
        collection,
        hits,
        section=section,
        on_open=on_open,
        on_like=on_like,
        min_width=160,
    )


def metadata_lines(
    payload: dict[str, Any], vocabulary: IconclassVocabulary, lang: str
) -> list[str]:
    """Markdown lines `**Field**: value` for every field worth showing, known ones first."""
    skip = set(HIDDEN)
    if len(str(payload.get("title") or "")) <= TITLE_CHARS:
        skip.add("title")  # the heading shows it whole
    dated = "year_start" in payload or "date" in payload
    keys = [
        key
        for key in FIRST
        if key not in skip and (key in payload or (key == "year_start" and dated))
    ]
    keys += sorted(key for key in payload if key not in keys and key not in skip)
    lines = [_line(key, _value(key, payload, vocabulary, lang)) for key in keys]
    extra = payload.get("extra") or {}
    if isinstance(extra, dict):
        lines += [_line(str(key), escape(str(value))) for key, value in sorted(extra.items())]
    return [line for line in lines if line]


def _line(key: str, value: str) -> str:
    if not value:
        return ""
    name = NAMES.get(key, key.replace("_", " ").capitalize())
    return f"- **{escape(name)}**: {value}"


def _value(key: str, payload: dict[str, Any], vocabulary: IconclassVocabulary, lang: str) -> str:
    value = payload.get(key)
    if key == "year_start":
        catalogued, span = str(payload.get("date") or ""), years_text(payload)
        return escape(f"{catalogued} ({span})" if catalogued and catalogued != span else span)
    if key == "place":
        return escape(place_text(payload))
    if key == "iconclass":
        notations = value if isinstance(value, list) else [value]
        return "".join(
            f"\n    - `{notation}` {escape(vocabulary.label(str(notation), lang))}"
            for notation in notations
            if notation
        )
    if key == "aat":
        ids = value if isinstance(value, list) else [value]
        labels = list(payload.get("aat_labels") or [])
        named = [
            f"{labels[index]} (aat:{aat})"
            if index < len(labels) and labels[index]
            else f"aat:{aat}"
            for index, aat in enumerate(ids)
        ]
        return escape("; ".join(named))
    if key == "url" and isinstance(value, str) and LINK.match(value):
        return f"[{escape(value)}]({value})"
    if key == "geo" and isinstance(value, dict):
        return escape(f"{value.get('lat')}, {value.get('lon')}")
    if isinstance(value, list):
        return escape("; ".join(str(part) for part in value))
    return escape(str(value)) if value not in (None, "") else ""
