"""A pack's running app for scenarios: served on a database with a manual clock.

The pack is published and its API built once per database (`Harness(...)`); each run
then starts from an emptied database (`begin`, see reset.py) with the clock at its start.
Users act through the REST API (the ASGI app in-process, each with an API token of their
own); expectations read through the records, process and reports services. E-mails and
webhooks are captured by the worker (an outbox) instead of leaving. Apart from emptying
the database between runs, nothing here writes a table directly: people are made by the
identity directory, records by the records service, files by the upload route.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from builder.scenarios.clock import ManualClock, move_to, run_due
from builder.scenarios.model import Department, Person
from builder.scenarios.reset import Emptier
from runtime.api.limits import max_upload
from runtime.boot import compile_apps, ensure_published
from runtime.db import make_engine, set_clock, write
from runtime.identity.actor import SYSTEM, Actor
from runtime.identity.directory import (
    create_department,
    create_user,
    department_id_of,
    load_actor,
    set_manager,
    user_id_of,
)
from runtime.identity.tokens import create_token
from runtime.live import LiveApi
from runtime.loading.source import parse_file
from runtime.model import App
from runtime.process.engine import engine_for
from runtime.process.mail import Attachment, MailSettings
from runtime.process.service import ProcessService
from runtime.process.worker import Worker
from runtime.records.errors import RecordError
from runtime.records.files import FileStore
from runtime.reports.service import ReportsService
from runtime.schema.calendar import ensure_calendar
from runtime.schema.system import jobs, notifications, users
from runtime.seed import seed_demo

with warnings.catch_warnings():  # starlette's note on httpx, printed at import otherwise
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

OUTBOX = MailSettings(host="outbox.invalid")  # e-mails are queued as when SMTP is set, then captured


class StepError(Exception):
    """A step that could not be taken as written (not an expectation that failed)."""


@dataclass
class Answer:
    """What a step got back: the HTTP answer, and the record it acted on."""

    status: int
    body: Any
    form: str | None = None
    record_id: int | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def errors(self) -> list[dict[str, Any]]:
        """The problems of a refusal (`{field, code, message}` each)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("errors"), list):
            return [e for e in self.body["errors"] if isinstance(e, dict)]
        return []

    def describe(self) -> str:
        found = self.errors()
        if not found:
            return str(self.status)
        parts = [f"{e.get('field') or '-'}: {e.get('code')} ({e.get('message')})" for e in found[:5]]
        return f"{self.status} " + "; ".join(parts)


@dataclass(frozen=True)
class Marks:
    """How much had been sent before a step: what a step's expectations count from."""

    notification: int
    emails: int
    webhooks: int
    failed_jobs: int


