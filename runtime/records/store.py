"""Low-level record storage used by the records service: checks, inserts, child rows, reads.

Nothing here looks at permissions; `runtime.records.service` decides who may call what.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError

from runtime.db import write
from runtime.records.autonumber import next_number
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.dedup import candidates, group_keys
from runtime.records.errors import Conflict, FieldProblem, InvalidRecord, NotFound, invalid
from runtime.records.evaluation import evaluate
from runtime.records.integrity import (
    LinkScope,
    attachment_problems,
    reference_problems,
    unique_problems,
    user_limit_problems,
)
from runtime.records.reader import Row, read_records, reader_for
from runtime.records.recompute import recompute_for_single
from runtime.records.writer import ChildInput, Prepared

Clock = Callable[[], dt.datetime]


class Store:
    """Writes and reads rows of compiled forms, inside the caller's transaction."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def one_record_if_single(self, conn: Connection, form: CompiledForm, adding: int) -> None:
        if not form.form.single:
            return
        stored = conn.execute(select(func.count()).select_from(form.table)).scalar_one()
        if stored + adding > 1:
            message = f"{form.key} is a single form: it holds one record; change that one instead"
            raise Conflict([FieldProblem(None, "single", message)])

    def after_write(self, conn: Connection, app: CompiledApp, form: CompiledForm) -> None:
        """A change to a single form (settings) recomputes the formulas that read it."""
        if form.form.single:
            recompute_for_single(conn, app, form.key, self.clock())

    def recompute(self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> None:
        """Re-run formulas and duplicate keys of a stored record whose related rows changed."""
        stored = self.stored_row(conn, form, record_id)
        item = Prepared(record_id=record_id)
        problems = evaluate(conn, app, form, [("", item)], {record_id: stored})
        if problems:
            raise InvalidRecord(problems)
        if form.form.duplicates:
            item.values.update(group_keys(form, {**stored, **item.values}))
        values = {**item.values, "updated_at": self.clock(), "version": int(stored["version"]) + 1}
        conn.execute(update(form.table).where(form.table.c.id == record_id).values(**values))

    def dedupe(
        self,
        conn: Connection,
        form: CompiledForm,
        items: list[tuple[str, Prepared]],
        stored: dict[str, Any],
        allow_duplicate: bool,
        own_id: int | None = None,
        reveal: Callable[[list[int]], list[int]] = lambda ids: ids,
    ) -> None:
        """Store each record's duplicate keys; refuse matches (409) unless allowed.

        `reveal` keeps the candidate ids the caller may see; a match outside the caller's
        scope is still refused, without its id.
        """
        if not form.form.duplicates:
            return
        problems: list[FieldProblem] = []
        earlier: dict[str, int] = {}
        for index, (prefix, item) in enumerate(items):
            keys = group_keys(form, {**stored, **item.values})
            item.values.update(keys)
            if allow_duplicate:
                continue
            found = candidates(conn, form, keys, exclude=own_id)
            in_request = sorted({earlier[k] for k in keys.values() if k in earlier})
            earlier.update({k: index for k in keys.values() if k is not None})
            if found or in_request:
                shown = reveal(found)
                if in_request and not found:
                    where = f"request items {in_request}"
                elif shown:
                    where = f"{form.key} {shown}"
                else:
                    where = f"a {form.key} record you cannot see"
                message = f"possible duplicate of {where}; send allow_duplicate=true to save it anyway"
                problems.append(FieldProblem(prefix.rstrip(".") or None, "duplicate", message, tuple(shown)))
        if problems:
            raise Conflict(problems)

    def writing(self) -> Any:
        return _IntegrityGuard(write(self.engine))

    def check(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        items: list[tuple[str, Prepared]],
        own_id: int | None = None,
        problems: list[FieldProblem] | None = None,
        link_scope: LinkScope | None = None,
    ) -> None:
        """Raise every problem: those found already, plus references and uniqueness.

        `link_scope` limits links to the records the writer may read (see `reference_problems`).
        """
        missing = reference_problems(conn, app, form, items, link_scope)
        unknown = {p.field for p in missing}  # a user who does not exist is not also ineligible,
        # and a link to a missing or unreadable record gets no verdict on its filter
        problems = [p for p in problems or [] if not (p.code == "link_filter" and p.field in unknown)]
        problems.extend(missing)
        problems.extend(p for p in user_limit_problems(conn, form, items, own_id) if p.field not in unknown)
        problems.extend(attachment_problems(conn, app, form, items))
        problems.extend(unique_problems(conn, form, items, own_id))
        for key, child in form.children.items():
            rows = [
                (f"{prefix}{key}[{i}].", Prepared(values=row.values))
                for prefix, item in items
                for i, row in enumerate(item.children.get(key, []))
            ]
            problems.extend(unique_problems(conn, child, rows, own_id))
        if problems:
            raise InvalidRecord(_most_telling(problems))

    def insert(
        self, conn: Connection, app: CompiledApp, form: CompiledForm, item: Prepared, user_id: int | None
    ) -> int:
        now = self.clock()
        today = now.astimezone(app.app.zone()).date()
        values = dict(item.values)
        for key, field in form.fields.items():
            if field.type == "auto_number":
                values[key] = next_number(conn, app.app.app, form.key, key, field.spec.pattern, today)
        values.update(created_at=now, updated_at=now, created_by=user_id, version=1)
        table = form.table
        record_id = int(conn.execute(insert(table).values(**values).returning(table.c.id)).scalar_one())
        for key, rows in item.children.items():
            self.replace_children(conn, form.children[key], record_id, rows, fresh=True)
        return record_id

    def replace_children(
        self,
        conn: Connection,
        child: CompiledForm,
        parent_id: int,
        rows: list[ChildInput],
        fresh: bool = False,
    ) -> None:
        """Make the parent's rows exactly `rows`; a `fresh` parent has none yet (nothing to read)."""
        table = child.table
        existing: set[int] = set()
        if not fresh:
            existing = set(conn.execute(select(table.c.id).where(table.c.parent_id == parent_id)).scalars())
        unknown = [r.id for r in rows if r.id is not None and r.id not in existing]
        if unknown:
            raise invalid(None, "not_found", f"rows {unknown[:5]} are not rows of this record")
        kept = {r.id for r in rows if r.id is not None}
        gone = existing - kept
        if gone:
            conn.execute(delete(table).where(table.c.id.in_(gone)))
        new_rows = []
        for position, row in enumerate(rows):
            if row.id is None:
                new_rows.append(
                    {**_all_columns(child, row.values), "parent_id": parent_id, "position": position}
                )
            else:
                conn.execute(
                    update(table).where(table.c.id == row.id).values(**row.values, position=position)
                )
        if new_rows:
            conn.execute(insert(table), new_rows)

    def stored_row(
        self, conn: Connection, form: CompiledForm, record_id: int, *, lock: bool = False
    ) -> dict[str, Any]:
        """The record's row as stored; `lock` holds it until the transaction ends (PostgreSQL)."""
        stmt = select(form.table).where(form.table.c.id == record_id)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFound(form.key, record_id)
        return dict(row)

    def current_version(self, conn: Connection, form: CompiledForm, record_id: int) -> int:
        stmt = select(form.table.c.version).where(form.table.c.id == record_id)
        version = conn.execute(stmt).scalar_one_or_none()
        if version is None:
            raise NotFound(form.key, record_id)
        return int(version)

    def read_one(self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> Row:
        records = self.read_many(conn, app, form, [record_id])
        if not records:
            raise NotFound(form.key, record_id)
        return records[0]

    def read_many(self, conn: Connection, app: CompiledApp, form: CompiledForm, ids: list[int]) -> list[Row]:
        reader = reader_for(app, form)
        stmt = reader.select().where(form.table.c.id.in_(ids)).order_by(form.table.c.id)
        by_id = {r["id"]: r for r in read_records(conn, app, form, stmt)}
        return [by_id[i] for i in ids if i in by_id]


@contextmanager
def computing(has_where: bool) -> Iterator[None]:
    """A `where` condition the database cannot compute (an overflow, say) is the caller's 422."""
    try:
        yield
    except DataError as exc:
        if not has_where:
            raise
        reason = str(exc.orig).splitlines()[0] if exc.orig else "invalid value"
        raise invalid("query.where", "expression", f"the database could not compute it: {reason}") from exc


def expect_version(current: int, expected: int | None) -> None:
    if expected is not None and current != expected:
        message = f"the record is at version {current}, not {expected}"
        raise Conflict([FieldProblem(None, "version_conflict", message)])


def _most_telling(problems: list[FieldProblem]) -> list[FieldProblem]:
    """A field whose value was refused does not also fail the rules that read it."""
    refused = {p.field for p in problems if p.code not in ("rule", "required")}
    broken_rules = {p.message for p in problems if p.code == "rule" and p.field in refused}
    return [
        p
        for p in problems
        if not (p.code == "required" and p.field in refused)
        and not (p.code == "rule" and p.message in broken_rules)
    ]


def _all_columns(form: CompiledForm, values: dict[str, Any]) -> dict[str, Any]:
    """Values for every column, so one executemany can insert rows that set different fields."""
    return {key: values.get(key) for key in form.fields}


class _IntegrityGuard:
    """Turns a constraint violation the checks could not foresee (a race) into a 422."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __enter__(self) -> Connection:
        return self.inner.__enter__()  # type: ignore[no-any-return]

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> Literal[False]:
        try:
            self.inner.__exit__(kind, exc, tb)
        except IntegrityError as error:
            raise invalid(None, "integrity", _constraint_message(error)) from error
        if isinstance(exc, IntegrityError):
            raise invalid(None, "integrity", _constraint_message(exc)) from exc
        return False


def _constraint_message(error: IntegrityError) -> str:
    text = str(error.orig).splitlines()[0] if error.orig else "constraint violated"
    return f"the change conflicts with stored data: {text[:200]}"
