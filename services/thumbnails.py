"""Where thumbnails made at ingest time live, so views never re-decode originals.

One small JPEG per point, named by point id, under the alias name (point ids
are stable across model versions, so a re-embed reuses them).
"""

from pathlib import Path

THUMBNAIL_SIZE = 256


def thumbnail_path(data_dir: Path, collection: str, point_id: str) -> Path:
    return data_dir / "thumbnails" / collection / point_id[:2] / f"{point_id}.jpg"
