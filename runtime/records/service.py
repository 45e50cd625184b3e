"""The records service: list, get, create (one or many), update and delete records of any form.

Every write of form data goes through here, so validation, defaults, auto numbers,
reference and uniqueness checks always run. Reads nest child rows and return link
fields as `{id, display}` with a join, never a query per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
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
    attachment_problems,
    reference_problems,
    restricting_references,
    unique_problems,
)
from runtime.records.merge import apply_merge, parse_merge
from runtime.records.query import apply_list_query, filter_clause, parse_list_query
from runtime.records.reader import Row, read_records, reader_for
from runtime.records.recompute import recompute_for_single
from runtime.records.writer import ChildInput, Prepared, prepare
from runtime.schema.types import utcnow

MAX_BULK = 1000
Clock = Callable[[], dt.datetime]


class RecordsService:
    """Reads and writes records of the loaded apps."""

    def __init__(self, engine: Engine, apps: Iterable[CompiledApp], clock: Clock = utcnow) -> None:
        self.engine = engine
        self.apps = {a.app.app: a for a in apps}
        self.clock = clock

    def resolve(self, app_key: str, form_key: str) -> tuple[CompiledApp, CompiledForm]:
        """The compiled app and top-level form; NotFound when either is unknown."""
        app = self.apps.get(app_key)
        if app is None or form_key not in app.forms:
            raise NotFound("form", f"{app_key}/{form_key}")
        return app, app.forms[form_key]

    def list_page(self, app_key: str, form_key: str, params: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """A page of records matching the query-string filters, sorted, with `next_offset`."""
        app, form = self.resolve(app_key, form_key)
        query = parse_list_query(form, params)
        reader = reader_for(app, form)
        stmt = apply_list_query(form, reader, reader.select(), query, self.engine.dialect.name)
        with self.engine.connect() as conn, _computing(query.where is not None):
            records = read_records(conn, app, form, stmt)
            total = None
            if query.count:
                where = filter_clause(form, query, self.engine.dialect.name)
                counted = select(func.count()).select_from(form.table).where(where)
                total = conn.execute(counted).scalar_one()
        more = len(records) > query.limit
        page: dict[str, Any] = {
            "items": records[: query.limit],
            "limit": query.limit,
            "offset": query.offset,
            "next_offset": query.offset + query.limit if more else None,
        }
        if total is not None:
            page["total"] = total
        return page

    def get(self, app_key: str, form_key: str, record_id: int) -> Row:
        """One record with its child rows."""
        app, form = self.resolve(app_key, form_key)
        with self.engine.connect() as conn:
            return self._read_one(conn, app, form, record_id)

    def create(
        self,
        app_key: str,
        form_key: str,
        data: Any,
        user_id: int | None = None,
        *,
        allow_duplicate: bool = False,
    ) -> Row:
        """Validate and insert one record."""
        return self.create_many(
            app_key, form_key, [data], user_id, bulk=False, allow_duplicate=allow_duplicate
        )[0]

    def create_many(
        self,
        app_key: str,
        form_key: str,
        items: Any,
        user_id: int | None = None,
        *,
        bulk: bool = True,
        allow_duplicate: bool = False,
    ) -> list[Row]:
        """Insert all records or none; problems are reported as `[index].field`.

        A record matching a duplicate group of a stored record (or of another record in
        the same request) is refused with 409 and the candidate ids, unless `allow_duplicate`.
        """
        app, form = self.resolve(app_key, form_key)
        if not isinstance(items, list) or not 0 < len(items) <= MAX_BULK:
            raise invalid(None, "type", f"expected a list of 1 to {MAX_BULK} records")
        prepared: list[tuple[str, Prepared]] = []
        problems: list[FieldProblem] = []
        for index, data in enumerate(items):
            prefix = f"[{index}]." if bulk else ""
            item, found = prepare(form, data, creating=True, path=prefix, user_id=user_id)
            prepared.append((prefix, item))
            problems.extend(found)
        with self._writing() as conn:
            problems.extend(evaluate(conn, app, form, prepared))
            self._check(conn, app, form, prepared, problems=problems)
            self._dedupe(conn, form, prepared, {}, allow_duplicate)
            self._one_record_if_single(conn, form, len(prepared))
            ids = [self._insert(conn, app, form, item, user_id) for _, item in prepared]
            self._after_write(conn, app, form)
            return self._read_many(conn, app, form, ids)

    def update(
        self,
        app_key: str,
        form_key: str,
        record_id: int,
        data: Any,
        expected_version: int | None = None,
        user_id: int | None = None,
        *,
        allow_duplicate: bool = False,
    ) -> Row:
        """Change the given fields; with `expected_version`, refuse a stale write (409)."""
        app, form = self.resolve(app_key, form_key)
        item, problems = prepare(form, data, creating=False, user_id=user_id)
        with self._writing() as conn:
            stored = self._stored_row(conn, form, record_id)
            current = int(stored["version"])
            _expect_version(current, expected_version)
            item.record_id = record_id
            problems.extend(evaluate(conn, app, form, [("", item)], {record_id: stored}))
            self._check(conn, app, form, [("", item)], own_id=record_id, problems=problems)
            self._dedupe(conn, form, [("", item)], stored, allow_duplicate, own_id=record_id)
            values = {**item.values, "updated_at": self.clock(), "version": current + 1}
            table = form.table
            conn.execute(update(table).where(table.c.id == record_id).values(**values))
            for key, rows in item.children.items():
                self._replace_children(conn, form.children[key], record_id, rows)
            self._after_write(conn, app, form)
            return self._read_one(conn, app, form, record_id)

    def delete(
        self, app_key: str, form_key: str, record_id: int, expected_version: int | None = None
    ) -> None:
        """Delete a record and its child rows, unless restrict-links still point at it."""
        app, form = self.resolve(app_key, form_key)
        with self._writing() as conn:
            current = self._current_version(conn, form, record_id)
            _expect_version(current, expected_version)
            blocking = restricting_references(conn, app, form, record_id)
            if blocking:
                raise Conflict(blocking)
            conn.execute(delete(form.table).where(form.table.c.id == record_id))

    def duplicates_of(self, app_key: str, form_key: str, record_id: int) -> list[Row]:
        """Live records that match this record in some duplicate group."""
        app, form = self.resolve(app_key, form_key)
        with self.engine.connect() as conn:
            stored = self._stored_row(conn, form, record_id)
            if not form.form.duplicates:
                return []
            found = candidates(conn, form, group_keys(form, stored), exclude=record_id)
            return self._read_many(conn, app, form, found)

    def merge(self, app_key: str, form_key: str, record_id: int, body: Any) -> Row:
        """Merge other records into `record_id` (see runtime/records/merge.py)."""
        app, form = self.resolve(app_key, form_key)
        request = parse_merge(form, record_id, body)
        with self._writing() as conn:
            apply_merge(conn, app, form, request)
            self._recompute(conn, app, form, record_id)
            return self._read_one(conn, app, form, record_id)

    # -- internals -----------------------------------------------------------------

    def _one_record_if_single(self, conn: Connection, form: CompiledForm, adding: int) -> None:
        if not form.form.single:
            return
        stored = conn.execute(select(func.count()).select_from(form.table)).scalar_one()
        if stored + adding > 1:
            message = f"{form.key} is a single form: it holds one record; change that one instead"
            raise Conflict([FieldProblem(None, "single", message)])

    def _after_write(self, conn: Connection, app: CompiledApp, form: CompiledForm) -> None:
        """A change to a single form (settings) recomputes the formulas that read it."""
        if form.form.single:
            recompute_for_single(conn, app, form.key, self.clock())

    def _recompute(self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> None:
        """Re-run formulas and duplicate keys of a stored record whose related rows changed."""
        stored = self._stored_row(conn, form, record_id)
        item = Prepared(record_id=record_id)
        problems = evaluate(conn, app, form, [("", item)], {record_id: stored})
        if problems:
            raise InvalidRecord(problems)
        if form.form.duplicates:
            item.values.update(group_keys(form, {**stored, **item.values}))
        values = {**item.values, "updated_at": self.clock(), "version": int(stored["version"]) + 1}
        conn.execute(update(form.table).where(form.table.c.id == record_id).values(**values))

    def _dedupe(
        self,
        conn: Connection,
        form: CompiledForm,
        items: list[tuple[str, Prepared]],
        stored: dict[str, Any],
        allow_duplicate: bool,
        own_id: int | None = None,
    ) -> None:
        """Store each record's duplicate keys; refuse matches (409) unless allowed."""
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
                where = f"request items {in_request}" if in_request and not found else f"{form.key} {found}"
                message = f"possible duplicate of {where}; send allow_duplicate=true to save it anyway"
                problems.append(FieldProblem(prefix.rstrip(".") or None, "duplicate", message, tuple(found)))
        if problems:
            raise Conflict(problems)

    def _writing(self) -> Any:
        return _IntegrityGuard(write(self.engine))

    def _check(
        self,
        conn: Connection,
        app: CompiledApp,
        form: CompiledForm,
        items: list[tuple[str, Prepared]],
        own_id: int | None = None,
        problems: list[FieldProblem] | None = None,
    ) -> None:
        """Raise every problem: those found already, plus references and uniqueness."""
        problems = list(problems or [])
        problems.extend(reference_problems(conn, app, form, items))
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
            raise InvalidRecord(problems)

    def _insert(
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
            self._replace_children(conn, form.children[key], record_id, rows, fresh=True)
        return record_id

    def _replace_children(
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

    def _stored_row(self, conn: Connection, form: CompiledForm, record_id: int) -> dict[str, Any]:
        row = conn.execute(select(form.table).where(form.table.c.id == record_id)).mappings().first()
        if row is None:
            raise NotFound(form.key, record_id)
        return dict(row)

    def _current_version(self, conn: Connection, form: CompiledForm, record_id: int) -> int:
        stmt = select(form.table.c.version).where(form.table.c.id == record_id)
        version = conn.execute(stmt).scalar_one_or_none()
        if version is None:
            raise NotFound(form.key, record_id)
        return int(version)

    def _read_one(self, conn: Connection, app: CompiledApp, form: CompiledForm, record_id: int) -> Row:
        records = self._read_many(conn, app, form, [record_id])
        if not records:
            raise NotFound(form.key, record_id)
        return records[0]

    def _read_many(self, conn: Connection, app: CompiledApp, form: CompiledForm, ids: list[int]) -> list[Row]:
        reader = reader_for(app, form)
        stmt = reader.select().where(form.table.c.id.in_(ids)).order_by(form.table.c.id)
        by_id = {r["id"]: r for r in read_records(conn, app, form, stmt)}
        return [by_id[i] for i in ids if i in by_id]


@contextmanager
def _computing(has_where: bool) -> Iterator[None]:
    """A `where` condition the database cannot compute (an overflow, say) is the caller's 422."""
    try:
        yield
    except DataError as exc:
        if not has_where:
            raise
        reason = str(exc.orig).splitlines()[0] if exc.orig else "invalid value"
        raise invalid("query.where", "expression", f"the database could not compute it: {reason}") from exc


def _expect_version(current: int, expected: int | None) -> None:
    if expected is not None and current != expected:
        message = f"the record is at version {current}, not {expected}"
        raise Conflict([FieldProblem(None, "version_conflict", message)])


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
