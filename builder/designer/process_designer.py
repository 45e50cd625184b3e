"""The workflow and approval designers: a diagram drawn from the definition, and editors for
states, transitions (guards, values asked, effects) and approval steps.

Editors post ordinary forms. Each edit is laid over the definition as it is in its file,
so keys the editor does not show (timers, `allowed`, …) and every comment stay.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from starlette.datastructures import FormData

from builder.designer.diagram import layout
from builder.designer.pages import Designer, require_token
from builder.designer.workspace import StaleDraft
from runtime.identity.actor import Actor
from runtime.web.session import posted_form

ROW = re.compile(r"^([a-z_]+)\[([0-9]{1,3})\]\.([a-z_]+)$")
SOURCES = ("role", "users", "user_field", "manager", "expression")
MODES = ("any", "all", "percent", "count")
FLAGS = {"no_self_approval": True, "distinct_approvers": False, "lock": True}  # with their defaults
Record = dict[str, Any]


def process_designer_router(designer: Designer) -> APIRouter:
    """`/designer/{app}/workflows/{key}` and `/designer/{app}/approvals/{key}`."""
    router = APIRouter(include_in_schema=False)
    Admin = Depends(designer.admin)
    Posted = Depends(posted_form)
    space = designer.workspace

    editors = {"workflows": (workflow_from_form, _workflow), "approvals": (approval_from_form, _approval)}

    def editor(kind: str) -> tuple[Callable[..., Response], Callable[..., Response]]:
        read, draw = editors[kind]

        def page(request: Request, app_key: str, key: str, actor: Actor = Admin) -> Response:
            return draw(designer, request, actor, app_key, key, space.load(app_key, kind, key), [], None)

        def save(
            request: Request, app_key: str, key: str, data: FormData = Posted, actor: Actor = Admin
        ) -> Response:
            require_token(request, actor, data)
            current = space.load(app_key, kind, key)
            edited, errors = read(current, data)
            if errors:
                return draw(designer, request, actor, app_key, key, edited, errors, None, 422)
            try:
                saved = space.save(app_key, kind, key, edited, _revision(data))
            except StaleDraft as stale:  # someone changed the file since this page was drawn
                return draw(designer, request, actor, app_key, key, current, [str(stale)], None, 409)
            return draw(designer, request, actor, app_key, key, edited, saved.problems, saved.path.name)

        return page, save

    def diagram(
        request: Request, app_key: str, key: str, data: FormData = Posted, actor: Actor = Admin
    ) -> Response:
        require_token(request, actor, data)
        edited, _ = workflow_from_form(space.load(app_key, "workflows", key), data)
        picture = layout(edited, actor.language, state_names(designer, app_key, edited, actor.language))
        return designer.render(request, actor, "designer_diagram.html", fragment=True, diagram=picture)

    def new_definition(
        request: Request, app_key: str, kind: str, data: FormData = Posted, actor: Actor = Admin
    ) -> Response:
        require_token(request, actor, data)
        key = re.sub(r"[^a-z0-9_]", "_", str(data.get("key") or "").strip().lower()).strip("_")[:40]
        form = str(data.get("form") or "")
        if kind not in ("workflows", "approvals") or not key or not form:
            return RedirectResponse("/designer", status_code=303)
        if kind == "workflows":
            body: Record = {
                "workflow": key,
                "form": form,
                "field": str(data.get("field") or "status"),
                "states": [{"key": "open", "initial": True}, {"key": "done", "final": True}],
                "transitions": [{"action": "finish", "from": "open", "to": "done"}],
            }
        else:
            body = {
                "approval": key,
                "form": form,
                "steps": [{"name": "manager", "approvers": {"manager": 1}}],
            }
        space.save(app_key, kind, key, body)
        return RedirectResponse(f"/designer/{app_key}/{kind}/{key}", status_code=303)

    for kind in editors:
        page, save = editor(kind)
        router.add_api_route(f"/designer/{{app_key}}/{kind}/{{key}}", page, methods=["GET"])
        router.add_api_route(f"/designer/{{app_key}}/{kind}/{{key}}", save, methods=["POST"])
    router.add_api_route("/designer/{app_key}/workflows/{key}/diagram", diagram, methods=["POST"])
    router.add_api_route("/designer/{app_key}/new/{kind}", new_definition, methods=["POST"])
    return router


def workflow_from_form(current: Record, data: FormData) -> tuple[Record, list[str]]:
    """The workflow with the editor's states and transitions laid over it."""
    errors: list[str] = []
    old_states = {s.get("key"): s for s in current.get("states", []) if isinstance(s, dict)}
    initial = str(data.get("initial") or "")
    states = []
    for row in rows(data, "states"):
        key = row.get("key", "").strip()
        if not key:
            continue
        state = dict(old_states.get(key, {}))
        state["key"] = key
        _set_label(state, "label", row)
        _set_flag(state, "initial", key == initial)
        _set_flag(state, "final", row.get("final") == "true")
        states.append(state)
    old_transitions = {t.get("action"): t for t in current.get("transitions", []) if isinstance(t, dict)}
    transitions = []
    for row in rows(data, "transitions"):
        action = row.get("action", "").strip()
        if not action:
            continue
        item = dict(old_transitions.get(row.get("was", ""), old_transitions.get(action, {})))
        item["action"] = action
        _set_label(item, "label", row)
        sources = _words(row.get("from", ""))
        _set(item, "from", sources[0] if len(sources) == 1 else sources)
        _set(item, "to", row.get("to", "").strip())
        for name in ("roles", "fields", "require"):
            _set(item, name, _words(row.get(name, "")))
        _set(item, "guard", row.get("guard", "").strip())
        _set_label(item, "guard_message", row, "guard_message")
        _set_flag(item, "auto", row.get("auto") == "true")
        _set_flag(item, "system", row.get("system") == "true")
        effects, problem = _yaml_list(row.get("effects", ""), f"transition {action}: effects")
        if problem:
            errors.append(problem)
        _set(item, "effects", effects)
        transitions.append(item)
    edited = {**current, "states": states, "transitions": transitions}
    _set_label(edited, "label", _flat(data))
    return edited, errors


