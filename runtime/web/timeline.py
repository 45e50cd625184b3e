"""The record page's timeline: history entries told in people's terms.

Field changes show labels and formatted values; child rows show which row and which
column changed ("Lines row 2 · Discount: 45% → 70%"), and the rows added and removed
with their values. A row's number is its position in the record as it is now, or,
for a row that is gone, its position among the rows the change removed. A transition
shows the states' option labels and the action's label; approval entries show the
approval's and the step's labels, and the people they name (a nudge, an added
approver, a delegation). Ids and internal keys stay out of sight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.model import App
from runtime.records.compiled import CompiledForm
from runtime.web.form_view import Context
from runtime.web.formats import display, local_time, option_label
from runtime.web.i18n import translator

Record = dict[str, Any]
ROW_KEYS = {"id", "position", "parent_id"}
PEOPLE_ACTIONS = ("nudge", "add_approver", "delegate", "transfer")
MAX_ROW_VALUES = 6  # values shown for a row added or removed


@dataclass
class Change:
    """One line of an entry: a label, the old and the new text; `kind` is change, added or removed."""

    label: str
    old: str
    new: str
    kind: str = "change"


def timeline(
    app: App,
    form: CompiledForm,
    items: list[Record],
    ctx: Context,
    record: Record | None = None,
    names: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """History entries, newest first; `record` numbers child rows, `names` names the users entries name."""
    people = names or {}
    entries = []
    for item in reversed(items):
        given = item.get("changes")
        changes: Record = given if isinstance(given, dict) else {}
        action = item["action"]
        entry: dict[str, Any] = {
            "action": action,
            "user": (item.get("user") or {}).get("display", ""),
            "at": local_time(item["at"], ctx.zone),
            "comment": changes.get("comment"),
            "summary": "",
            "fields": [],
        }
        if action in ("create", "update"):
            entry["fields"] = _changed_fields(form, changes, ctx, record or {})
        elif action == "transition":
            entry["summary"] = _transition(app, form, changes, ctx.language)
        elif action == "reapproval":
            entry["summary"] = _reapproval(form, changes, ctx)
        elif action in PEOPLE_ACTIONS:
            entry["summary"] = _people(app, action, changes, people, ctx.language)
        elif action in ("make", "made_from"):
            entry["summary"] = _made(app, form, action, changes, ctx.language)
        elif "approval" in changes:
            entry["summary"] = _approval(app, changes, ctx.language)
        entries.append(entry)
    return entries


def user_ids(items: list[Record]) -> set[int]:
    """The users history entries name (the people nudged, added, delegated or transferred to)."""
    found: set[int] = set()
    for item in items:
        changes = item.get("changes")
        if item.get("action") not in PEOPLE_ACTIONS or not isinstance(changes, dict):
            continue
        to = changes.get("to")
        for value in to if isinstance(to, list) else [to]:
            if isinstance(value, int) and not isinstance(value, bool):
                found.add(value)
    return found


def _transition(app: App, form: CompiledForm, changes: Record, language: str) -> str:
    workflow = app.workflow_of(form.key)
    if workflow is None:
        return f"{changes.get('from')} → {changes.get('to')}"
    spec = form.form.field(workflow.field)
    states = [option_label(spec, changes.get(k), language) for k in ("from", "to")]
    action = next((t for t in workflow.transitions if t.action == changes.get("action")), None)
    label = action.label.text(language) if action is not None and action.label else ""
    return f"{states[0]} → {states[1]}" + (f" ({label})" if label else "")


def _approval(app: App, changes: Record, language: str) -> str:
    name, step = approval_labels(app, str(changes.get("approval")), changes.get("step"), language)
    return f"{name} · {step}" if step else name


def _reapproval(form: CompiledForm, changes: Record, ctx: Context) -> str:
    """The summary of a reapproval: the labels of the material fields the change touched."""
    t = translator(ctx.language)
    touched = changes.get("fields")
    labels = []
    for item in touched if isinstance(touched, list) else []:
        spec = form.form.field(str(item))
        if spec is None:
            labels.append(str(item))  # a material expression: its text is what the definition says
        elif item not in ctx.hidden:
            labels.append(spec.title(ctx.language))
    joined = ("、" if ctx.language == "zh" else ", ").join(labels)
    return t("history.reapproval_summary", fields=joined) if joined else t("history.reapproval_plain")


def _people(app: App, action: str, changes: Record, names: dict[int, str], language: str) -> str:
    """Who a nudge reminded, whom an approver was added or a task handed to."""
    t = translator(language)
    to = changes.get("to")
    ids = to if isinstance(to, list) else [to]
    who = ("、" if language == "zh" else ", ").join(
        names.get(i, f"#{i}") for i in ids if isinstance(i, int) and not isinstance(i, bool)
    )
    if action == "nudge":
        text = t("history.nudge_summary", names=who) if who else ""
        approval = _approval(app, changes, language) if "approval" in changes else ""
        return " · ".join(part for part in (approval, text) if part)
    if action == "add_approver":
        position = "before" if changes.get("position") == "before" else "after"
        return t(f"history.add_approver_{position}", name=who) if who else ""
    return t(f"history.{action}_to", name=who) if who else ""


def _made(app: App, form: CompiledForm, action: str, changes: Record, language: str) -> str:
    """A make action: its label and the record it made (`make`) or was made from (`made_from`)."""
    other = app.form(str(changes.get("form")))
    name = other.label.text(language) if other is not None else str(changes.get("form"))
    source = form.form if action == "make" else other
    spec = source.action(str(changes.get("action"))) if source is not None else None
    label = spec.title(language) if spec is not None else str(changes.get("action") or "")
    return f"{label} · {name} #{changes.get('id')}"


def approval_labels(app: App, key: str, step_name: Any, language: str) -> tuple[str, str]:
    """The labels of an approval and of one of its steps (their keys when unlabelled)."""
    approval = app.approval(key)
    if approval is None:
        return key, str(step_name or "")
    name = approval.label.text(language) if approval.label else approval.approval
    step = next((s for s in approval.steps if s.name == step_name), None)
    if step is None:
        return name, str(step_name or "")
    return name, step.label.text(language) if step.label else step.name


def _changed_fields(form: CompiledForm, changes: Record, ctx: Context, record: Record) -> list[Change]:
    shown: list[Change] = []
    for key, change in changes.items():
        spec = form.form.field(key)
        if spec is None or key in ctx.hidden:
            continue
        if isinstance(change, list) and len(change) == 2:
            old, new = (display(spec, v, ctx.language, ctx.currency, ctx.zone) for v in change)
            shown.append(Change(spec.title(ctx.language), old, new))
        elif isinstance(change, dict) and key in form.children:
            shown.extend(_row_changes(form, key, spec.title(ctx.language), change, ctx, record))
    return shown


def _row_changes(
    form: CompiledForm, key: str, table: str, change: Record, ctx: Context, record: Record
) -> list[Change]:
    """A table field's rows changed, added and removed, each by its number."""
    t = translator(ctx.language)
    child = form.children[key]
    hidden = ctx.child_hidden.get(key, frozenset())
    current = [row.get("id") for row in record.get(key) or [] if isinstance(row, dict)]
    position = {row_id: index + 1 for index, row_id in enumerate(current) if row_id is not None}
    columns = [k for k in child.fields if k not in hidden and k not in ROW_KEYS]
    found: list[Change] = []
    for index, row in enumerate(_rows(change, "changed")):
        number = position.get(row.get("id"), index + 1)
        for column in columns:
            pair = row.get(column)
            if not (isinstance(pair, list) and len(pair) == 2):
                continue
            spec = child.fields[column].spec
            old, new = (display(spec, v, ctx.language, ctx.currency, ctx.zone) for v in pair)
            label = t("history.row", table=table, n=number, field=spec.title(ctx.language))
            found.append(Change(label, old, new))
    for kind in ("added", "removed"):
        for index, row in enumerate(_rows(change, kind)):
            number = position.get(row.get("id"), index + 1) if kind == "added" else index + 1
            values = [
                f"{child.fields[k].spec.title(ctx.language)} {text}"
                for k in columns
                if (text := display(child.fields[k].spec, row.get(k), ctx.language, ctx.currency, ctx.zone))
            ][:MAX_ROW_VALUES]
            text = ", ".join(values)
            label = t(f"history.row_{kind}", table=table, n=number)
            old, new = (text, "") if kind == "removed" else ("", text)
            found.append(Change(label, old, new, kind))
    return found


def _rows(change: Record, kind: str) -> list[Record]:
    rows = change.get(kind)
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
