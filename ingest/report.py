"""The ingest error report: one JSON line per skipped row, image or warning.

Written as the run goes (flushed per line) so even an interrupted run leaves a
readable report; the summary names the file.
"""

import json
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

Kind = Literal["row", "image", "date", "metadata", "missing"]


class ErrorReport:
    """Append-only JSONL of problems; counts them by kind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: dict[str, int] = {}
        self._stream: IO[str] | None = None

    def add(
        self,
        kind: Kind,
        reason: str,
        *,
        record_id: str | None = None,
        row: int | None = None,
        image: str | None = None,
    ) -> None:
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("a", encoding="utf-8")
        entry = {"kind": kind, "id": record_id, "row": row, "image": image, "reason": reason}
        self._stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._stream.flush()
        self.counts[kind] = self.counts.get(kind, 0) + 1

    @property
    def written(self) -> bool:
        return self._stream is not None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def __enter__(self) -> "ErrorReport":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