def approval_from_form(current: Record, data: FormData) -> tuple[Record, list[str]]:
    """The approval with the editor's settings and steps laid over it."""
    errors: list[str] = []
    edited = dict(current)
    flat = _flat(data)
    _set_label(edited, "label", flat)
    _set(edited, "starts_when", flat.get("starts_when", "").strip())
    for flag, default in FLAGS.items():
        wanted = flat.get(flag) == "true"
        if flag in current or wanted != default:
            edited[flag] = wanted
    old_steps = {s.get("name"): s for s in current.get("steps", []) if isinstance(s, dict)}
    steps = []
    for row in rows(data, "steps"):
        name = row.get("name", "").strip()
        if not name:
            continue
        step = dict(old_steps.get(row.get("was", ""), old_steps.get(name, {})))
        step["name"] = name
        _set_label(step, "label", row)
        _set(step, "when", row.get("when", "").strip())
        if row.get("source") in SOURCES:
            step["approvers"] = _approvers(row)
        mode = row.get("mode", "any")
        step["mode"] = mode if mode in MODES else "any"
        for figure in ("percent", "count"):
            value = row.get(figure, "").strip()
            step.pop(figure, None)
            if step["mode"] == figure:
                if value.isdigit():
                    step[figure] = int(value)
                else:
                    errors.append(f"step {name}: give the {figure} as a whole number")
        if step["mode"] == "any" and "mode" not in old_steps.get(name, {}):
            step.pop("mode")
        reject_to = row.get("reject_to", "start")
        kept_start = old_steps.get(name, {}).get("reject_to") == "start"
        _set(step, "reject_to", "" if reject_to == "start" and not kept_start else reject_to)
        steps.append(step)
    edited["steps"] = steps
    for key in ("on_approved", "on_rejected"):
        effects, problem = _yaml_list(flat.get(key, ""), key)
        if problem:
            errors.append(problem)
        _set(edited, key, effects)
    return edited, errors


def _revision(data: FormData) -> str | None:
    given = data.get("revision")
    return given if isinstance(given, str) and given else None


def rows(data: FormData, table: str) -> list[dict[str, str]]:
    """The rows of an editor table (`states[0].key` …), in the order they were sent."""
    found: dict[str, dict[str, str]] = {}
    for name, value in data.multi_items():
        match = ROW.match(name)
        if match and match.group(1) == table and isinstance(value, str):
            found.setdefault(match.group(2), {})[match.group(3)] = value
    return list(found.values())


