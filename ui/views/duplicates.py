"""Duplicates: clusters of near-duplicate images in a collection, at a chosen threshold.

Finding every item's nearest neighbours asks Qdrant once per item, so it runs
when asked and is cached per collection version, size and depth; moving the
threshold only regroups the neighbours already found, which is immediate.
"""

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from services.duplicate_export import clusters_csv, pairs_csv
from services.duplicates import (
    DEFAULT_THRESHOLD,
    DuplicateCluster,
    clusters_from_neighbours,
    oversized_cluster,
)
from services.errors import VitrineError
from services.neighbours import DEFAULT_NEIGHBOURS, Neighbourhood, scan_neighbours
from services.store import CollectionInfo
from services.wiring import Services
from ui.result_cards import TITLE_CHARS, escape, thumbnail
from ui.state import collection_names, services

COLLECTION = "duplicates-collection"
THRESHOLD = "duplicates-threshold"
NEIGHBOURS = "duplicates-neighbours"
RUN = "duplicates-run"
SCANNED = "duplicates-scanned"
LOWEST_THRESHOLD = 0.5
"""The slider's floor; neighbours below it are not kept."""
MAX_NEIGHBOURS = 100
CLUSTERS_PER_PAGE = 10
SEARCH_PAGE = "views/search.py"

ScanKey = tuple[str, str, int, int]
"""(store location, physical collection, points, neighbours): what a scan depends on.

The physical collection changes with the model version, the count with an ingest."""


@st.cache_data(max_entries=4, ttl=3600, show_spinner="Finding each item's nearest neighbours…")
def _neighbourhoods(
    scan: ScanKey, collection: str, _services: Services
) -> dict[str, Neighbourhood]:
    return scan_neighbours(
        _services.store, collection, neighbours=scan[3], min_score=LOWEST_THRESHOLD
    )


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def _clusters(
    scan: ScanKey, collection: str, threshold: float, _services: Services
) -> list[DuplicateCluster]:
    near = _neighbourhoods(scan, collection, _services)
    return clusters_from_neighbours(_services.store, collection, near, threshold)


def controls(aliases: list[str]) -> tuple[str, float, int]:
    """Collection, threshold and neighbours, side by side."""
    where, how_close, how_deep = st.columns([2, 3, 1], gap="medium")
    collection = where.selectbox("Collection", aliases, key=COLLECTION)
    threshold = how_close.slider(
        "Threshold (image similarity)",
        min_value=LOWEST_THRESHOLD,
        max_value=1.0,
        value=DEFAULT_THRESHOLD,
        step=0.001,
        format="%.3f",
        key=THRESHOLD,
        help=(
            "Two items whose images score at least this much (cosine) count as near-"
            f"duplicates. {DEFAULT_THRESHOLD} is a common starting point; "
            "`vitrine duplicates --calibrate PAIRS` finds the best one for your model from "
            "pairs you labelled."
        ),
    )
    neighbours = how_deep.number_input(
        "Neighbours",
        min_value=1,
        max_value=MAX_NEIGHBOURS,
        value=DEFAULT_NEIGHBOURS,
        step=1,
        key=NEIGHBOURS,
        help="Nearest items compared with each item; a larger cluster is still found whole.",
    )
    return collection, float(threshold), int(neighbours)


def scan_requested(scan: ScanKey, items: int) -> bool:
    """True once this session asked for this scan (a button, since a large one takes a while)."""
    done: set[ScanKey] = st.session_state.setdefault(SCANNED, set())
    if scan in done:
        return True
    st.caption(
        f"{items} items: each is compared with its {scan[3]} nearest neighbours, once; "
        "the threshold can then be moved freely."
    )
    st.button("Find duplicates", key=RUN, type="primary", on_click=done.add, args=(scan,))
    return False


def cluster_table(clusters: list[DuplicateCluster]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cluster": [cluster.id for cluster in clusters],
            "size": [cluster.size for cluster in clusters],
            "max score": [round(cluster.max_score, 4) for cluster in clusters],
            "min score": [round(cluster.min_score, 4) for cluster in clusters],
            "members": [", ".join(m.id for m in cluster.members) for cluster in clusters],
        }
    )


