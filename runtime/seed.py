"""Demo data: a pack's `demo/data.yaml` written through the records service on first start.

The file maps form keys to lists of records. A record may carry `ref: name`; a later
value `{ref: name}` becomes that record's id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from runtime.loading.problems import DefinitionError
from runtime.loading.source import parse_file
from runtime.records.service import RecordsService


def demo_file(pack: str | Path) -> Path | None:
    """The pack's demo data file, if it has one."""
    path = Path(pack) / "demo" / "data.yaml"
    return path if path.is_file() else None


def seed_demo(service: RecordsService, app_key: str, path: Path) -> int:
    """Write the demo records unless the app already holds data; answers how many were written."""
    app = service.apps[app_key]
    with service.engine.connect() as conn:
        for form in app.forms.values():
            if conn.execute(select(func.count()).select_from(form.table)).scalar_one():
                return 0
    source = parse_file(path)
    if source.problems:
        raise DefinitionError(source.problems)
    refs: dict[str, int] = {}
    written = 0
    for form_key, records in (source.data or {}).items():
        for record in records:
            data = dict(record)
            name = data.pop("ref", None)
            created = service.create(app_key, form_key, _resolve(data, refs))
            if name:
                refs[str(name)] = int(created["id"])
            written += 1
    return written


def _resolve(value: Any, refs: dict[str, int]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"ref"}:
            return refs[str(value["ref"])]
        return {k: _resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, refs) for v in value]
    return value
