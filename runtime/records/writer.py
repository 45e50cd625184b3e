"""Turn API input into column values: every field converted, defaults applied, all problems kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.model.fields import is_expression_default
from runtime.records.compiled import CompiledForm
from runtime.records.errors import FieldProblem
from runtime.records.values import ValueProblem

MAX_CHILD_ROWS = 1000


@dataclass
class ChildInput:
    """One child row of the input: its id when it already exists, and its values."""

    id: int | None
    values: dict[str, Any]


@dataclass
class Prepared:
    """A record's converted values, and the child rows of each table field given."""

    values: dict[str, Any] = field(default_factory=dict)
    children: dict[str, list[ChildInput]] = field(default_factory=dict)
    record_id: int | None = None


def prepare(
    form: CompiledForm,
    data: Any,
    *,
    creating: bool,
    path: str = "",
    user_id: int | None = None,
    restricted: dict[str, str] | None = None,
    read_only_too: bool = False,
    department_id: int | None = None,
) -> tuple[Prepared, list[FieldProblem]]:
    """Convert `data` for `form`. On create, defaults fill what is missing.

    `restricted` maps fields the caller may not write to the code to refuse them with
    (`table.field` for a field of a table field's rows); `read_only_too` lets the process
    engine set read-only fields. `user_id` and `department_id` (the writer's and their
    department) fill `current_user` and `current_user_department` defaults.
    """
    blocked = restricted or {}
    prepared = Prepared()
    problems: list[FieldProblem] = []
    if not isinstance(data, dict):
        return prepared, [FieldProblem(path or None, "type", "expected a JSON object")]
    writable = form.writable(read_only_too=read_only_too)
    for key, value in data.items():
        where = f"{path}{key}"
        if key in blocked:
            problems.append(_blocked(form, key, where, blocked[key]))
        elif key in form.children:
            rows, found = _prepare_children(
                form.children[key], value, f"{where}", user_id, _within(blocked, key), read_only_too
            )
            prepared.children[key] = rows
            problems.extend(found)
        elif key in writable:
            _convert(writable[key], value, where, prepared.values, problems)
        elif key in form.fields or key in form.children or key in ("id", "version"):
            problems.append(FieldProblem(where, "read_only", "cannot be set"))
        else:
            problems.append(FieldProblem(where, "unknown_field", f"{form.key} has no field '{key[:60]}'"))
    if creating:
        _apply_defaults(form, prepared, user_id, department_id)
    rejected = {p.field for p in problems}
    problems.extend(p for p in _missing(form, prepared, path, creating) if p.field not in rejected)
    return prepared, problems


def _within(blocked: dict[str, str], table: str) -> dict[str, str]:
    prefix = f"{table}."
    return {key[len(prefix) :]: code for key, code in blocked.items() if key.startswith(prefix)}


def _blocked(form: CompiledForm, key: str, where: str, code: str) -> FieldProblem:
    if code == "unknown_field":
        return FieldProblem(where, code, f"{form.key} has no field '{key[:60]}'")
    return FieldProblem(where, code, "cannot be set")


def _convert(field: Any, value: Any, where: str, into: dict[str, Any], problems: list[FieldProblem]) -> None:
    try:
        into[field.key] = field.convert(value)
    except ValueProblem as exc:
        problems.append(FieldProblem(where, exc.code, str(exc)))


def _prepare_children(
    child: CompiledForm,
    value: Any,
    where: str,
    user_id: int | None,
    restricted: dict[str, str],
    read_only_too: bool,
) -> tuple[list[ChildInput], list[FieldProblem]]:
    if not isinstance(value, list):
        return [], [FieldProblem(where, "type", "expected a list of rows")]
    if len(value) > MAX_CHILD_ROWS:
        return [], [FieldProblem(where, "max_rows", f"at most {MAX_CHILD_ROWS} rows")]
    rows: list[ChildInput] = []
    problems: list[FieldProblem] = []
    for index, item in enumerate(value):
        prefix = f"{where}[{index}]."
        row_id = None
        if isinstance(item, dict):
            item = dict(item)
            item.pop("position", None)
            raw_id = item.pop("id", None)
            if raw_id is not None:
                if isinstance(raw_id, bool) or not isinstance(raw_id, int) or raw_id < 1:
                    problems.append(FieldProblem(f"{prefix}id", "type", "must be a row id"))
                else:
                    row_id = raw_id
        creating = row_id is None  # a kept row changes only the fields it sends
        prepared, found = prepare(
            child,
            item,
            creating=creating,
            path=prefix,
            user_id=user_id,
            restricted=restricted,
            read_only_too=read_only_too,
        )
        rows.append(ChildInput(row_id, prepared.values))
        problems.extend(found)
    return rows, problems


def _apply_defaults(
    form: CompiledForm, prepared: Prepared, user_id: int | None, department_id: int | None = None
) -> None:
    for key, spec in form.fields.items():
        if key in prepared.values and prepared.values[key] is not None:
            continue
        default = getattr(spec.spec, "default", None)
        if default == "current_user":
            prepared.values[key] = user_id
        elif default == "current_user_department":
            prepared.values[key] = department_id
        elif default is not None and not is_expression_default(default):
            prepared.values[key] = spec.convert(default)


def computed(spec: Any) -> bool:
    """True when the value may come from an expression: a formula, an expression default or a fetch."""
    return (
        spec.formula is not None
        or is_expression_default(getattr(spec, "default", None))
        or getattr(spec, "fetch", None) is not None
    )


def _missing(form: CompiledForm, prepared: Prepared, path: str, creating: bool) -> list[FieldProblem]:
    problems = []
    for key, spec in form.fields.items():
        if not spec.spec.required or spec.type == "auto_number" or computed(spec.spec):
            continue
        given = key in prepared.values
        if (creating or given) and prepared.values.get(key) in (None, []):
            problems.append(FieldProblem(f"{path}{key}", "required", "is required"))
    for key in form.children:
        table_field = form.form.field(key)
        rows = prepared.children.get(key)
        if table_field is not None and table_field.required and (creating or rows is not None) and not rows:
            problems.append(FieldProblem(f"{path}{key}", "required", "needs at least one row"))
    return problems
