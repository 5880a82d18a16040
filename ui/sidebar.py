"""The search page's sidebar: collection, dates, Iconclass, AAT and place filters.

Each facet value is a checkbox with its count next to it; checked values of
one field are alternatives (any of them), fields combine. Iconclass takes a
notation (matching everything below it) or a word (offering the collection's
notations whose label holds it, in the chosen language).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import streamlit as st

from services.filters import Filters
from services.wiring import Services
from ui import search_session as session
from ui.collection_queries import (
    aat_label,
    collection_notations,
    facet_counts,
    value_count,
    year_bounds,
)
from ui.iconclass_vocabulary import LANGUAGES, IconclassVocabulary
from ui.query_state import normalise_notation

TOP_VALUES = 12
SUGGESTIONS = 8
LABEL_CHARS = 48
ICONCLASS_QUERY = "iconclass_query"
ICONCLASS_WORD = "iconclass_word"
Years = tuple[int | None, int | None]


@dataclass(frozen=True)
class SidebarChoice:
    collection: str
    physical: str
    lang: str
    filters: Filters


def render_sidebar(
    services: Services, aliases: list[str], vocabulary: IconclassVocabulary
) -> SidebarChoice:
    """Draw the filters; returns what they select."""
    with st.sidebar:
        collection = st.selectbox(
            "Collection",
            aliases,
            key=session.COLLECTION,
            on_change=session.reset_filters,
            persist_state="session",
        )
        physical = services.store.resolve(collection)
        years = _years(services, collection, physical)
        lang = st.selectbox(
            "Label language",
            list(LANGUAGES),
            format_func=LANGUAGES.__getitem__,
            key=session.LANG,
            persist_state="session",
        )
        filters = Filters(
            iconclass=session.selected("iconclass"),
            aat=session.selected("aat"),
            place=session.selected("place"),
            years=years,
        )
        _iconclass(services, physical, filters, vocabulary, lang)
        st.subheader("Getty AAT")
        _facet_checkboxes(
            services,
            physical,
            filters,
            field="aat",
            facet="aat",
            label=lambda value: aat_label(services, physical, value) or f"aat:{value}",
            empty="No AAT terms in this collection.",
        )
        st.subheader("Place")
        _facet_checkboxes(
            services,
            physical,
            filters,
            field="place",
            facet="place",
            label=str,
            empty="No places in this collection.",
        )
    return SidebarChoice(collection, physical, lang, filters)


def _years(services: Services, collection: str, physical: str) -> Years | None:
    """The date range slider; None while it spans the whole collection."""
    bounds = year_bounds(services, physical)
    wanted = st.session_state.pop(session.YEARS_FROM_URL, "unset")
    if bounds is None:
        st.caption("No dated items in this collection.")
        return None
    low, high = bounds
    if low == high:
        st.caption(f"Every dated item is from {low}.")
        return None
    key = session.years_key(collection)
    if wanted != "unset":
        st.session_state[key] = _clip(wanted, low, high)
    elif key not in st.session_state:
        st.session_state[key] = (low, high)
    chosen = st.slider(
        "Years", min_value=low, max_value=high, key=key, step=1, persist_state="session"
    )
    start, end = cast(tuple[int, int], chosen)
    return None if (start, end) == (low, high) else (start, end)


def _clip(years: Years | None, low: int, high: int) -> tuple[int, int]:
    if years is None:
        return low, high
    start = low if years[0] is None else min(max(years[0], low), high)
    end = high if years[1] is None else max(min(years[1], high), low)
    if start > end or (years[0] is not None and years[0] > high):
        st.warning(f"No item in this collection is dated in that range ({low} to {high}).")
        return low, high
    return start, end


def _iconclass(
    services: Services,
    physical: str,
    filters: Filters,
    vocabulary: IconclassVocabulary,
    lang: str,
) -> None:
    st.subheader("Iconclass")
    notations = collection_notations(services, physical)
    st.text_input(
        "Notation or word",
        key=ICONCLASS_QUERY,
        placeholder="25F, or a word such as lion",
        help="A notation matches everything below it: 25F finds 25F23(LION).",
        on_change=_iconclass_entered,
        args=(vocabulary, notations),
    )
    word = st.session_state.get(ICONCLASS_WORD)
    if word:
        found = vocabulary.find(word, lang, notations, limit=SUGGESTIONS)
        if not found:
            st.caption(f"No notation in this collection has “{word}” in its label.")
        for notation in found:
            st.button(
                f"+ {_notation_text(notation, vocabulary, lang)} ({notations[notation]})",
                key=f"suggest:{notation}",
                on_click=_add_iconclass,
                args=(notation,),
            )

    def label(notation: str) -> str:
        return _notation_text(notation, vocabulary, lang)

    _facet_checkboxes(
        services,
        physical,
        filters,
        field="iconclass",
        facet="iconclass_top",
        label=label,
        empty="No Iconclass notations in this collection.",
    )


def _notation_text(notation: str, vocabulary: IconclassVocabulary, lang: str) -> str:
    label = vocabulary.label(notation, lang)
    if len(label) > LABEL_CHARS:
        label = label[: LABEL_CHARS - 1] + "…"
    return f"{notation} · {label}" if label else notation


def _iconclass_entered(vocabulary: IconclassVocabulary, notations: dict[str, int]) -> None:
    text = st.session_state.get(ICONCLASS_QUERY, "").strip()
    if not text:
        st.session_state[ICONCLASS_WORD] = None
        return
    notation = normalise_notation(text)
    if notation in notations or vocabulary.knows(notation) or text[0].isdigit():
        _add_iconclass(notation)
    else:
        st.session_state[ICONCLASS_WORD] = text


def _add_iconclass(notation: str) -> None:
    session.set_selected("iconclass", [*session.selected("iconclass"), notation])
    st.session_state.pop(session.checkbox_key("iconclass", notation), None)
    st.session_state[ICONCLASS_QUERY] = ""
    st.session_state[ICONCLASS_WORD] = None


def _facet_checkboxes(
    services: Services,
    physical: str,
    filters: Filters,
    *,
    field: str,
    facet: str,
    label: Callable[[str], str],
    empty: str,
) -> None:
    counts = facet_counts(services, physical, facet, filters, TOP_VALUES)
    chosen = session.selected(field)
    values = list(dict.fromkeys([*chosen, *counts]))
    if not values:
        st.caption(empty)
    for value in values:
        count = (
            counts[value]
            if value in counts
            else value_count(services, physical, facet, value, filters)
        )
        key = session.checkbox_key(field, value)
        if key not in st.session_state:
            st.session_state[key] = value in chosen
        st.checkbox(f"{label(value)} ({count})", key=key, on_change=_toggle, args=(field, value))


def _toggle(field: str, value: str) -> None:
    chosen = [item for item in session.selected(field) if item != value]
    if st.session_state.get(session.checkbox_key(field, value)):
        chosen.append(value)
    session.set_selected(field, chosen)
