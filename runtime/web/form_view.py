"""What the record form template draws: sections of inputs, each with its value and errors.

A `FormView` is built from a stored record (editing), from defaults (new), or from
what the user just submitted (a refused save is drawn again with the user's own
input and the server's errors beside each field). The live preview decides which
fields show and which are required when the page is first drawn; afterwards the
browser asks the server again as the user types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from runtime.model.fields import is_expression_default
from runtime.records.compiled import CompiledForm
from runtime.records.link_filters import filter_reads_record
from runtime.records.preview import Preview, RowPreview
from runtime.web.form_data import ROW_INPUT, fetched_input
from runtime.web.formats import display, input_time, spec_currency

COMPUTED = ("auto_number",)
REFERENCES = ("link", "user", "department")  # drawn as pickers, shown by their display name
Record = dict[str, Any]


@dataclass
class Input:
    """One field of the form as drawn."""

    key: str
    name: str
    label: str
    kind: str
    spec: Any
    value: Any = ""
    shown: str = ""  # formatted value of read-only and computed fields, or a link's display
    help: str = ""
    editable: bool = True
    computed: bool = False
    required: bool = False
    visible: bool = True
    errors: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    currency: str = ""
    rows: list[list[Input]] = field(default_factory=list)  # a table field's rows
    blank: list[Input] = field(default_factory=list)  # a new row of a table field
    fetched: str | None = None  # a fetched field: the value it last had from the server
    posts_form: bool = False  # a picker whose link filter reads the record being entered


@dataclass
class Section:
    """A titled block of inputs in one to four columns, shown under `tab` when it has one."""

    title: str
    columns: int
    inputs: list[Input]
    tab: str = ""


@dataclass
class FormView:
    """The whole form: its sections and the errors that belong to no field."""

    sections: list[Section]
    general_errors: list[str] = field(default_factory=list)

    @property
    def untabbed(self) -> list[Section]:
        """Sections shown above the tab bar."""
        return [s for s in self.sections if not s.tab]

    @property
    def tabs(self) -> list[tuple[str, list[Section]]]:
        """The tabs, in order of their first section, each with its sections."""
        return tabs_of(self.sections)


def tabs_of(sections: list[Any]) -> list[tuple[str, list[Any]]]:
    """Sections with a tab, grouped by it (first appearance decides the order)."""
    grouped: dict[str, list[Any]] = {}
    for section in sections:
        tab = section.tab if isinstance(section, Section) else section.get("tab", "")
        if tab:
            grouped.setdefault(tab, []).append(section)
    return list(grouped.items())


@dataclass
class Context:
    """What every input needs to know about the user and the app."""

    language: str
    currency: str
    zone: ZoneInfo
    hidden: frozenset[str]
    locked: set[str]  # fields this user may not write here
    child_hidden: dict[str, frozenset[str]] = field(default_factory=dict)  # by table field


def build_view(
    form: CompiledForm, state: Record, preview: Preview, ctx: Context, errors: dict[str, list[str]]
) -> FormView:
    """The form's sections with `state` (input-shaped values) and `errors` by input name."""
    view = FormView(sections=[])
    for title, columns, keys, tab in _sections(form, ctx):
        inputs = [field_input(form, key, state, preview.record, ctx, errors, preview) for key in keys]
        view.sections.append(Section(title, columns, inputs, tab))
    names = {i.name for s in view.sections for i in s.inputs} | {
        c.name for s in view.sections for i in s.inputs for row in i.rows for c in row
    }
    for name, found in errors.items():
        if name not in names and not ROW_INPUT.match(name):
            view.general_errors.extend(found if name == "" else [f"{name}: {m}" for m in found])
    return view


