"""Where thumbnails made at ingest time live, so views never re-decode originals.

One small JPEG per point, named by point id, under the alias name (point ids
are stable across model versions, so a re-embed reuses them).
"""

import os
import tempfile
from pathlib import Path

THUMBNAIL_SIZE = 256


def thumbnail_path(data_dir: Path, collection: str, point_id: str) -> Path:
    return data_dir / "thumbnails" / collection / point_id[:2] / f"{point_id}.jpg"


def write_thumbnail(data_dir: Path, collection: str, point_id: str, data: bytes) -> None:
    """Store a thumbnail under its point id; a reader never sees half a file."""
    path = thumbnail_path(data_dir, collection, point_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    os.replace(temporary, path)
