"""One error family for vitrine.

Library code raises these; only the CLI and the UI turn them into messages for
people. Every message says what went wrong and what to do about it.
"""


class VitrineError(Exception):
    """Base of every error vitrine raises on purpose."""


class ConfigError(VitrineError):
    """A setting or flag has a value we cannot use."""


class ModelUnavailableError(VitrineError):
    """A model could not be loaded (offline without cached weights, bad folder)."""


class StoreUnavailableError(VitrineError):
    """The Qdrant store cannot be reached or opened."""


class CollectionNotFoundError(VitrineError):
    """A collection (alias) the user named does not exist."""


class SourceError(VitrineError):
    """An ingest source cannot be read at all (missing file, unknown format)."""


class QueryError(VitrineError):
    """A search request is incomplete or contradictory."""
