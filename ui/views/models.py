"""Models: the versions this data folder knows, their sources, collections and metrics."""

import pandas as pd
import streamlit as st

from services.errors import VitrineError
from services.wiring import Services
from ui.model_listing import ModelVersion, model_versions
from ui.state import services


@st.cache_data(ttl=60, show_spinner=False)
def _versions(location: str, data_dir: str, _services: Services) -> list[ModelVersion]:
    # Naming the configured model's version may hash its weights: once a minute at most.
    return model_versions(_services)


def show(model: ModelVersion) -> None:
    with st.container(border=True):
        marker = " · configured" if model.configured else ""
        st.subheader(f"{model.version}{marker}", anchor=False)
        st.caption(model.source)
        if model.collections:
            st.markdown("Collections: " + ", ".join(f"`{name}`" for name in model.collections))
        parent = model.card.get("parent") or model.card.get("parent_version")
        if parent:
            st.markdown(f"Fine-tuned from `{parent}`")
        if model.metrics:
            frame = pd.json_normalize(model.metrics, sep=" / ").T
            frame.columns = ["value"]
            st.dataframe(frame.astype(str))
        elif not model.card:
            st.caption("A base model: no evaluation recorded for it here.")
        if model.curves:
            st.line_chart(pd.DataFrame({k: pd.Series(v) for k, v in model.curves.items()}))


def main() -> None:
    shared = services()
    st.title("Models")
    try:
        versions = _versions(shared.store.location, str(shared.settings.data_dir), shared)
    except VitrineError as error:
        st.error(str(error))
        return
    if not versions:
        st.info("No model versions yet.")
    for model in versions:
        show(model)


main()
