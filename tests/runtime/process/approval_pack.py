"""A small pack for the approval tests: a reviewed document, people in a team, a working calendar.

Calendar: weekends off, Monday 2026-12-07 a holiday, Saturday 2026-12-12 a working day
(调休). The clock starts on Friday 2026-12-04 at 10:00 in Shanghai.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity.directory import create_department, create_user
from runtime.process.engine import engine_for
from runtime.process.worker import Worker
from runtime.schema.system import departments, users
from tests.support import ManualClock, user_token, write_files, write_pack

START = dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC)  # Friday 10:00 in Shanghai
APP = """\
app: t
label: T
version: 1.0.0
timezone: Asia/Shanghai
calendar:
  holidays: [2026-12-07]
  workdays: [2026-12-12]
roles: [{key: staff}]
"""
DOC = """
form: doc
label: {zh: 文档, en: Doc}
title_field: number
fields:
  - {key: number, type: text}
  - {key: status, type: select, options: [draft, review, done]}
  - {key: watcher, type: user}
  - {key: owner, type: user, default: current_user}
permissions:
  - {roles: [staff], can: [create, read, update], scope: all}
"""
WORKFLOW = """
workflow: doc_flow
form: doc
field: status
states: [{key: draft, initial: true}, {key: review}, {key: done}]
transitions:
  - {action: submit, from: draft, to: review, effects: [{start_approval: review}]}
  - {action: finish, from: review, to: done, system: true}
  - {action: back, from: review, to: draft, system: true}
"""
APPROVAL = """
approval: review
form: doc
label: {zh: 评审, en: Review}
cc: [{user_field: watcher}]
steps:
  - name: manager
    label: {zh: 经理审批, en: Manager}
    approvers: {users: [ann]}
    remind_after: 1wd
    escalate_after: 2wd
    escalate: reassign
    auto_after: 5wd
    auto_action: approve
    add_approvers: both
    cc: {users: [carl]}
  - name: final
    label: {zh: 终审, en: Final}
    approvers: {users: [bob]}
    auto_after: 4h
    auto_action: return
on_approved: [{transition: finish}]
on_rejected: [{transition: back}]
on_withdrawn: [{transition: back}]
"""
PEOPLE = {"rep": "en", "ann": "zh", "bob": "en", "carl": "zh", "dave": "en", "wendy": "en", "mgr": "zh"}


class Desk:
    """The pack served on a manual clock, with one API client per person."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(root / "pack", {"doc": DOC})
        write_files(
            pack, {"app.yaml": APP, "workflows/doc.yaml": WORKFLOW, "approvals/review.yaml": APPROVAL}
        )
        self.clock = ManualClock(START)
        self.runtime: Runtime = start([pack], db_url, root / "files", clock=self.clock)
        with write(self.runtime.engine) as conn:
            create_user(conn, "mgr", None, roles=("staff",), language="zh")
            create_department(conn, "team", "Team", manager="mgr")
            for name, language in PEOPLE.items():
                if name != "mgr":
                    create_user(conn, name, None, roles=("staff",), department="team", language=language)
            team = conn.execute(select(departments.c.id).where(departments.c.key == "team")).scalar_one()
            conn.execute(update(users).where(users.c.username == "mgr").values(department_id=None))
            assert team
        self.clients = {
            name: TestClient(
                self.runtime.api,
                headers={"Authorization": f"Bearer {user_token(self.runtime.engine, name, ())}"},
            )
            for name in PEOPLE
        }

    def uid(self, name: str) -> int:
        with self.runtime.engine.connect() as conn:
            return int(conn.execute(select(users.c.id).where(users.c.username == name)).scalar_one())

    def submitted(self, number: str = "D-001", **values: Any) -> int:
        rep = self.clients["rep"]
        made = rep.post("/api/v1/t/doc", json={"number": number, "watcher": self.uid("wendy"), **values})
        assert made.status_code == 201, made.text
        record = int(made.json()["id"])
        taken = rep.post(f"/api/v1/t/doc/{record}/transitions/submit", json={})
        assert taken.status_code == 200, taken.text
        return record

    def tasks(self, name: str, view: str = "todo") -> list[dict[str, Any]]:
        answer = self.clients[name].get("/api/v1/tasks", params={"view": view})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    def decide(self, name: str, verb: str = "approve", **body: Any) -> Any:
        task = self.tasks(name)[0]
        return self.clients[name].post(f"/api/v1/tasks/{task['id']}/{verb}", json=body)

    def messages(self, name: str) -> list[str]:
        found = self.clients[name].get("/api/v1/notifications").json()["items"]
        return [item["message"] for item in found]

    def status(self, record: int) -> str:
        return str(self.clients["rep"].get(f"/api/v1/t/doc/{record}").json()["status"])

    def run_due(self) -> int:
        return Worker(engine_for(self.runtime.service), "test").run_until_idle().done

    def at(self, local: str) -> None:
        """Move the clock to a Shanghai time such as '2026-12-08 10:00', then run what is due."""
        moment = dt.datetime.fromisoformat(local).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
        self.clock.now = moment.astimezone(dt.UTC)
        self.run_due()
