"""What a dashboard viewer chooses: a date range, an owner, a department — checked, or 422."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from runtime.records.errors import FieldProblem, InvalidRecord
from runtime.schema.system import departments, users

NAMES = ("from", "to", "owner", "department")


@dataclass(frozen=True)
class Params:
    """The viewer's choices; None where nothing was chosen."""

    start: dt.date | None = None
    end: dt.date | None = None
    owner: int | None = None
    department: int | None = None


def parse_params(conn: Connection, pairs: Iterable[tuple[str, str]]) -> Params:
    """Check the query parameters of a widget data request; 422 names each bad one."""
    problems: list[FieldProblem] = []
    found: dict[str, object] = {}
    for name, raw in pairs:
        if name not in NAMES:
            problems.append(FieldProblem(name, "unknown_parameter", f"parameters are {', '.join(NAMES)}"))
        elif name in found:
            problems.append(FieldProblem(name, "repeated", "give it once"))
        elif name in ("from", "to"):
            try:
                found[name] = dt.date.fromisoformat(raw)
            except ValueError:
                problems.append(FieldProblem(name, "invalid", "expected a date such as 2026-11-28"))
        else:
            found[name] = _known_id(conn, name, raw, problems)
    start, end = found.get("from"), found.get("to")
    if isinstance(start, dt.date) and isinstance(end, dt.date) and start > end:
        problems.append(FieldProblem("to", "invalid", "the range ends before it starts"))
    if problems:
        raise InvalidRecord(problems)
    return Params(
        start if isinstance(start, dt.date) else None,
        end if isinstance(end, dt.date) else None,
        _int(found.get("owner")),
        _int(found.get("department")),
    )


def _known_id(conn: Connection, name: str, raw: str, problems: list[FieldProblem]) -> int | None:
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        problems.append(
            FieldProblem(name, "invalid", f"expected the id of a {'user' if name == 'owner' else name}")
        )
        return None
    table = users if name == "owner" else departments
    if conn.execute(select(table.c.id).where(table.c.id == int(raw))).first() is None:
        problems.append(FieldProblem(name, "not_found", f"no {'user' if name == 'owner' else name} {raw}"))
        return None
    return int(raw)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
