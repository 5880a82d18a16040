"""The search page's state in `st.session_state`, and its round trip with the URL.

Widgets own the simple values (text, collection, years); the any-of filter
lists, the item in view, `like` and the page are plain session values changed
by callbacks. `sync_from_url` restores a search from the URL when the URL was
not written by this session (a bookmark, a shared link); `write_url` puts the
current search back.
"""

from collections.abc import Iterable
from dataclasses import replace

import streamlit as st

from ui.query_state import ParsedParams, SearchState, from_params

FACET_FIELDS = ("iconclass", "aat", "place")
COLLECTION = "collection"
QUERY = "q"
NEGATIVE = "not_text"
LANG = "lang"
LIKE = "like"
ITEM = "item"
PAGE = "page"
PAGER_ROUND = "pager_round"
SIGNATURE = "signature"
URL_SEEN = "url_seen"
YEARS_FROM_URL = "years_from_url"
RESTORED = "restored"


def selected_key(field: str) -> str:
    return f"selected:{field}"


def checkbox_key(field: str, value: str) -> str:
    return f"{field}:{value}"


def pager_key() -> str:
    """The page widget's key; a new key draws a fresh widget on the page a search starts at."""
    return f"pager-{st.session_state.get(PAGER_ROUND, 0)}"


def _new_pager() -> None:
    st.session_state[PAGER_ROUND] = st.session_state.get(PAGER_ROUND, 0) + 1


def years_key(collection: str) -> str:
    return f"years:{collection}"


def selected(field: str) -> tuple[str, ...]:
    return tuple(st.session_state.get(selected_key(field), ()))


def set_selected(field: str, values: Iterable[str]) -> None:
    st.session_state[selected_key(field)] = list(dict.fromkeys(values))


def _forget_checkboxes(field: str) -> None:
    prefix = checkbox_key(field, "")
    for key in [key for key in st.session_state if str(key).startswith(prefix)]:
        del st.session_state[key]


def current_url() -> dict[str, list[str]]:
    return {key: st.query_params.get_all(key) for key in st.query_params}


def sync_from_url(aliases: list[str]) -> list[str]:
    """Restore the search from the URL if it changed outside this session; returns problems."""
    url = current_url()
    seen = st.session_state.get(URL_SEEN)
    if url == seen or (not url and seen is not None):
        return []
    parsed: ParsedParams = from_params(st.query_params.get_all)
    problems = list(parsed.problems)
    state = parsed.state
    if state.collection and state.collection not in aliases:
        problems.append(
            f"collection: there is no collection {state.collection!r} "
            f"(known: {', '.join(aliases)})."
        )
        state = SearchState()
    restore(state)
    st.session_state[URL_SEEN] = url
    return problems


def restore(state: SearchState) -> None:
    """Put `state` into the widgets and session values, before any widget is drawn."""
    if state.collection:
        st.session_state[COLLECTION] = state.collection
    st.session_state[YEARS_FROM_URL] = state.years
    st.session_state[QUERY] = state.q
    st.session_state[NEGATIVE] = ", ".join(state.negative)
    for field in FACET_FIELDS:
        set_selected(field, getattr(state, field))
        _forget_checkboxes(field)
    st.session_state[LIKE] = state.like
    st.session_state[ITEM] = state.item
    st.session_state[PAGE] = state.page
    _new_pager()
    # The widgets may read the restored values a little differently (a year range
    # clipped to the collection, a default collection): the first search after a
    # restore keeps the page and the open item whatever its signature.
    st.session_state[SIGNATURE] = RESTORED


def reset_filters() -> None:
    """A new collection starts without filters, item or page from the old one."""
    for field in FACET_FIELDS:
        set_selected(field, ())
        _forget_checkboxes(field)
    st.session_state[LIKE] = None
    st.session_state[ITEM] = None
    st.session_state[PAGE] = 1


def _signature(state: SearchState) -> tuple[object, ...]:
    """What changes the result list (not the page or the open item)."""
    return (state.collection, state.q, state.filters, state.negative, state.like)


def settle(state: SearchState) -> SearchState:
    """Back to page 1 and the result list when the search itself changed."""
    signature = _signature(state)
    previous = st.session_state.get(SIGNATURE)
    st.session_state[SIGNATURE] = signature
    if previous in (signature, RESTORED):
        return state
    st.session_state[ITEM] = None
    st.session_state[PAGE] = 1
    _new_pager()
    return replace(state, page=1, item=None)


def write_url(state: SearchState) -> None:
    """Show `state` in the address bar (only when it differs, to keep history clean)."""
    params = state.to_params()
    wanted = {key: value if isinstance(value, list) else [value] for key, value in params.items()}
    if current_url() != wanted:
        st.query_params.from_dict(params)
    st.session_state[URL_SEEN] = wanted
