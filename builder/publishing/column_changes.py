"""The changes of one column in a publish: add it, or compare it with its live column.

A type change converts every value; a narrower max_length, removed options, a new
`required` or `unique` are checked against the rows; nullability, unique, index and the
foreign key of a link follow the target. Mixed into `Planner` (builder/publishing/diff.py),
whose state (connection, live tables, new definition, backup, steps) it uses.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Table

from builder.publishing import data, ddl
from builder.publishing.backup import Backup
from builder.publishing.convert import convert, convertible_kinds
from builder.publishing.inspect import Live, LiveTable, examples
from builder.publishing.steps import Step
from runtime.model import App
from runtime.records.values import SQLITE_EXACT_DIGITS, converter_for

TEXT_LIKE = {"text", "email", "phone", "url"}


class ColumnChanges:
    """The steps that add a column or bring a live column in line with its field."""

    conn: Connection
    live: Live
    new: App
    backup: Backup
    steps: list[Step]
    links: list[Step]  # the foreign keys of links, added once every table exists
    recompute: dict[str, set[str]]

    def _add_link_key(self, table: Table, column: Column[Any]) -> None:
        """A step, after every table step, that adds the foreign key of a link column."""
        wanted = next(iter(column.foreign_keys))
        target, ondelete = wanted.column.table.name, wanted.ondelete
        behaviour = (ondelete or "no action").lower()
        self.links.append(
            Step(
                table.name,
                f"add foreign key on {column.name}: it references {target}, on delete {behaviour}",
            ).ddl(ddl.create_foreign_key(table.name, column.name, target, ondelete))
        )

    # -- adding a column -----------------------------------------------------------

    def _add(self, target: Table, live_name: str, spec: Any) -> None:
        name = target.name
        column = target.c[spec.key]
        rows = self.live.rows(live_name) if not column.nullable else 0  # only a required field needs it
        step = Step(name, f"add column {spec.key} ({column.type.compile(self.conn.dialect)})")
        if spec.renamed_from:
            step.words += f"; renamed_from {spec.renamed_from} names no column, so it starts empty"
        step.ddl(ddl.add_column(name, column, with_index=False))
        required = not column.nullable
        default = _literal_default(spec)
        if required and rows and default is None and spec.formula is None:
            step.refuse(
                f"field {spec.key} is required but {rows} existing row(s) have no value; "
                "give it a default, or publish it optional first and fill it in"
            )
        elif required and rows > 1 and default is not None and column.unique:
            step.refuse(_repeated_default(spec.key, rows))
        elif required and rows and default is not None:
            step.words += f", filled with its default in {rows} row(s)"
            step.data(
                data.fill(name, spec.key, _stored_default(self.new, spec)),
                f"fill {spec.key} with {default!r}",
            )
        self.steps.append(step)
        if spec.formula is not None:
            self.recompute.setdefault(name, set()).add(spec.key)
        self._constraints(step, target, None, column, required and rows > 0 and spec.formula is not None)

    def _constraints(
        self,
        step: Step,
        target: Table,
        live: LiveTable | None,
        column: Column[Any],
        defer_not_null: bool = False,
        source: str | None = None,
    ) -> None:
        """Bring nullability, unique, index and foreign key of a column in line with the target.

        `source` is the column's name in the live table when this publish renames it.
        """
        name, key = target.name, column.name
        was = source or key
        info = live.columns.get(was, {}) if live is not None else {"nullable": True}
        if not column.nullable and info.get("nullable", True) and not defer_not_null:
            step.ddl(ddl.alter_column(name, key, nullable=False))
        elif column.nullable and not info.get("nullable", True):
            step.ddl(ddl.alter_column(name, key, nullable=True))
        has_unique = bool(live.unique_names(was)) if live is not None else False
        if column.unique and not has_unique:
            step.ddl(ddl.create_unique(name, key))
        elif not column.unique and has_unique and live is not None:
            step.ddl(data.drop_unique_ddl(name, live, was))
        plain = [
            n
            for n in (live.index_names(was) if live else [])
            if n not in (live.unique_names(was) if live else [])
        ]
        if column.index and not plain:
            step.ddl(ddl.create_index(name, key))
        elif not column.index and plain:
            step.ddl(ddl.drop_indexes(name, plain))
        self._foreign_key(step, target, live, column, was)

    def _foreign_key(
        self, step: Step, target: Table, live: LiveTable | None, column: Column[Any], was: str
    ) -> None:
        name, key = target.name, column.name
        wanted = next(iter(column.foreign_keys), None)
        present = live.foreign_key(was) if live is not None else None
        want = (wanted.column.table.name, (wanted.ondelete or "").upper()) if wanted else None
        have = (
            (present["referred_table"], (present.get("options", {}).get("ondelete") or "").upper())
            if present
            else None
        )
        if want == have or (
            want and have and want[0] == have[0] and {want[1], have[1]} <= {"", "RESTRICT", "NO ACTION"}
        ):
            return
        if present is not None and present.get("name"):
            step.ddl(ddl.drop_constraint(name, present["name"], "foreignkey"))
        if wanted is None:
            return
        if wanted.constraint is not None and wanted.constraint.use_alter:
            self._add_link_key(target, column)  # its target may be created or renamed later in the plan
        else:
            target_table, ondelete = wanted.column.table.name, wanted.ondelete
            step.ddl(ddl.create_foreign_key(name, key, target_table, ondelete))

    # -- changes of one field ------------------------------------------------------

    def _compare(
        self, target: Table, live_name: str, live: LiveTable, source: str, old: Any, new: Any
    ) -> None:
        name, key = target.name, new.key
        column = target.c[key]
        step = Step(name, f"change column {key}")
        if old is not None and _retyped(old, new):
            self._retype(step, live_name, source, old, new, column)
        else:
            if old is not None:
                self._narrow(step, live_name, source, old, new, column)
                self._options(step, live_name, source, old, new)
            self._nullability(step, live_name, source, new, column, live)
            self._unique(step, live_name, source, column, live)
            self._constraints(step, target, live, column, source=source)
        if old is not None and (old.formula != new.formula or (new.formula and _retyped(old, new))):
            self.recompute.setdefault(name, set()).add(key)
        if step.actions or step.refused:
            self.steps.append(step)

    def _retype(
        self, step: Step, live_name: str, source: str, old: Any, new: Any, column: Column[Any]
    ) -> None:
        """Convert every value with the new field's own input rules, through a new column; the
        converted values must also meet the new field's `required` and `unique`."""
        step.words = f"change the type of {new.key} from {_describe(old)} to {_describe(new)}"
        if not convertible_kinds(old.type, new.type):
            step.refuse(f"a {old.type} field cannot become a {new.type} field")
            return
        exact = SQLITE_EXACT_DIGITS if self.conn.dialect.name == "sqlite" else None
        converter = converter_for(self.new, new, exact)
        converted: list[tuple[Any, Any]] = []
        failed: list[tuple[Any, str]] = []
        for record_id, value in self.live.values(live_name, source):
            ok, result = convert(value, new.type, converter)
            (converted if ok else failed).append((record_id, result))
        required, default = not column.nullable, _literal_default(new)
        if failed:
            ids = examples([i for i, _ in failed[:5]], len(failed))
            step.warn(f"{len(failed)} row(s) hold values that do not convert ({ids}): {failed[0][1]}")
            if required and default is None:
                step.refuse(
                    f"the type change would lose those values, and {new.key} is required "
                    "without a default to put in their place"
                )
            else:
                step.refuse("the type change would lose those values", coercible=True)
        empty = 0
        if required:
            empty, empty_ids = self.live.where(live_name, lambda t: t.c[source].is_(None))
            if empty and default is None:
                step.warn(f"{empty} row(s) have no value ({examples(empty_ids, empty)})")
                step.refuse(
                    f"{new.key} is required: give it a default for the {empty} row(s) without a value"
                )
        repeated: list[Any] = []
        if column.unique:
            held: set[Any] = set()
            for record_id, value in converted:
                if value in held:
                    repeated.append(record_id)
                held.add(value)
            if repeated:
                ids = examples(repeated[:5], len(repeated))
                step.warn(
                    f"{len(repeated)} row(s) would repeat a value an earlier row holds once converted ({ids})"
                )
                step.refuse("the field is unique, and converted values repeat", coercible=not required)
            filled = empty + len(failed)
            stored = _stored_default(self.new, new) if required and default is not None else None
            if stored is not None and (filled > 1 or (filled and stored in held)):
                step.refuse(_repeated_default(new.key, filled))
        step.actions.extend(
            data.retype_actions(step.table, new.key, column, new.type, converter, self.backup)
        )
        if repeated:
            step.data(
                data.keep_first(step.table, new.key, self.backup),
                "back up, then clear the converted value in every row but the first that holds it",
            )
        if required and default is not None and (empty or failed):
            step.data(
                data.fill(step.table, new.key, _stored_default(self.new, new)),
                f"fill the rows left without a value with the default {default!r}",
            )
        self._constraints(step, column.table, None, column)

    def _narrow(
        self, step: Step, live_name: str, source: str, old: Any, new: Any, column: Column[Any]
    ) -> None:
        old_len, new_len = getattr(old, "max_length", None), getattr(new, "max_length", None)
        if old.type not in TEXT_LIKE or old_len == new_len or new_len is None:
            return
        if old_len is not None and new_len < old_len:
            count, ids = self.live.where(live_name, lambda t: _length(self.conn, t.c[source]) > new_len)
            if count:
                step.warn(
                    f"{count} row(s) have values longer than {new_len} characters ({examples(ids, count)})"
                )
                step.refuse("narrowing max_length would cut those values", coercible=True)
                step.data(
                    data.truncate(step.table, new.key, new_len, self.backup),
                    f"back up, then cut {count} value(s) to {new_len} characters",
                )
        step.words += f": max_length {old_len} → {new_len}"
        step.ddl(ddl.alter_column(step.table, new.key, type_=column.type))

    def _options(self, step: Step, live_name: str, source: str, old: Any, new: Any) -> None:
        if old.type not in ("select", "multi_select") or new.type != old.type:
            return
        removed = set(old.option_keys()) - set(new.option_keys())
        if not removed:
            return
        if new.type == "select":
            count, ids = self.live.where(live_name, lambda t: t.c[source].in_(sorted(removed)))
        else:
            hits = [i for i, v in self.live.values(live_name, source) if set(v or []) & removed]
            count, ids = len(hits), hits[:5]
        step.words += f": options {sorted(removed)} removed"
        if count:
            step.warn(f"{count} row(s) still use the removed option(s) ({examples(ids, count)})")
            default = _literal_default(new)
            if new.required and default is None:  # a row left without an option breaks NOT NULL
                step.refuse(
                    "removing options that rows use would lose those values, and "
                    f"{new.key} is required without a default to put in their place"
                )
                return
            step.refuse("removing options that rows use would lose those values", coercible=True)
            instead = _stored_default(self.new, new) if new.required else None
            step.data(
                data.clear_options(step.table, new.key, new.type, removed, self.backup, instead),
                f"back up, then clear the removed options in {count} row(s)"
                + (f" (the default {default!r} where none is left)" if instead is not None else ""),
            )

    def _nullability(
        self, step: Step, live_name: str, source: str, new: Any, column: Column[Any], live: LiveTable
    ) -> None:
        if column.nullable or not live.columns[source].get("nullable", True):
            return
        count, ids = self.live.where(live_name, lambda t: t.c[source].is_(None))
        step.words += ": now required"
        if not count:
            return
        default = _literal_default(new)
        if default is None:
            step.warn(f"{count} row(s) have no value ({examples(ids, count)})")
            step.refuse(
                f"{new.key} cannot become required while {count} row(s) have no value; give it a default"
            )
            return
        if column.unique:
            stored = _stored_default(self.new, new)
            if count > 1 or self.live.where(live_name, lambda t: t.c[source] == stored)[0]:
                step.refuse(_repeated_default(new.key, count))
                return
        step.data(
            data.fill(step.table, new.key, _stored_default(self.new, new)),
            f"fill {count} empty row(s) with the default {default!r}",
        )

    def _unique(self, step: Step, live_name: str, source: str, column: Column[Any], live: LiveTable) -> None:
        if not column.unique or live.unique_names(source):
            return
        count, values = self.live.duplicates(live_name, source)
        step.words += ": now unique"
        if count:
            step.warn(f"{count} value(s) are held by several rows (e.g. {', '.join(map(str, values))})")
            if not column.nullable:  # clearing the repeats would leave a required field empty
                step.refuse(
                    f"adding unique needs every value to be held once, and {column.name} is required, "
                    "so the repeats cannot be cleared"
                )
                return
            step.refuse("adding unique needs every value to be held once", coercible=True)
            step.data(
                data.keep_first(step.table, column.name, self.backup),
                "back up, then clear the value in every row but the first that holds it",
            )


def _repeated_default(key: str, rows: int) -> str:
    return (
        f"{key} is unique, so its default cannot fill {rows} row(s) that have no value; "
        "publish it optional first and fill the rows in"
    )


def _retyped(old: Any, new: Any) -> bool:
    if old.type != new.type:
        return True
    if new.type == "decimal":
        return bool((old.precision, old.scale) != (new.precision, new.scale))
    return False


def _describe(spec: Any) -> str:
    if spec.type == "decimal":
        return f"decimal({spec.precision}, {spec.scale})"
    return str(spec.type)


def _literal_default(spec: Any) -> Any:
    default = getattr(spec, "default", None)
    if isinstance(default, str) and default.lstrip().startswith("="):
        return None
    return None if default in ("current_user", "current_user_department") else default


def _stored_default(app: App, spec: Any) -> Any:
    return converter_for(app, spec)(_literal_default(spec))


def _length(conn: Connection, column: Any) -> Any:
    from sqlalchemy import func

    return func.char_length(column) if conn.dialect.name == "postgresql" else func.length(column)
