"""Compare a published definition with a new one and the live tables: the steps of a publish.

Every step says what it does and to how many rows; a step that would lose data is
refused with counts and examples (some can be forced with --coerce, after a backup).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, Table

from builder.publishing import data, ddl
from builder.publishing.backup import Backup
from builder.publishing.column_changes import ColumnChanges
from builder.publishing.inspect import Live, LiveTable
from builder.publishing.steps import Step
from runtime.model import App, Form
from runtime.model.fields import TableField
from runtime.records.compiled import compile_app
from runtime.records.rollups import moved_rollups
from runtime.schema.tables import AppTables, build_tables, table_name

TOP_SYSTEM = {"id", "created_at", "updated_at", "created_by", "version"}
CHILD_SYSTEM = {"id", "parent_id", "position"}
DERIVED = re.compile(r"^_dup_\d+$")


class Planner(ColumnChanges):
    """Works out the steps that take the database from `old` to `new`."""

    def __init__(
        self,
        conn: Connection,
        old: App | None,
        new: App,
        history: Iterable[App],
        coerce: bool,
        backup: Backup,
    ) -> None:
        self.conn = conn
        self.live = Live(conn)
        self.old = old
        self.new = new
        self._history = iter(history)
        self._seen: list[App] = []
        self.coerce = coerce
        self.backup = backup
        self.tables: AppTables = build_tables(new)
        self.steps: list[Step] = []
        self.links: list[Step] = []  # the foreign keys of links, added once every table exists
        self.recompute: dict[str, set[str]] = {}

    def plan(self) -> list[Step]:
        """Every step, in the order it runs: the tables (created, renamed, changed) in the order
        of the definition, then the foreign keys of links, then formulas.

        Forms may link to each other, to themselves or in a ring, so no order of the tables
        lets each one be created after the tables it links to. A link's foreign key is
        therefore never part of a table step: it is added after every table exists.
        """
        for form in self.new.top_forms():
            self._form(form)
        self.steps.extend(self.links)
        self._retired_forms()
        self._recompute_steps()
        return self.steps

    # -- forms and tables ----------------------------------------------------------

    def _old_form(self, form: Form) -> Form | None:
        """The published form this one continues: the one it is renamed from in this publish,
        else the one of its key (a form renamed before keeps its `renamed_from`)."""
        if self.old is None:
            return None
        same = self.old.form(form.form)
        if form.renamed_from and form.renamed_from != form.form:
            fresh = same is None or same.renamed_from != form.renamed_from
            source = self.old.form(form.renamed_from)
            if source is not None and fresh and not self._kept(source.form):
                return source
        return same

    def _kept(self, form_key: str) -> bool:
        """True when a form of the new definition has this key and is not renamed from another."""
        kept = self.new.form(form_key)
        return kept is not None and kept.renamed_from in (None, form_key) and not kept.child

    def _form(self, form: Form) -> None:
        target = self.tables.of(form.form)
        old_form = self._old_form(form)
        name = target.table.name
        live_name = name
        if old_form is not None and old_form.form != form.form:
            old_name = table_name(self.new, old_form)
            if self.live.has(old_name) and self.live.has(name):
                if any(
                    (taken := self._old_form(other)) is not None and taken.form == form.form
                    for other in self.new.top_forms()
                    if other is not form
                ):
                    self.steps.append(
                        Step(name, f"rename table {old_name} to {name}").refuse(
                            f"the table {name} is renamed too in this publish: forms that take each "
                            "other's names are renamed one publish at a time"
                        )
                    )
                    return
                self._move_table_aside(name)  # a retired form's table, or a removed one's, holds the name
            if self.live.has(old_name) and not self.live.has(name):
                live_name = old_name
                self.steps.append(
                    Step(name, f"rename table {old_name} to {name}: the data stays").ddl(
                        ddl.rename_table(old_name, name)
                    )
                )
        if not self.live.has(live_name):
            self._create(target.table, f"create table {name} for form {form.form}")
        else:
            self._columns(target.table, live_name, old_form, form, TOP_SYSTEM)
            if old_form is not None and (rollups := moved_rollups(self.new, old_form, form)):
                self.recompute.setdefault(name, set()).update(rollups)
        for table_field in form.table_fields():
            self._child(form, old_form, table_field, live_name)

    def _child(self, form: Form, old_form: Form | None, field: TableField, parent_live: str) -> None:
        target = self.tables.of(form.form).children[field.key].table
        child_form = self.new.form(field.form)
        assert child_form is not None
        old_field = None
        if old_form is not None:
            old_field = old_form.field(field.key) or (
                old_form.field(field.renamed_from) if field.renamed_from else None
            )
        old_key = old_field.key if isinstance(old_field, TableField) else field.key
        live_name = f"{parent_live}__{old_key}"
        name = target.name
        if live_name != name and self.live.has(live_name) and self.live.has(name):
            self._move_table_aside(name)  # a retired table field's rows hold the name
        if live_name != name and self.live.has(live_name) and not self.live.has(name):
            self.steps.append(
                Step(name, f"rename child table {live_name} to {name}: the rows stay").ddl(
                    ddl.rename_table(live_name, name)
                )
            )
        elif not self.live.has(live_name):
            live_name = name
        if not self.live.has(live_name):
            self._create(target, f"create child table {name} for the rows of {form.form}.{field.key}")
            return
        old_child = self.old.form(old_field.form) if self.old and isinstance(old_field, TableField) else None
        self._columns(target, live_name, old_child, child_form, CHILD_SYSTEM)

    def _move_table_aside(self, name: str) -> None:
        """Rename a table that keeps no form (or table field), and its child tables, to a free
        `<app>___retired_<form>[__<field>]`, with their rows, so that a renamed one can take the name."""
        prefix = f"{self.new.app}__"
        aside = _free(f"{prefix}_retired_{name[len(prefix) :]}", self.live.names)
        children = sorted(n for n in self.live.names if n.startswith(f"{name}__"))
        rows = self.live.rows(name)
        step = Step(
            name,
            f"move the table {name} aside to {aside}: its {rows} row(s) are kept there, hidden; "
            "`formloom purge` drops it after a backup",
        )
        for old, new in [(name, aside), *((c, aside + c[len(name) :]) for c in children)]:
            step.ddl(ddl.rename_table(old, new))
            self.live.renamed(old, new)
        for new in [aside, *(aside + c[len(name) :] for c in children)]:
            step.ddl(ddl.follow_names(new))
        self.steps.append(step)

    def _create(self, table: Table, words: str) -> None:
        """CREATE TABLE without the foreign keys of its links, which follow as their own steps.

        SQLite cannot add a constraint to a table (ALTER TABLE … ADD CONSTRAINT does not
        exist there); it declares them in CREATE TABLE instead, which it allows before the
        table they point at exists, and checks every key before the publish commits.
        """
        self.steps.append(Step(table.name, words).ddl(ddl.create_table(table)))
        if not self.conn.dialect.supports_alter:
            return
        for column in table.columns:
            wanted = next(iter(column.foreign_keys), None)
            if wanted is not None and wanted.constraint is not None and wanted.constraint.use_alter:
                self._add_link_key(table, column)

    def _retired_forms(self) -> None:
        if self.old is None:
            return
        kept = {f.form for f in self.new.forms} | {f.renamed_from for f in self.new.forms if f.renamed_from}
        for form in self.old.top_forms():
            if form.form not in kept:
                name = table_name(self.old, form)
                rows = self.live.rows(name) if self.live.has(name) else 0
                self.steps.append(
                    Step(
                        name,
                        f"retire form {form.form}: table {name} and its {rows} row(s) "
                        "are kept, hidden; `formloom purge` drops them after a backup",
                    )
                )

    # -- columns -------------------------------------------------------------------

    def _columns(
        self, target: Table, live_name: str, old_form: Form | None, form: Form, system: set[str]
    ) -> None:
        live = self.live.table(live_name)
        name = target.name
        renaming = self._renames(live, old_form, form)  # new key -> the column it takes
        renamed = set(renaming.values())  # columns this publish renames away
        in_the_way = [key for key in renaming if key in live.columns and key not in renamed]
        for key in in_the_way:  # a column that keeps no field holds a key another column takes
            self._move_aside(name, live, old_form, key, renaming[key])
        self._rename_columns(name, live, renaming, set(in_the_way))  # a new field may take a freed key
        for spec in form.stored_fields():
            key = spec.key
            source = key
            if key in renaming:
                source = renaming[key]
            elif key in renamed:  # the old column moves to its new key: this field starts anew
                self._add(target, live_name, spec)
                continue
            old_spec = old_form.field(source) if old_form is not None else None
            restored = old_spec is None and source in live.columns
            if restored:
                old_spec = self._previous(form.form, source)
            if source not in live.columns:
                self._add(target, live_name, spec)
                continue
            if restored:
                self.steps.append(Step(name, f"restore retired column {key}: its kept values come back"))
            self._compare(target, live_name, live, source, old_spec, spec)
        self._retire_columns(target, live, old_form, renamed, system)
        self._derived(target, live, form)
        named = {c for i in [*live.indexes, *live.uniques] for c in i.get("column_names") or []}
        named |= {c for f in live.foreign_keys for c in f.get("constrained_columns") or []}
        if live_name != name or named & set(renaming.values()):
            self._follow_names(name)

    def _renames(self, live: LiveTable, old_form: Form | None, form: Form) -> dict[str, str]:
        """Fields this publish renames a column to: `renamed_from` names a live column, and
        either the key is free, or the column belongs to a published field whose values move
        (the key's own column then moves aside or along). A field renamed before keeps its
        `renamed_from`; that names no move."""
        renaming: dict[str, str] = {}
        for spec in form.stored_fields():
            source = spec.renamed_from
            if not source or source == spec.key or source not in live.columns:
                continue
            if source in renaming.values():
                continue  # two fields renamed from one column: the first takes it
            before = old_form.field(spec.key) if old_form is not None else None
            current = old_form is not None and old_form.field(source) is not None
            fresh = before is None or before.renamed_from != source
            if spec.key not in live.columns or (current and fresh):
                renaming[spec.key] = str(source)
        return renaming

    def _move_aside(self, name: str, live: LiveTable, old_form: Form | None, key: str, source: str) -> None:
        """Rename the column holding `key` to a free `_retired_<key>`, with its values, so that
        `source` can take the key; a hidden column keeps no index or constraint."""
        aside = _free(f"_retired_{key}", live.columns)
        retired = old_form is None or old_form.field(key) is None
        was = "retired column" if retired else "column of removed field"
        held = self._values_held(live.name, key)
        step = Step(
            name,
            f"move the {was} {key} aside to {aside}: its data ({held} row(s) with a value) is kept "
            f"there, hidden; `formloom purge` drops it after a backup. {source} takes the key {key}",
        )
        if live.unique_names(key):
            step.ddl(data.drop_unique_ddl(name, live, key))
        plain = [n for n in live.index_names(key) if n not in live.unique_names(key)]
        if plain:
            step.ddl(ddl.drop_indexes(name, plain))
        foreign = live.foreign_key(key)
        if foreign is not None and foreign.get("name"):
            step.ddl(ddl.drop_constraint(name, foreign["name"], "foreignkey"))
        nullable = {} if live.columns[key].get("nullable", True) else {"nullable": True}
        step.ddl(ddl.alter_column(name, key, new_column_name=aside, **nullable))
        self.steps.append(step)

    def _rename_columns(self, name: str, live: LiveTable, renaming: dict[str, str], aside: set[str]) -> None:
        """RENAME COLUMN for each rename, each after the one that frees its key; a cycle (two
        columns swapping keys) goes through a temporary name."""
        pending = dict(renaming)
        taken = set(live.columns) - aside
        while pending:
            ready = [key for key in pending if key not in taken]
            if not ready:  # every key is held by a column that moves too: a cycle
                key = next(iter(pending))
                source, temporary = pending[key], _free(f"_renaming_{pending[key]}", taken)
                self.steps.append(
                    Step(name, f"rename column {source} to {temporary} for a moment: columns swap keys").ddl(
                        ddl.alter_column(name, source, new_column_name=temporary)
                    )
                )
                taken = (taken - {source}) | {temporary}
                pending[key] = temporary
                continue
            for key in ready:
                source = pending.pop(key)
                self.steps.append(
                    Step(name, f"rename column {source} to {key}: the data stays").ddl(
                        ddl.alter_column(name, source, new_column_name=key)
                    )
                )
                taken = (taken - {source}) | {key}

    def _follow_names(self, name: str) -> None:
        """Indexes and constraints are named after their table and column; after a rename they
        follow, so that the old names are free for a table or field that takes them again."""
        self.steps.append(
            Step(name, f"rename the indexes and constraints of {name} after its table and columns").ddl(
                ddl.follow_names(name)
            )
        )

    def _previous(self, form_key: str, field_key: str) -> Any:
        for app in self._older():
            old_form = app.form(form_key)
            if old_form is not None and old_form.field(field_key) is not None:
                return old_form.field(field_key)
        return None

    def _older(self) -> Iterator[App]:
        """Published definitions, newest first, decoded one at a time as they are needed."""
        yield from self._seen
        for app in self._history:
            self._seen.append(app)
            yield app

    def _retire_columns(
        self, target: Table, live: LiveTable, old_form: Form | None, renamed: set[str], system: set[str]
    ) -> None:
        for column, info in live.columns.items():
            if column in target.c or column in system or column in renamed or DERIVED.match(column):
                continue
            if column == "_merged_into":
                continue
            newly = old_form is not None and old_form.field(column) is not None
            required = not info.get("nullable", True)
            if not newly and not required:
                continue  # retired before, and already out of the way of new records
            held = self._values_held(live.name, column) if newly else 0
            words = (
                f"retire column {column}: its data ({held} row(s) with a value) is kept, hidden from "
                "the API; it comes back if the field is added again"
                if newly
                else f"make the retired column {column} optional, so that new records can leave it empty"
            )
            step = Step(target.name, words)
            if required:
                step.ddl(ddl.alter_column(target.name, column, nullable=True))
            self.steps.append(step)

    def _values_held(self, name: str, column: str) -> int:
        """How many rows of a live table hold a value in `column`."""
        return self.live.where(name, lambda table: table.c[column].is_not(None))[0]

    def _derived(self, target: Table, live: LiveTable, form: Form) -> None:
        wanted = {c.name for c in target.columns if DERIVED.match(c.name)}
        present = {c for c in live.columns if DERIVED.match(c)}
        for column in sorted(wanted - present):
            self.steps.append(
                Step(target.name, f"add duplicate-key column {column}").ddl(
                    ddl.add_column(target.name, target.c[column], with_index=True)
                )
            )
        for column in sorted(present - wanted):
            self.steps.append(
                Step(target.name, f"drop duplicate-key column {column} (derived, rebuilt on demand)").ddl(
                    data.drop_column_ddl(target.name, live, column)
                )
            )
        if "_merged_into" in target.c and "_merged_into" not in live.columns:
            self.steps.append(
                Step(target.name, "add column _merged_into (where merged duplicates point)").ddl(
                    ddl.add_column(target.name, target.c["_merged_into"], with_index=True)
                )
            )
        if wanted != present or self._groups_changed(form):
            self.steps.append(
                Step(target.name, "recompute the duplicate keys of every row").data(
                    self._duplicate_keys(form.form),
                    f"recompute duplicate keys of {target.name}",
                )
            )

    def _duplicate_keys(self, form_key: str) -> Callable[[Connection], None]:
        def run(conn: Connection) -> None:
            data.recompute_duplicate_keys(conn, self._compiled_form(form_key))

        return run

    def _groups_changed(self, form: Form) -> bool:
        old_form = self._old_form(form)
        return old_form is not None and old_form.duplicates != form.duplicates

    # -- formulas -------------------------------------------------------------------

    def _compiled_form(self, form_key: str) -> Any:
        compiled = compile_app(self.new, self.tables, self.conn.dialect.name)
        return compiled.form(form_key)

    def _recompute_steps(self) -> None:
        if not self.recompute:
            return
        compiled = compile_app(self.new, self.tables, self.conn.dialect.name)
        for form in compiled.forms.values():
            names = [form.table.name, *(child.table.name for child in form.children.values())]
            changed = {name: self.recompute[name] for name in names if name in self.recompute}
            if changed:
                listed = ", ".join(f"{name}: {sorted(keys)}" for name, keys in changed.items())
                step = Step(form.table.name, f"compute formula(s) for every row ({listed})")
                action = data.recompute(form, changed, compiled)
                self.steps.append(step.data(action, f"UPDATE … SET {listed}"))


def _free(base: str, taken: Iterable[str]) -> str:
    """`base`, or `base_2`, `base_3`, … : the first name not taken."""
    names = set(taken)
    name, number = base, 1
    while name in names:
        number += 1
        name = f"{base}_{number}"
    return name
