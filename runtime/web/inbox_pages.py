""" "My tasks" in four views — to do, done, started by me, copied to me — and notifications.

`GET /tasks?view=todo|done|started|cc&offset=N` shows one page of a view (the process
service's `inbox`, scoped to the signed-in user) with every view's count in its tab.
To-do tasks are approved, rejected, delegated or handed an added approver (加签, where
the step allows it) with a comment; done tasks show the decision and when; approvals
I started show their state and current step, with Nudge (催办) and, while nobody has
decided, Withdraw (撤回); copies show what was copied. Every POST carries the CSRF token.

Titles of the records behind a page are read with one query per form, not one per
task; the facts the page adds (a task's step definition, who an approver waits for,
the current approvers of an approval) take a fixed number of queries per page.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData

from runtime.identity.actor import Actor
from runtime.model.process import Approval
from runtime.process.tasks import OPEN
from runtime.records.errors import NotFound, RecordError
from runtime.schema.system import process_instances, tasks, users
from runtime.web.context import Web
from runtime.web.formats import display, local_time, record_title
from runtime.web.i18n import language_of, translator
from runtime.web.problems import by_input
from runtime.web.session import check_csrf, local_path, posted_form
from runtime.web.timeline import approval_labels

Key = tuple[str, str, int]
Summary = tuple[str, list[tuple[str, str]]]
DECIDED = {"approve": "approved", "reject": "rejected"}
VERBS = ("approve", "reject", "delegate", "add_approver")
VIEWS = ("todo", "done", "started", "cc")
PAGE = 20
DECISIONS = ("approved", "rejected", "forwarded")  # what makes an approval impossible to withdraw


def inbox_router(web: Web) -> APIRouter:
    """`/tasks`, `/tasks/{id}/{verb}`, `/approvals/{id}/{verb}`, `/notifications` and marking them read."""
    router = APIRouter(include_in_schema=False)
    Actor_ = Depends(web.actor)
    Posted = Depends(posted_form)

    def task_list(request: Request, actor: Actor = Actor_) -> Response:
        view, offset = _view_of(request)
        return _inbox(web, request, actor, view, offset, {}, None, 200)

    def decide(
        request: Request, task_id: int, decision: str, data: FormData = Posted, actor: Actor = Actor_
    ) -> Response:
        check_csrf(request, data, actor)
        if decision not in VERBS:
            raise NotFound("action", decision)
        t = translator(actor.language)
        comment = str(data.get("comment") or "").strip() or None
        try:
            if decision in DECIDED:
                web.process.decide(task_id, DECIDED[decision], {"comment": comment}, actor)
            else:
                field = "to" if decision == "delegate" else "add_to"
                to = _user_id(data.get(field))
                if to is None:
                    errors = {"": [t("tasks.pick_user")]}
                    return _inbox(web, request, actor, "todo", _offset(data), errors, task_id, 422)
                if decision == "delegate":
                    web.process.reassign(task_id, "delegate", {"to": to, "comment": comment}, actor)
                else:
                    body = {"to": to, "position": str(data.get("position") or ""), "comment": comment}
                    web.process.add_approver(task_id, body, actor)
        except RecordError as error:
            if error.status in (401, 404):
                raise
            errors = by_input(error.problems, None, t, actor.language)
            if decision == "add_approver" and error.status == 403:
                errors = {"": [t("tasks.add_refused")]}
            return _inbox(web, request, actor, "todo", _offset(data), errors, task_id, error.status)
        return RedirectResponse(f"/tasks?done={decision}", status_code=303)

    def approval_action(
        request: Request, instance_id: int, verb: str, data: FormData = Posted, actor: Actor = Actor_
    ) -> Response:
        check_csrf(request, data, actor)
        if verb not in ("withdraw", "nudge"):
            raise NotFound("action", verb)
        try:
            approval_verb(web, instance_id, verb, data, actor)
        except RecordError as error:
            if error.status in (401, 404):
                raise
            errors = by_input(error.problems, None, translator(actor.language), actor.language)
            return _inbox(web, request, actor, "started", _offset(data), errors, instance_id, error.status)
        return RedirectResponse(f"/tasks?view=started&done={verb}", status_code=303)

    def notification_list(request: Request, actor: Actor = Actor_) -> Response:
        found = web.process.notifications(actor, unread_only=False, limit=50, offset=0)
        zone = next(iter(web.service.apps.values())).app.zone()
        items = [
            {**n, "when": local_time(n["created_at"], zone), "link": _page_of(n["record"])}
            for n in found["items"]
        ]
        return web.pages.render(
            request,
            actor,
            "notifications.html",
            items=items,
            title=translator(actor.language)("nav.notifications"),
        )

    def read_one(
        request: Request, notification_id: int, data: FormData = Posted, actor: Actor = Actor_
    ) -> Response:
        check_csrf(request, data, actor)
        web.process.mark_read(actor, notification_id)
        return RedirectResponse(local_path(str(data.get("next") or "/notifications")), 303)

    def read_all(request: Request, data: FormData = Posted, actor: Actor = Actor_) -> Response:
        check_csrf(request, data, actor)
        web.process.mark_read(actor, None)
        return RedirectResponse("/notifications", status_code=303)

    def counts(request: Request, actor: Actor = Actor_) -> Response:
        found = web.pages.counts(actor)
        return web.pages.render(request, actor, "_counts.html", fragment=True, counts=found)

    router.add_api_route("/nav/counts", counts, methods=["GET"])
    router.add_api_route("/tasks", task_list, methods=["GET"])
    router.add_api_route("/tasks/{task_id:int}/{decision}", decide, methods=["POST"])
    router.add_api_route("/approvals/{instance_id:int}/{verb}", approval_action, methods=["POST"])
    router.add_api_route("/notifications", notification_list, methods=["GET"])
    router.add_api_route("/notifications/read-all", read_all, methods=["POST"])
    router.add_api_route("/notifications/{notification_id:int}/read", read_one, methods=["POST"])
    return router


def approval_verb(web: Web, instance_id: int, verb: str, data: FormData, actor: Actor) -> None:
    """Withdraw (with the form's comment) or nudge an approval the actor submitted."""
    if verb == "withdraw":
        comment = str(data.get("comment") or "").strip() or None
        web.process.withdraw(instance_id, {"comment": comment}, actor)
    else:
        web.process.nudge(instance_id, actor)


def _view_of(request: Request) -> tuple[str, int]:
    view = request.query_params.get("view") or "todo"
    raw = request.query_params.get("offset") or "0"
    offset = int(raw) if raw.isdigit() and len(raw) < 10 else 0
    return (view if view in VIEWS else "todo"), offset


def _offset(data: FormData) -> int:
    """The offset of the page a form was posted from (a refusal draws that page again)."""
    raw = str(data.get("offset") or "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


def _user_id(value: Any) -> int | None:
    raw = str(value or "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def _inbox(
    web: Web,
    request: Request,
    actor: Actor,
    view: str,
    offset: int,
    errors: dict[str, list[str]],
    failed: int | None,
    status: int,
) -> Response:
    language = language_of(actor.language)
    t = translator(language)
    found = web.process.inbox(actor, view, PAGE, offset)
    items = found["items"]
    summaries = _summaries(web, actor, items, language)
    default_zone = next(iter(web.service.apps.values())).app.zone()
    for item in items:
        app = web.service.apps.get(item["app"])
        zone = app.app.zone() if app else default_zone
        form = app.forms.get(item["form"]) if app else None
        item["form_label"] = form.form.label.text(language) if form else item["form"]
        item["title"], item["facts"] = summaries.get(
            (item["app"], item["form"], item["record_id"]), (f"#{item['record_id']}", [])
        )
        item["link"] = f"/app/{item['app']}/{item['form']}/{item['record_id']}"
        item["when"] = local_time(item.get("created_at") or item.get("started_at"), zone)
        item["decided"] = local_time(item["decided_at"], zone) if item.get("decided_at") else ""
        item["ended"] = local_time(item["ended_at"], zone) if item.get("ended_at") else ""
    if view == "started":
        _started_facts(web, items, language)
    else:
        _task_facts(web, actor, items)
    for item in items:
        item["approval_label"] = _approval_label(web, item, language)
    done = request.query_params.get("done")
    previous = max(offset - PAGE, 0) if offset > 0 else None
    return web.pages.render(
        request,
        actor,
        "tasks.html",
        status=status,
        view=view,
        offset=offset,
        views=[(v, found["counts"].get(v, 0)) for v in VIEWS],
        items=items,
        errors=errors,
        failed=failed,
        done=done if done in (*VERBS, "withdraw", "nudge") else None,
        previous=None if previous is None else f"/tasks?view={view}&offset={previous}",
        next=None if found["next_offset"] is None else f"/tasks?view={view}&offset={found['next_offset']}",
        title=t("nav.tasks"),
    )


def _task_facts(web: Web, actor: Actor, items: list[dict[str, Any]]) -> None:
    """What the task rows add to a task: its step's definition (may one add an approver, and where?),
    who asked a consulted approver, who a waiting task waits for, and the approval's state now.

    Two queries for the page, three when a task waits.
    """
    if not items:
        return
    asker = users.alias("asker")
    stmt = (
        select(
            tasks.c.id,
            tasks.c.instance_id,
            tasks.c.step_index,
            tasks.c.round,
            process_instances.c.definition_version,
            process_instances.c.state,
            asker.c.display_name.label("asker"),
        )
        .select_from(
            tasks.join(process_instances, process_instances.c.id == tasks.c.instance_id).outerjoin(
                asker, asker.c.id == tasks.c.on_behalf_of
            )
        )
        .where(tasks.c.id.in_([item["id"] for item in items]))
    )
    engine = web.process.engine
    with web.service.engine.connect() as conn:
        facts = {row["id"]: row for row in conn.execute(stmt).mappings()}
        waiting = [facts[i["id"]] for i in items if i["status"] == "waiting" and i["id"] in facts]
        waits_for = _waits_for(conn, waiting, actor)
        for item in items:
            fact = facts.get(item["id"])
            item["positions"] = []
            item["asker"] = fact["asker"] if fact is not None and item["kind"] == "consult" else None
            item["approval_state"] = fact["state"] if fact is not None else None
            item["waits_for"] = waits_for.get(fact["instance_id"], []) if fact is not None else []
            if fact is None or item["status"] != "open" or item["kind"] == "cc":
                continue
            approval = engine.versions.approval(
                conn, item["app"], str(item.get("approval")), fact["definition_version"]
            )
            item["positions"] = _positions(approval, fact["step_index"])


def _waits_for(conn: Any, waiting: list[Any], actor: Actor) -> dict[int, list[str]]:
    """For waiting tasks: the approvers the actor added before themselves, by approval instance."""
    if not waiting:
        return {}
    added = users.alias("added")
    stmt = (
        select(tasks.c.instance_id, tasks.c.round, added.c.display_name)
        .select_from(tasks.join(added, added.c.id == tasks.c.assignee_id))
        .where(
            tasks.c.instance_id.in_([row["instance_id"] for row in waiting]),
            tasks.c.kind == "consult",
            tasks.c.status.in_(OPEN),
            tasks.c.on_behalf_of == actor.user_id,
        )
        .order_by(tasks.c.id)
    )
    rounds = {row["instance_id"]: row["round"] for row in waiting}
    found: dict[int, list[str]] = defaultdict(list)
    for row in conn.execute(stmt).mappings():
        if rounds.get(row["instance_id"]) == row["round"]:
            found[row["instance_id"]].append(str(row["display_name"]))
    return found


def withdrawable(approval: Approval | None, in_workflow: bool) -> bool:
    """Whether the pages offer to withdraw (撤回) the approval.

    The approval must allow it (`withdraw`). On a form with a workflow it must also say
    where the record goes (`on_withdrawn`, typically a transition back to draft):
    without it the record would stay in its in-approval state with nothing running, and
    the workflow's own actions are the way back.
    """
    if approval is None or not approval.withdraw:
        return False
    return bool(approval.on_withdrawn) or not in_workflow


def _positions(approval: Approval | None, index: int) -> list[str]:
    """Where the step lets its approvers add someone: before and/or after themselves."""
    if approval is None or not 0 <= index < len(approval.steps):
        return []
    allowed = approval.steps[index].add_approvers
    return {"none": [], "before": ["before"], "after": ["after"], "both": ["before", "after"]}[allowed]


def _started_facts(web: Web, items: list[dict[str, Any]], language: str) -> None:
    """For approvals I started: the current step's label and approvers, and whether one may still
    withdraw (the approval allows it and nobody has decided). Two queries for the page."""
    for item in items:
        item.update(step_label="", holders=[], can_withdraw=False, can_nudge=False)
    running = [item for item in items if item["state"] == "running"]
    if not running:
        return
    ids = [item["id"] for item in running]
    holder = users.alias("holder")
    with web.service.engine.connect() as conn:
        instances = {
            row["id"]: row
            for row in conn.execute(
                select(
                    process_instances.c.id, process_instances.c.round, process_instances.c.definition_version
                ).where(process_instances.c.id.in_(ids))
            ).mappings()
        }
        rows = conn.execute(
            select(tasks.c.instance_id, tasks.c.status, tasks.c.kind, tasks.c.round, holder.c.display_name)
            .select_from(tasks.join(holder, holder.c.id == tasks.c.assignee_id))
            .where(tasks.c.instance_id.in_(ids))
            .order_by(tasks.c.id)
        ).mappings()
        by_instance: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_instance[row["instance_id"]].append(row)
        for item in running:
            instance = instances.get(item["id"])
            if instance is None:
                continue
            approval = web.process.engine.versions.approval(
                conn, item["app"], str(item["approval"]), instance["definition_version"]
            )
            found = by_instance[item["id"]]
            item["holders"] = list(
                dict.fromkeys(
                    str(r["display_name"])
                    for r in found
                    if r["round"] == instance["round"] and r["status"] in OPEN and r["kind"] != "cc"
                )
            )
            spec = (
                approval.steps[approval.step_index(str(item["step"])) or 0]
                if approval and item["step"]
                else None
            )
            if spec is not None:
                item["step_label"] = spec.label.text(language) if spec.label else spec.name
            decided = any(r["status"] in DECISIONS for r in found)
            app = web.service.apps.get(item["app"])
            workflow = app.app.workflow_of(item["form"]) if app is not None else None
            item["can_withdraw"] = withdrawable(approval, workflow is not None) and not decided
            item["can_nudge"] = bool(item["holders"])


def _summaries(web: Web, actor: Actor, items: list[dict[str, Any]], language: str) -> dict[Key, Summary]:
    """Each task's record title and its first list columns: one read per form, not per task.

    Records are read through the records service as the approver, so the summary shows
    only what they may see; a record outside their read scope shows its title alone.
    """
    wanted: dict[tuple[str, str], set[int]] = defaultdict(set)
    for item in items:
        wanted[(item["app"], item["form"])].add(item["record_id"])
    found: dict[Key, Summary] = {}
    for (app_key, form_key), ids in wanted.items():
        app = web.service.apps.get(app_key)
        form = app.forms.get(form_key) if app else None
        if app is None or form is None:
            continue
        ctx = web.input_context(app, form, actor, creating=False)
        columns = [k for k in form.form.list_view.columns if k != form.title_field and k in form.fields][:4]
        readable: dict[int, dict[str, Any]] = {}
        if web.service.access(app_key, form_key, actor).can("read"):
            params = [("id__in", ",".join(map(str, sorted(ids)))), ("limit", str(len(ids)))]
            readable = {r["id"]: r for r in web.service.list_page(app_key, form_key, params, actor)["items"]}
        titles = _bare_titles(web, form, ids - set(readable))
        for record_id in ids:
            record = readable.get(record_id)
            if record is None:
                found[(app_key, form_key, record_id)] = (titles.get(record_id, f"#{record_id}"), [])
                continue
            facts = [
                (
                    form.fields[k].spec.title(language),
                    display(form.fields[k].spec, record.get(k), language, ctx.currency, ctx.zone),
                )
                for k in columns
                if k in record and record.get(k) not in (None, "", [])
            ]
            found[(app_key, form_key, record_id)] = (record_title(record, form.title_field), facts)
    return found


def _bare_titles(web: Web, form: Any, ids: set[int]) -> dict[int, str]:
    """Titles of records the approver may not read: the task names them anyway."""
    if not ids or form.title_field not in form.table.c:
        return {}
    table = form.table
    with web.service.engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c[form.title_field]).where(table.c.id.in_(ids)))
        return {row[0]: str(row[1]) for row in rows if row[1] is not None}


def _approval_label(web: Web, item: dict[str, Any], language: str) -> str:
    app = web.service.apps.get(item["app"])
    if app is None:
        return str(item.get("approval") or "")
    if "step_label" in item:  # an approval I started: its current step is told apart
        return approval_labels(app.app, str(item.get("approval") or ""), None, language)[0]
    name, step = approval_labels(app.app, str(item.get("approval") or ""), item["step"], language)
    return f"{name} · {step}" if step else name


def _page_of(record_url: str | None) -> str | None:
    """The web page of a record the API names (`/api/v1/app/form/7` → `/app/app/form/7`)."""
    return "/app/" + record_url.removeprefix("/api/v1/") if record_url else None
