"""JSONL backups written before any value is changed or dropped by a publish or a purge."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any


class Backup:
    """Appends one JSON line per value: table, column, record id, value, and why it was saved."""

    def __init__(self, folder: str | Path, label: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.path = Path(folder) / f"{label}-{stamp}.jsonl"
        self.count = 0

    def write(self, table: str, column: str, rows: Iterable[tuple[Any, Any]], reason: str) -> int:
        """Save `(id, value)` rows; answers how many were written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with self.path.open("a", encoding="utf-8") as out:
            for record_id, value in rows:
                line = {"table": table, "column": column, "id": record_id, "value": value, "reason": reason}
                out.write(json.dumps(line, default=_plain, ensure_ascii=False) + "\n")
                written += 1
        self.count += written
        return written


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def read_backup(path: str | Path) -> list[dict[str, Any]]:
    """Every line of a backup file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