class Harness:
    """The pack served on a database with a manual clock, for the runs of one pack."""

    def __init__(self, apps: list[App], pack: Path, url: str, files: Path) -> None:
        self.pack = pack
        self.app = apps[0]
        self.app_key = self.app.app
        self.zone = self.app.zone()
        self.clock = ManualClock(dt.datetime.now(dt.UTC))
        self.engine = make_engine(url)
        set_clock(self.engine, self.clock)
        ensure_published(self.engine, apps, lambda app: "formloom test publishes on a fresh database")
        with write(self.engine) as conn:  # made here, so that no run depends on who made them first
            for app in apps:
                ensure_calendar(conn, app.app, app.calendar)
        self.emptier = Emptier(self.engine)
        store = FileStore(files, max_upload())
        self.live = LiveApi(self.engine, compile_apps(apps, self.engine, self.clock), store, self.clock, ())
        self.service = self.live.service
        self.process = engine_for(self.service)
        self.process.mail = OUTBOX
        self.processes = ProcessService(self.process)
        self.reports = ReportsService(self.service)
        self.client = TestClient(self.live, raise_server_exceptions=True)
        self.client.__enter__()  # one event loop for all the requests, not one per request
        self.begin(self.clock.now)

    def begin(self, start: dt.datetime) -> None:
        """Start a run: an empty database (as just published), the clock at `start`."""
        self.emptier.empty()
        self.clock.now = start
        self.client.cookies.clear()
        self.emails: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.worker = Worker(self.process, "formloom-test", http=self._post, send_mail=self._mail)
        self.tokens: dict[str, str] = {}
        self.refs: dict[str, tuple[str, int]] = {}
        self.files: dict[str, str] = {}
        self._ids: dict[str, int] = {}

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.engine.dispose()

    # -- the outbox ------------------------------------------------------------------------

    def _mail(
        self,
        settings: MailSettings,
        to: str,
        subject: str,
        body: str,
        key: str,
        /,
        *,
        attachments: Sequence[Attachment] = (),
    ) -> None:
        names = [name for name, _, _ in attachments]
        self.emails.append({"to": to, "subject": subject, "body": body, "key": key, "attachments": names})

    def _post(self, url: str, *, content: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
        try:
            body = json.loads(content)
        except ValueError:
            body = content.decode("utf-8", "replace")
        self.webhooks.append({"url": url, "headers": dict(headers), "body": body})
        return httpx.Response(200)

    # -- setup -----------------------------------------------------------------------------

    def people(self, departments: list[Department], people: list[Person], demo: bool) -> None:
        """Create the departments and users (the pack's demo ones first, when asked)."""
        if demo:
            own = {p.username for p in people}
            demo_departments, demo_people = demo_users(self.pack)
            departments = demo_departments + departments
            people = [p for p in demo_people if p.username not in own] + people
        create_people(self.engine, departments, people)

    def demo_data(self) -> None:
        path = self.pack / "demo" / "data.yaml"
        if path.is_file():
            seed_demo(self.service, self.app_key, path)

    def create_as_system(self, form: str, values: dict[str, Any]) -> int:
        """A setup record, written by the records service as the system."""
        data = dict(values)
        name = data.pop("ref", None)
        try:
            created = self._settings_written(form, self.resolve(data)) or self.service.create(
                self.app_key, form, self.resolve(data), SYSTEM
            )
        except RecordError as exc:
            raise StepError(f"the record could not be written: {_problems(exc)}") from exc
        record_id = int(created["id"])
        if isinstance(name, str):
            self.refs[name] = (form, record_id)
        return record_id

    def _settings_written(self, form: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """A single (settings) form has its record from the start: setup values change it."""
        compiled = self.service.apps[self.app_key].forms.get(form)
        if compiled is None or not compiled.form.single:
            return None
        items = self.service.list_page(self.app_key, form, [("limit", "1")], SYSTEM)["items"]
        if not items:
            return None
        return dict(self.service.update(self.app_key, form, int(items[0]["id"]), values, actor=SYSTEM))

    # -- names -----------------------------------------------------------------------------

    def user_id(self, username: str) -> int:
        if username not in self._ids:
            with self.engine.connect() as conn:
                try:
                    self._ids[username] = user_id_of(conn, username)
                except Exception as exc:
                    raise StepError(f"no user '{username}'") from exc
        return self._ids[username]

    def usernames(self) -> dict[int, str]:
        with self.engine.connect() as conn:
            return {int(i): str(n) for i, n in conn.execute(select(users.c.id, users.c.username))}

    def emails_of(self) -> dict[str, str]:
        """username -> e-mail address."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(users.c.username, users.c.email)).all()
        return {str(n): str(e) for n, e in rows if e}

    def record(self, ref: str) -> tuple[str, int]:
        if ref not in self.refs:
            raise StepError(f"no record named '{ref}'")
        return self.refs[ref]

    def resolve(self, value: Any) -> Any:
        """Values as the API takes them: `{ref: x}` a record's id, `{user: x}` a user's,
        `{department: x}` a department's, `{file: x}` an uploaded file's."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, item),) = value.items()
                if key == "ref" and isinstance(item, str):
                    return self.record(item)[1]
                if key == "user" and isinstance(item, str):
                    return self.user_id(item)
                if key == "department" and isinstance(item, str):
                    with self.engine.connect() as conn:
                        return department_id_of(conn, item)
                if key == "file" and isinstance(item, str):
                    if item not in self.files:
                        raise StepError(f"no file named '{item}'")
                    return self.files[item]
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def rows_kept(self, form: str, record_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """`row: N` in a table field's rows: the N-th existing row (from 1), kept and changed."""
        model = self.app.form(form)
        tables = {t.key for t in model.table_fields()} if model else set()
        if not any(
            isinstance(rows, list) and any(isinstance(r, dict) and "row" in r for r in rows)
            for key, rows in values.items()
            if key in tables
        ):
            return values
        current = self.service.get(self.app_key, form, record_id, SYSTEM)
        changed = dict(values)
        for key in tables & set(values):
            existing = current.get(key) or []
            rows = []
            for row in values[key]:
                if isinstance(row, dict) and "row" in row:
                    number = row["row"]
                    if not isinstance(number, int) or not 1 <= number <= len(existing):
                        raise StepError(f"{key} has no row {number} (it has {len(existing)})")
                    row = {"id": existing[number - 1]["id"], **{k: v for k, v in row.items() if k != "row"}}
                rows.append(row)
            changed[key] = rows
        return changed

    # -- acting through the API ------------------------------------------------------------

    def token(self, username: str) -> str:
        if username not in self.tokens:
            self.user_id(username)
            with write(self.engine) as conn:
                self.tokens[username] = create_token(conn, username, "formloom-test")
        return self.tokens[username]

    def call(self, method: str, url: str, username: str, **kwargs: Any) -> Answer:
        headers = {"Authorization": f"Bearer {self.token(username)}"}
        response = self.client.request(method, url, headers=headers, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Answer(response.status_code, body)

    def upload(self, username: str, name: str, content: bytes, content_type: str | None) -> Answer:
        kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return self.call("POST", "/api/v1/files", username, files={"file": (name, content, kind)})

    def open_tasks(self, username: str) -> list[dict[str, Any]]:
        """A user's open tasks, as their inbox lists them."""
        result = self.processes.tasks(self.actor(username), "open", 500, 0)
        return list(result["items"])

    def actor(self, username: str) -> Actor:
        with self.engine.connect() as conn:
            found = load_actor(conn, self.user_id(username))
        if found is None:
            raise StepError(f"user '{username}' is not active")
        return found

    # -- reading ---------------------------------------------------------------------------

    def read(self, form: str, record_id: int) -> dict[str, Any]:
        """The record with every field (computed ones included), as the system reads it."""
        return dict(self.service.get(self.app_key, form, record_id, SYSTEM))

    def state_field(self, form: str) -> str | None:
        workflow = self.app.workflow_of(form)
        return workflow.field if workflow else None

    def name_of(self, form: str, record_id: int) -> str:
        """The scenario's name for a record, or `form #id`."""
        for name, (ref_form, ref_id) in self.refs.items():
            if (ref_form, ref_id) == (form, record_id):
                return name
        return f"{form} #{record_id}"

    def marks(self) -> Marks:
        with self.engine.connect() as conn:
            last = conn.execute(select(func.max(notifications.c.id))).scalar()
        return Marks(int(last or 0), len(self.emails), len(self.webhooks), self.worker.stats.failed)

    def notifications_since(self, mark: Marks, only: list[str] | None) -> list[tuple[str, str]]:
        """(username, message in the reader's language) of the notifications sent since `mark`."""
        names = self.usernames()
        if only is None:
            with self.engine.connect() as conn:
                ids = conn.execute(
                    select(notifications.c.user_id).distinct().where(notifications.c.id > mark.notification)
                ).scalars()
                only = [names[int(i)] for i in ids if int(i) in names]
        found: list[tuple[str, str]] = []
        for username in only:
            items = self.processes.notifications(self.actor(username), False, 200, 0)["items"]
            found += [(username, str(i["message"])) for i in reversed(items) if i["id"] > mark.notification]
        return found

    def failed_jobs(self, mark: Marks) -> list[str]:
        """Jobs that failed in the worker since `mark`: their kind, key and last error."""
        if self.worker.stats.failed == mark.failed_jobs:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(jobs.c.kind, jobs.c.key, jobs.c.last_error)
                .where(jobs.c.last_error.is_not(None), jobs.c.status != "done")
                .order_by(jobs.c.id)
            ).all()
        return [f"a {kind} job failed ({key}): {error}" for kind, key, error in rows]

    def widget(self, dashboard: str, widget: str, username: str, params: dict[str, Any]) -> dict[str, Any]:
        pairs = [(str(k), str(v)) for k, v in params.items()]
        return self.reports.data(self.app_key, dashboard, widget, pairs, self.actor(username))

    # -- time ------------------------------------------------------------------------------

    def run_due(self) -> None:
        run_due(self.worker)

    def move_to(self, target: dt.datetime) -> None:
        if target < self.clock.now:
            raise StepError(
                f"the clock cannot go back: it is {self.local(self.clock.now)}, not {self.local(target)}"
            )
        move_to(self.worker, self.clock, target)

    def local(self, moment: dt.datetime) -> str:
        """A time as the app's zone reads it: 2026-12-02T05:00+08:00."""
        return moment.astimezone(self.zone).isoformat(timespec="minutes")


def demo_users(pack: Path) -> tuple[list[Department], list[Person]]:
    """The departments and users of the pack's demo/users.yaml (passwords left out)."""
    path = pack / "demo" / "users.yaml"
    data = parse_file(path).data if path.is_file() else None
    if not isinstance(data, dict):
        return [], []
    departments = [Department.model_validate(d) for d in data.get("departments", [])]
    people = [
        Person.model_validate({k: v for k, v in u.items() if k in Person.model_fields})
        for u in data.get("users", [])
    ]
    return departments, people


def create_people(engine: Engine, departments: list[Department], people: list[Person]) -> None:
    """Create departments and users (without passwords: they act through API tokens), then
    set the departments' managers."""
    with write(engine) as conn:
        for department in departments:
            create_department(conn, department.key, department.name or department.key, department.parent)
        for person in people:
            create_user(
                conn,
                person.username,
                None,
                person.display_name,
                tuple(person.roles),
                person.department,
                person.language,
                person.email,
            )
        for department in departments:
            if department.manager:
                set_manager(conn, department.key, department.manager)


def _problems(exc: RecordError) -> str:
    return "; ".join(f"{p.field or '-'}: {p.code} ({p.message})" for p in exc.problems) or str(exc)