def approver_source(step: Record) -> tuple[str, str, str]:
    """An approval step's single approver source as (source, value, of) for the editor."""
    approvers = step.get("approvers")
    if isinstance(approvers, list):
        approvers = approvers[0] if len(approvers) == 1 else None
    if not isinstance(approvers, dict):
        return "", "", ""
    for source in SOURCES:
        if source in approvers:
            value = approvers[source]
            text = ", ".join(value) if isinstance(value, list) else str(value)
            return source, text, str(approvers.get("of") or "")
    return "", "", ""


def _approvers(row: dict[str, str]) -> Record:
    source, value = row["source"], row.get("value", "").strip()
    if source == "users":
        return {"users": _words(value)}
    if source == "manager":
        found: Record = {"manager": int(value) if value.isdigit() else 1}
        if row.get("of", "").strip():
            found["of"] = row["of"].strip()
        return found
    return {source: value}


def _workflow(
    designer: Designer,
    request: Request,
    actor: Actor,
    app_key: str,
    key: str,
    data: Record,
    problems: list[str],
    saved: str | None,
    status: int = 200,
) -> Response:
    return designer.render(
        request,
        actor,
        "designer_workflow.html",
        status=status,
        app_key=app_key,
        key=key,
        data=data,
        diagram=layout(data, actor.language, state_names(designer, app_key, data, actor.language)),
        revision=designer.workspace.revision(app_key, "workflows", key),
        problems=problems,
        saved=saved,
        effects_text=_effects_text,
        title=key,
    )


def state_names(designer: Designer, app_key: str, workflow: Record, language: str) -> dict[str, str]:
    """The labels of the workflow's states: the options of its state field in the served app."""
    served = designer.service.apps.get(app_key)
    form = served.app.form(str(workflow.get("form"))) if served else None
    spec = form.field(str(workflow.get("field"))) if form else None
    options = getattr(spec, "options", None) or []
    return {o.key: o.label.text(language) for o in options if o.label}


def _approval(
    designer: Designer,
    request: Request,
    actor: Actor,
    app_key: str,
    key: str,
    data: Record,
    problems: list[str],
    saved: str | None,
    status: int = 200,
) -> Response:
    names = [str(s.get("name")) for s in data.get("steps", []) if isinstance(s, dict)]
    return designer.render(
        request,
        actor,
        "designer_approval.html",
        status=status,
        app_key=app_key,
        key=key,
        data=data,
        names=names,
        sources=SOURCES,
        modes=MODES,
        approver_source=approver_source,
        revision=designer.workspace.revision(app_key, "approvals", key),
        effects_text=_effects_text,
        problems=problems,
        saved=saved,
        title=key,
    )


def _effects_text(value: Any) -> str:
    if not value:
        return ""
    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(value, out)
    return out.getvalue()


def _yaml_list(text: str, where: str) -> tuple[list[Any], str | None]:
    if not text.strip():
        return [], None
    try:
        value = YAML(typ="safe").load(text)
    except YAMLError as error:
        return [], f"{where}: not valid YAML ({str(error).splitlines()[0]})"
    if not isinstance(value, list):
        return [], f"{where}: write a list of effects, one per '- ' line"
    return value, None


def _flat(data: FormData) -> dict[str, str]:
    return {k: v for k, v in data.multi_items() if isinstance(v, str) and not ROW.match(k)}


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[,\s]+", text.strip()) if w]


def _set(target: Record, key: str, value: Any) -> None:
    if value in ("", [], None, {}):
        target.pop(key, None)
    else:
        target[key] = value


def _set_flag(target: Record, key: str, value: bool) -> None:
    if value:
        target[key] = True
    else:
        target.pop(key, None)


def _set_label(target: Record, key: str, row: dict[str, str], prefix: str = "label") -> None:
    label = {lang: row.get(f"{prefix}_{lang}", "").strip() for lang in ("zh", "en")}
    given = {lang: text for lang, text in label.items() if text}
    if f"{prefix}_zh" not in row and f"{prefix}_en" not in row:
        return
    _set(target, key, given)
