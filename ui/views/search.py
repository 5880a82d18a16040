"""Search: a text, an example image or an item, narrowed by the sidebar filters.

The page only reads widgets, builds one `SearchRequest` and shows what
`services.searcher` answers; the search itself lives in `services.search`.
"""

import math

import streamlit as st
from PIL import Image

from services.errors import VitrineError
from services.search import SearchRequest
from services.settings import Settings
from services.wiring import Services
from ui import search_session as session
from ui.collection_queries import match_count
from ui.item_view import render_item
from ui.query_state import SearchState, split_terms
from ui.result_cards import grid
from ui.sidebar import SidebarChoice, render_sidebar
from ui.state import collection_names, services, vocabulary
from ui.upload import MEGABYTE, UPLOAD_TYPES, UploadError, decode_upload

PAGE_SIZE = 20
UPLOADS = "upload_round"
WEIGHT = "weight"


def upload_key() -> str:
    return f"upload-{st.session_state.get(UPLOADS, 0)}"


def open_item(record_id: str) -> None:
    st.session_state[session.ITEM] = record_id


def close_item(_record_id: str) -> None:
    st.session_state[session.ITEM] = None


def more_like(record_id: str) -> None:
    """A new search by this item's example: text and image give way, filters stay."""
    st.session_state[session.LIKE] = record_id
    st.session_state[session.ITEM] = None
    st.session_state[session.QUERY] = ""
    st.session_state[UPLOADS] = st.session_state.get(UPLOADS, 0) + 1


def clear_like() -> None:
    st.session_state[session.LIKE] = None


def turn_page(key: str) -> None:
    st.session_state[session.PAGE] = st.session_state[key]


@st.cache_data(max_entries=8, show_spinner=False)
def _decoded(file_id: str, max_bytes: int, max_pixels: int, _data: bytes) -> Image.Image:
    return decode_upload(_data, max_bytes=max_bytes, max_pixels=max_pixels)


def query_image(settings: Settings) -> Image.Image | None:
    """The uploaded example image, decoded safely; problems are shown, not raised."""
    upload = st.file_uploader(
        "…or an example image",
        type=list(UPLOAD_TYPES),
        key=upload_key(),
        max_upload_size=max(1, math.ceil(settings.max_image_bytes / MEGABYTE)),
        help="JPEG, PNG, WebP or TIFF. The image is not kept in the page's link.",
    )
    if upload is None:
        return None
    try:
        image = _decoded(
            upload.file_id, settings.max_image_bytes, settings.max_image_pixels, upload.getvalue()
        )
    except UploadError as error:
        st.error(f"{upload.name}: {error}")
        return None
    st.image(image, width=160, caption=upload.name)
    return image


def search_state(choice: SidebarChoice, query: str, negative: str) -> SearchState:
    state = SearchState(
        collection=choice.collection,
        q=query,
        iconclass=choice.filters.iconclass,
        aat=choice.filters.aat,
        place=choice.filters.place,
        years=choice.filters.years,
        negative=split_terms(negative),
        like=st.session_state.get(session.LIKE),
        page=st.session_state.get(session.PAGE, 1),
        item=st.session_state.get(session.ITEM),
    )
    return session.settle(state)


def results(
    shared: Services, choice: SidebarChoice, state: SearchState, image: Image.Image | None
) -> None:
    total = match_count(shared, choice.physical, choice.filters) - (1 if state.like else 0)
    if not (state.q.strip() or image is not None or state.like):
        st.info(
            f"{total} items match the filters. Describe what you are looking for, upload an "
            "example image, or open an item and ask for more like it."
        )
        return
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(state.page, pages)
    request = SearchRequest(
        collection=choice.collection,
        text=state.q or None,
        image=image,
        like=(state.like,) if state.like else (),
        text_weight=st.session_state.get(WEIGHT, 0.5),
        negative=state.negative,
        filters=choice.filters,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    try:
        hits = shared.searcher.search(request).hits
    except VitrineError as error:
        st.error(str(error))
        return
    if not hits:
        st.info("No results. Loosen the filters or try other words.")
        return
    st.caption(f"{total} matching items · page {page} of {pages}")
    grid(shared, choice.collection, hits, section="result", on_open=open_item, on_like=more_like)
    if pages > 1:
        key = session.pager_key()
        st.pagination(
            pages, default=page, key=key, on_change=turn_page, args=(key,), width="stretch"
        )


def main() -> None:
    shared = services()
    st.title("Search")
    aliases = collection_names(shared)
    if aliases is None:
        return
    for problem in session.sync_from_url(aliases):
        st.warning(f"From the link, {problem}")
    choice = render_sidebar(shared, aliases, vocabulary())
    words, example = st.columns([3, 2], gap="medium")
    with words:
        query = st.text_input(
            "Describe what you are looking for",
            key=session.QUERY,
            placeholder="a lion holding a sword",
            persist_state="session",
        )
        negative = st.text_input(
            "Not like (comma-separated)",
            key=session.NEGATIVE,
            placeholder="text, border",
            persist_state="session",
        )
    with example:
        image = query_image(shared.settings)
    if query.strip() and image is not None:
        st.slider(
            "Text ↔ image: weight of the text",
            min_value=0.0,
            max_value=1.0,
            value=0.5,
            step=0.05,
            key=WEIGHT,
            help="1 counts only the text, 0 only the image.",
        )
    like = st.session_state.get(session.LIKE)
    if like:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.markdown(f"More like item `{like}`")
            st.button("Clear", key="clear-like", on_click=clear_like)
    state = search_state(choice, query, negative)
    session.write_url(state)
    if state.item:
        render_item(
            shared,
            choice.collection,
            state.item,
            lang=choice.lang,
            vocabulary=vocabulary(),
            on_open=open_item,
            on_like=more_like,
            on_back=close_item,
        )
        return
    results(shared, choice, state, image)


main()
