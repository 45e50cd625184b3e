"""The record page's timeline: history entries told in people's terms.

Field changes show labels and formatted values; a transition shows the states'
option labels and the action's label; an approval entry shows the approval's and
the step's labels. Ids and internal keys stay out of sight.
"""

from __future__ import annotations

from typing import Any

from runtime.model import App
from runtime.records.compiled import CompiledForm
from runtime.web.form_view import Context
from runtime.web.formats import display, local_time, option_label

Record = dict[str, Any]


def timeline(app: App, form: CompiledForm, items: list[Record], ctx: Context) -> list[dict[str, Any]]:
    """History entries, newest first."""
    entries = []
    for item in reversed(items):
        given = item.get("changes")
        changes: Record = given if isinstance(given, dict) else {}
        entry: dict[str, Any] = {
            "action": item["action"],
            "user": (item.get("user") or {}).get("display", ""),
            "at": local_time(item["at"], ctx.zone),
            "comment": changes.get("comment"),
            "summary": "",
            "fields": [],
        }
        if item["action"] in ("create", "update"):
            entry["fields"] = _changed_fields(form, changes, ctx)
        elif item["action"] == "transition":
            entry["summary"] = _transition(app, form, changes, ctx.language)
        elif "approval" in changes:
            entry["summary"] = _approval(app, changes, ctx.language)
        entries.append(entry)
    return entries


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


def _changed_fields(form: CompiledForm, changes: Record, ctx: Context) -> list[tuple[str, str, str]]:
    shown = []
    for key, change in changes.items():
        spec = form.form.field(key)
        if spec is None or key in ctx.hidden:
            continue
        if isinstance(change, list) and len(change) == 2:
            old, new = (display(spec, v, ctx.language, ctx.currency, ctx.zone) for v in change)
            shown.append((spec.title(ctx.language), old, new))
        elif isinstance(change, dict):
            counts = ", ".join(f"{k} {len(v)}" for k, v in change.items() if isinstance(v, list))
            shown.append((spec.title(ctx.language), "", counts))
    return shown
