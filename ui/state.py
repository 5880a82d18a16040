"""The one place the UI builds its shared objects, once per process.

`services()` reads `Settings()` (VITRINE_* variables and `.env`) on each run,
which is cheap, and returns the `Services` built for those settings the first
time they were seen: the Qdrant client and the models inside it are opened
once and shared by every session and page. A text query therefore never
reloads a model.
"""

import hashlib

import streamlit as st
from pydantic import SecretStr

from services.errors import VitrineError
from services.settings import Settings
from services.wiring import Services
from ui.iconclass_vocabulary import IconclassVocabulary


def settings_fingerprint(settings: Settings) -> str:
    """A stable key for a Settings object (secrets enter only as a digest)."""
    parts = []
    for name in sorted(type(settings).model_fields):
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = hashlib.sha256(value.get_secret_value().encode()).hexdigest()
        parts.append(f"{name}={value}")
    return ";".join(parts)


def _close(services: Services) -> None:
    services.close()


@st.cache_resource(show_spinner=False, on_release=_close)
def _services_for(fingerprint: str, _settings: Settings) -> Services:
    return Services(_settings)


def services() -> Services:
    """The process-wide Services for the current settings."""
    settings = Settings()
    return _services_for(settings_fingerprint(settings), settings)


@st.cache_resource(show_spinner="Loading the Iconclass vocabulary…")
def vocabulary() -> IconclassVocabulary:
    """Iconclass labels, loaded once per process."""
    return IconclassVocabulary()


def collection_names(shared: Services) -> list[str] | None:
    """The collections to choose from, sorted; None (with the reason shown) when there
    are none or the store cannot be read."""
    try:
        aliases = sorted(shared.store.aliases())
    except VitrineError as error:
        st.error(str(error))
        return None
    if not aliases:
        st.info(
            "There are no collections yet. Create one with `vitrine ingest CATALOGUE "
            "--collection NAME`, or try the shipped sample with `vitrine demo`."
        )
        return None
    return aliases