def downloads(collection: str, clusters: list[DuplicateCluster], threshold: float) -> None:
    stem = f"{collection}-duplicates-{threshold:.3f}"
    with st.container(horizontal=True, gap="small"):
        st.download_button(
            "Download the clusters (CSV)",
            data=clusters_csv(clusters),
            file_name=f"{stem}-clusters.csv",
            mime="text/csv",
            key="duplicates-clusters-csv",
            on_click="ignore",
        )
        st.download_button(
            "Download the pairs (CSV)",
            data=pairs_csv(clusters),
            file_name=f"{stem}-pairs.csv",
            mime="text/csv",
            key="duplicates-pairs-csv",
            on_click="ignore",
        )


def show_cluster(shared: Services, collection: str, cluster: DuplicateCluster) -> None:
    """The members' thumbnails, titles, ids and best scores, each linked to its item view."""
    with st.container(border=True):
        st.subheader(f"Cluster {cluster.id} · {cluster.size} items", anchor=False)
        st.caption(f"Scores {cluster.min_score:.3f} to {cluster.max_score:.3f}")
        cells = st.grid("auto", min_column_width=160, gap="small")
        for member in cluster.members:
            with cells.cell():
                image = thumbnail(shared, collection, member.id)
                st.image(str(image) if isinstance(image, Path) else image, width="stretch")
                title = member.title or member.id
                if len(title) > TITLE_CHARS:
                    title = title[: TITLE_CHARS - 1] + "…"
                st.markdown(f"**{escape(title)}**")
                st.caption(f"`{member.id}` · best score {member.score:.3f}")
                st.page_link(
                    SEARCH_PAGE,
                    label="Details",
                    icon=":material/open_in_new:",
                    query_params={"collection": collection, "item": member.id},
                )


def show_clusters(
    shared: Services,
    collection: str,
    clusters: list[DuplicateCluster],
    threshold: float,
    items: int,
) -> None:
    if not clusters:
        st.success(f"No near-duplicates at threshold {threshold:.3f} among {items} items.")
        return
    clustered = sum(cluster.size for cluster in clusters)
    st.markdown(
        f"**{len(clusters)}** clusters holding **{clustered}** of {items} items "
        f"at threshold {threshold:.3f}, biggest first."
    )
    oversized = oversized_cluster(clusters, items)
    if oversized is not None:
        st.warning(
            f"Cluster {oversized.id} holds {oversized.size} of {items} items: the threshold is "
            "too low for this model. Raise it, or calibrate it with "
            "`vitrine duplicates --calibrate PAIRS`."
        )
    st.dataframe(cluster_table(clusters), hide_index=True)
    downloads(collection, clusters, threshold)
    pages = math.ceil(len(clusters) / CLUSTERS_PER_PAGE)
    page = 1
    if pages > 1:
        page = st.pagination(pages, key=f"duplicates-page:{collection}:{threshold}")
    start = (page - 1) * CLUSTERS_PER_PAGE
    for cluster in clusters[start : start + CLUSTERS_PER_PAGE]:
        show_cluster(shared, collection, cluster)


def collection_info(shared: Services, collection: str) -> CollectionInfo | None:
    """The collection's size and version; None (with the reason shown) when it is empty."""
    info = shared.store.info(collection)
    if info.points == 0:
        st.info(f"The collection {collection!r} has no items yet: ingest a catalogue into it.")
        return None
    return info


def main() -> None:
    shared = services()
    st.title("Duplicates")
    aliases = collection_names(shared)
    if aliases is None:
        return
    collection, threshold, neighbours = controls(aliases)
    try:
        info = collection_info(shared, collection)
        if info is None:
            return
        scan: ScanKey = (shared.store.location, info.physical, info.points, neighbours)
        if not scan_requested(scan, info.points):
            return
        clusters = _clusters(scan, collection, threshold, shared)
    except VitrineError as error:
        st.error(str(error))
        return
    show_clusters(shared, collection, clusters, threshold, info.points)


main()
