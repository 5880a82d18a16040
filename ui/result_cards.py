"""Result cards and the item view: thumbnails, titles, dates, places, scores, links.

Thumbnails are the small JPEGs ingest wrote; a missing one shows a placeholder,
never the original image decoded on the fly.
"""

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image, ImageDraw

from services.search import Hit
from services.store import point_id
from services.thumbnails import THUMBNAIL_SIZE, thumbnail_path
from services.wiring import Services

MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|$<>~])")
TITLE_CHARS = 90
OnItem = Callable[[str], None]


def escape(text: str) -> str:
    """Text shown as Markdown exactly as it is (no emphasis, links or formulas)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def years_text(payload: dict[str, Any]) -> str:
    start, end = payload.get("year_start"), payload.get("year_end")
    if start is None:
        return str(payload.get("date") or "")
    return str(start) if end in (None, start) else f"{start}–{end}"


def place_text(payload: dict[str, Any]) -> str:
    place = payload.get("place")
    if isinstance(place, list):
        return ", ".join(str(value) for value in place)
    return str(place or "")


def title_text(hit_id: str, payload: dict[str, Any]) -> str:
    title = str(payload.get("title") or payload.get("caption") or hit_id)
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"


@st.cache_data(show_spinner=False)
def placeholder_png() -> bytes:
    """A neutral square with a picture-frame mark, for items without a thumbnail."""
    size = THUMBNAIL_SIZE
    image = Image.new("RGB", (size, size), (236, 234, 229))
    pen = ImageDraw.Draw(image)
    pen.rectangle(
        (size // 4, size // 4, size * 3 // 4, size * 3 // 4), outline=(170, 165, 155), width=4
    )
    pen.line(
        (size // 4, size * 3 // 4, size // 2, size // 2, size * 3 // 4, size * 3 // 4),
        fill=(170, 165, 155),
        width=4,
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def thumbnail(services: Services, collection: str, record_id: str) -> Path | bytes:
    path = thumbnail_path(services.settings.data_dir, collection, point_id(collection, record_id))
    return path if path.is_file() else placeholder_png()


def card(
    services: Services,
    collection: str,
    hit: Hit,
    *,
    section: str,
    on_open: OnItem,
    on_like: OnItem,
) -> None:
    """One result: thumbnail, title, date · place · score, and its actions."""
    payload = hit.payload
    image = thumbnail(services, collection, hit.id)
    st.image(str(image) if isinstance(image, Path) else image, width="stretch")
    st.markdown(f"**{escape(title_text(hit.id, payload))}**")
    facts = [years_text(payload), place_text(payload), f"score {hit.score:.3f}"]
    st.caption(" · ".join(escape(fact) for fact in facts if fact))
    st.caption(f"`{hit.id}`")
    with st.container(horizontal=True, gap="small"):
        st.button("Details", key=f"{section}-open:{hit.id}", on_click=on_open, args=(hit.id,))
        st.button(
            "More like this", key=f"{section}-like:{hit.id}", on_click=on_like, args=(hit.id,)
        )
        if payload.get("url"):
            st.link_button("Record ↗", str(payload["url"]))


def grid(
    services: Services,
    collection: str,
    hits: list[Hit],
    *,
    section: str,
    on_open: OnItem,
    on_like: OnItem,
    min_width: int = 200,
) -> None:
    cells = st.grid("auto", min_column_width=min_width, border=True, gap="small")
    for hit in hits:
        with cells.cell():
            card(services, collection, hit, section=section, on_open=on_open, on_like=on_like)
