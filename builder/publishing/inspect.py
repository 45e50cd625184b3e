"""Facts about the live database a plan needs: tables, columns, constraints, counts and examples."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, func, inspect, select

EXAMPLES = 5


@dataclass
class LiveTable:
    """A table as it is in the database."""

    name: str
    columns: dict[str, dict[str, Any]]
    indexes: list[dict[str, Any]] = field(default_factory=list)
    uniques: list[dict[str, Any]] = field(default_factory=list)
    foreign_keys: list[dict[str, Any]] = field(default_factory=list)

    def index_names(self, column: str) -> list[str]:
        """Indexes on exactly this column (unique ones included on SQLite)."""
        return [i["name"] for i in self.indexes if i.get("column_names") == [column] and i.get("name")]

    def unique_names(self, column: str) -> list[str]:
        """Unique constraints on exactly this column."""
        found = [u["name"] for u in self.uniques if u.get("column_names") == [column] and u.get("name")]
        found += [
            i["name"]
            for i in self.indexes
            if i.get("unique") and i.get("column_names") == [column] and i.get("name")
        ]
        return sorted(set(found))

    def foreign_key(self, column: str) -> dict[str, Any] | None:
        """The foreign key on this column, if any."""
        return next((fk for fk in self.foreign_keys if fk.get("constrained_columns") == [column]), None)


class Live:
    """Reads the live schema once per table, and counts rows for the plan's risk notes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.inspector = inspect(conn)
        self.names = set(self.inspector.get_table_names())
        self._tables: dict[str, LiveTable] = {}
        self._counts: dict[str, int] = {}

    def has(self, name: str) -> bool:
        """True when the table exists."""
        return name in self.names

    def renamed(self, old: str, new: str) -> None:
        """Follow a table renamed by an earlier step of the plan."""
        self.names.discard(old)
        self.names.add(new)
        self._tables.pop(old, None)
        self._counts.pop(old, None)

    def table(self, name: str) -> LiveTable:
        """The reflected facts of an existing table."""
        if name not in self._tables:
            get = self.inspector
            self._tables[name] = LiveTable(
                name,
                {c["name"]: dict(c) for c in get.get_columns(name)},
                [dict(i) for i in get.get_indexes(name)],
                [dict(u) for u in get.get_unique_constraints(name)],
                [dict(f) for f in get.get_foreign_keys(name)],
            )
        return self._tables[name]

    def rows(self, name: str) -> int:
        """How many rows the table holds."""
        if name not in self._counts:
            stmt = select(func.count()).select_from(self.reflect(name))
            self._counts[name] = int(self.conn.execute(stmt).scalar_one())
        return self._counts[name]

    def reflect(self, name: str) -> Table:
        """A lightweight Table for queries (columns only, no constraints)."""
        facts = self.table(name)
        return Table(name, MetaData(), *(Column(c, info["type"]) for c, info in facts.columns.items()))

    def where(self, name: str, condition: Callable[[Table], Any]) -> tuple[int, list[Any]]:
        """How many rows match, and the ids of the first few."""
        table = self.reflect(name)
        test = condition(table)
        count = int(self.conn.execute(select(func.count()).select_from(table).where(test)).scalar_one())
        ids = list(
            self.conn.execute(select(table.c.id).where(test).order_by(table.c.id).limit(EXAMPLES)).scalars()
        )
        return count, ids

    def values(self, name: str, column: str) -> Iterator[tuple[Any, Any]]:
        """`(id, value)` of every row where the column is not null, in id order."""
        table = self.reflect(name)
        stmt = select(table.c.id, table.c[column]).where(table.c[column].is_not(None)).order_by(table.c.id)
        for row in self.conn.execute(stmt):
            yield row[0], row[1]

    def duplicates(self, name: str, column: str) -> tuple[int, list[Any]]:
        """How many values repeat, and a few of them."""
        table = self.reflect(name)
        col = table.c[column]
        grouped = (select(col).where(col.is_not(None)).group_by(col).having(func.count() > 1)).subquery()
        count = int(self.conn.execute(select(func.count()).select_from(grouped)).scalar_one())
        examples = list(self.conn.execute(select(grouped.c[column]).limit(EXAMPLES)).scalars())
        return count, examples


def examples(ids: list[Any], total: int) -> str:
    """`ids 3, 17, …` for a risk note."""
    shown = ", ".join(str(i) for i in ids)
    return f"ids {shown}{', …' if total > len(ids) else ''}"