def state_of_record(form: CompiledForm, record: Record, zone: ZoneInfo) -> Record:
    """Input-shaped values of a stored record (as the API answers it)."""
    state: Record = {}
    for key, item in form.fields.items():
        value = record.get(key)
        if item.type in REFERENCES:
            state[key] = str(value["id"]) if isinstance(value, dict) else ""
            state[f"{key}._display"] = value.get("display", "") if isinstance(value, dict) else ""
        elif item.type == "attachment":
            state[key] = value
        elif item.type == "datetime":
            state[key] = input_time(value, zone)
        elif item.type in ("multi_select", "boolean"):
            state[key] = value
        elif item.type == "percent":
            state[key] = percent_input(value)
        else:
            state[key] = "" if value is None else str(value)
    for key, item in form.fields.items():
        if item.spec.fetch is not None:
            state[f"{key}._fetched"] = fetched_input(state.get(key))
    for key, child in form.children.items():
        rows = record.get(key) or []
        state[key] = [{**state_of_record(child, row, zone), "id": row.get("id")} for row in rows]
    return state


def state_of_defaults(
    form: CompiledForm, user: tuple[int, str] | None, department: tuple[int, str] | None = None
) -> Record:
    """Input-shaped literal defaults of a new record (expression defaults come from the preview).

    `user` and `department` are the id and name of the writer and of their department.
    """
    state: Record = {}
    for key, item in form.fields.items():
        default = getattr(item.spec, "default", None)
        if default is None or is_expression_default(default):
            continue
        if item.type in ("user", "department"):
            chosen = user if item.type == "user" else department
            if chosen is not None:
                state[key], state[f"{key}._display"] = str(chosen[0]), chosen[1]
        elif item.type in ("multi_select", "boolean"):
            state[key] = default
        elif item.type == "percent":
            state[key] = percent_input(default)
        else:
            state[key] = str(default)
    for key in form.children:
        state[key] = []
    return state


def percent_input(value: Any) -> str:
    """A stored fraction as the percentage people type (0.35 → "35")."""
    if value in (None, ""):
        return ""
    try:
        return format((Decimal(str(value)) * 100).normalize(), "f")
    except InvalidOperation:
        return str(value)


def state_of_form(form: CompiledForm, data: FormData) -> Record:
    """Input-shaped values of what the user submitted, kept exactly as typed."""
    state: Record = {}
    for key, item in form.fields.items():
        if item.type == "multi_select":
            state[key] = data.getlist(key)
        elif item.type == "boolean":
            state[key] = "true" in data.getlist(key)
        elif item.type == "attachment":
            continue
        else:
            state[key] = data.get(key, "")
            state[f"{key}._display"] = data.get(f"{key}._display", "")
        if f"{key}._fetched" in data:
            state[f"{key}._fetched"] = data.get(f"{key}._fetched")
    for key, child in form.children.items():
        rows: dict[str, Record] = {}
        for name, raw in data.multi_items():
            match = ROW_INPUT.match(name)
            if match and match.group(1) == key:
                row = rows.setdefault(match.group(2), {})
                column = match.group(3)
                kind = child.fields[column].type if column in child.fields else ""
                if kind == "multi_select":
                    row.setdefault(column, []).append(raw)
                elif kind == "boolean":
                    row[column] = raw == "true"
                else:
                    row[column] = raw
        for name, raw in data.multi_items():
            for marker in ("._display", "._fetched"):
                match = ROW_INPUT.match(name.removesuffix(marker)) if name.endswith(marker) else None
                if match and match.group(1) == key and match.group(2) in rows:
                    rows[match.group(2)][f"{match.group(3)}{marker}"] = raw
        state[key] = list(rows.values())
    return state


def spec_of(form: CompiledForm, key: str) -> Any:
    """The definition of a field of the form (table fields included)."""
    spec = form.form.field(key)
    if spec is None:
        raise KeyError(key)
    return spec


def _keys(form: CompiledForm) -> list[str]:
    """Every field of the form in definition order, table fields included."""
    return [f.key for f in form.form.fields]


def _sections(form: CompiledForm, ctx: Context) -> list[tuple[str, int, list[str], str]]:
    shown = [k for k in _keys(form) if k not in ctx.hidden]
    if not form.form.sections():  # related lists are shown on the record page only
        return [("", 2 if len(shown) > 6 else 1, shown, "")]
    placed: list[tuple[str, int, list[str], str]] = []
    seen: set[str] = set()
    for section in form.form.sections():
        keys = [k for k in section.fields if form.form.field(k) is not None and k not in ctx.hidden]
        seen.update(section.fields)
        tab = section.tab.text(ctx.language) if section.tab else ""
        if keys:
            placed.append((section.section.text(ctx.language), section.columns, keys, tab))
    rest = [k for k in shown if k not in seen]
    if rest:
        placed.append(("", 2, rest, ""))
    return placed


def field_input(
    form: CompiledForm,
    key: str,
    state: Record,
    row: RowPreview,
    ctx: Context,
    errors: dict[str, list[str]],
    preview: Preview | None,
    name: str | None = None,
) -> Input:
    spec = spec_of(form, key)
    kind = spec.type
    computed = spec.formula is not None or kind in COMPUTED
    item = Input(
        key=key,
        name=name or key,
        label=spec.title(ctx.language),
        kind=kind,
        spec=spec,
        help=spec.help.text(ctx.language) if spec.help else "",
        editable=not computed and not spec.read_only and key not in ctx.locked,
        computed=computed,
        required=key in row.required,
        visible=row.visible.get(key, True),
        errors=errors.get(name or key, []),
        currency=spec_currency(spec, ctx.currency) if kind == "money" else "",
    )
    if spec.fetch is not None and item.editable:
        item.fetched = str(state.get(f"{key}._fetched") or "")
    item.posts_form = kind == "link" and filter_reads_record(getattr(spec, "filter", None))
    value = row.values[key] if key in row.values and computed else state.get(key, "")
    item.value = [] if kind == "multi_select" and not value else value
    if kind in ("select", "multi_select"):
        item.options = [(o.key, o.label.text(ctx.language) if o.label else o.key) for o in spec.options]
    item.shown = _shown(spec, key, state, value, ctx)
    if kind == "table" and preview is not None:
        _table_rows(form, item, state, ctx, errors, preview)
    return item


def _shown(spec: Any, key: str, state: Record, value: Any, ctx: Context) -> str:
    if spec.type in REFERENCES:
        return str(state.get(f"{key}._display", ""))
    if spec.type in ("table", "attachment") or value in (None, ""):
        return ""
    return display(spec, value, ctx.language, ctx.currency, ctx.zone)


def _table_rows(
    form: CompiledForm,
    item: Input,
    state: Record,
    ctx: Context,
    errors: dict[str, list[str]],
    preview: Preview,
) -> None:
    child = form.children[item.key]
    hidden = ctx.child_hidden.get(item.key, frozenset())
    columns = [k for k in child.fields if k not in hidden]
    previews = preview.children.get(item.key, [])
    for index, row_state in enumerate(state.get(item.key) or []):
        row_preview = previews[index] if index < len(previews) else RowPreview()
        name = f"{item.key}[{index}]"
        cells = [
            field_input(child, k, row_state, row_preview, _child_ctx(ctx), errors, None, f"{name}.{k}")
            for k in columns
        ]
        cells.append(
            Input(
                key="id",
                name=f"{name}.id",
                label="",
                kind="row_id",
                spec=None,
                value=row_state.get("id") or "",
            )
        )
        item.rows.append(cells)
    blank = RowPreview(required=[k for k in columns if child.fields[k].spec.required])
    defaults = state_of_defaults(child, None)
    item.blank = [
        field_input(child, k, defaults, blank, _child_ctx(ctx), {}, None, f"{item.key}[__row__].{k}")
        for k in columns
    ]


def _child_ctx(ctx: Context) -> Context:
    return Context(ctx.language, ctx.currency, ctx.zone, frozenset(), set())
