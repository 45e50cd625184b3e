"""Running one scenario on one fresh database: its setup, its steps, its expectations.

A step a user takes goes through the REST API as that user; then the worker runs what is
due (e-mails, webhooks). A time step moves the clock, running the jobs due on the way.
After each step its expectations are checked; a step that cannot be taken, or whose
expectations fail, ends the run with located messages and the steps that led there.
"""

from __future__ import annotations

import time
from typing import Any

from builder.scenarios.expectations import Expectations
from builder.scenarios.harness import Answer, Harness, Marks, StepError
from builder.scenarios.loading import LoadedStep, Run
from builder.scenarios.model import (
    AdvanceStep,
    ApproveStep,
    AtStep,
    CreateStep,
    DelegateStep,
    DeleteStep,
    FindStep,
    MergeStep,
    RejectStep,
    TransferStep,
    TransitionStep,
    UpdateStep,
    UploadStep,
    UserStep,
    advance_of,
    parse_moment,
)
from builder.scenarios.results import Failure, Result
from runtime.identity.actor import SYSTEM
from runtime.loading.source import PathKey
from runtime.records.errors import RecordError

MAX_LIST = 500


def execute(run: Run, harness: Harness, database: str) -> Result:
    """Run `run` on the harness's database, emptied first."""
    began = time.perf_counter()
    result = Result(run, database)
    try:
        harness.begin(parse_moment(run.start, harness.zone))
        _Run(run, harness, result).go()
    finally:
        result.seconds = time.perf_counter() - began
    return result


class _Run:
    def __init__(self, run: Run, harness: Harness, result: Result) -> None:
        self.run = run
        self.h = harness
        self.result = result
        self.suite = run.suite
        self.pending: list[tuple[PathKey, str]] = []  # a find's count, failed before its check

    def fail(self, path: PathKey, message: str, *, key: bool = False) -> None:
        self.result.failures.append(Failure(self.suite.at(path, key=key), message))

    # -- the run -----------------------------------------------------------------------

    def go(self) -> None:
        if not self.setup():
            return
        for step in self.run.steps:
            where = self.suite.at(step.path)
            mark = self.h.marks()
            try:
                answer, told = self.perform(step)
            except StepError as exc:
                self.result.trail.append(f"{where}  {self.describe(step)}")
                self.fail(step.path, str(exc))
                return
            self.result.trail.append(f"{where}  {told}")
            if isinstance(step.spec, UserStep):
                self.h.run_due()
            before = len(self.result.failures)
            for problem in self.h.failed_jobs(mark):
                self.fail(step.path, problem)
            self.check(step, answer, mark)
            if len(self.result.failures) > before:
                return

    def setup(self) -> bool:
        run = self.run
        where = self.suite.at(run.path)
        self.result.trail.append(f"{where}  set up: clock at {self.h.local(self.h.clock.now)}")
        try:
            self.h.people(run.departments, run.users, run.demo_users)
        except Exception as exc:  # a department or user that cannot be made as written
            self.fail(run.path, f"the users could not be set up: {exc}")
            return False
        if run.demo_data:
            self.h.demo_data()
        for record in run.records:
            try:
                self.h.create_as_system(record.form, record.values)
            except StepError as exc:
                self.fail(record.path, str(exc))
                return False
        self.h.run_due()
        return True

    # -- steps -------------------------------------------------------------------------

    def actor(self, step: LoadedStep) -> str:
        spec = step.spec
        name = spec.as_ if isinstance(spec, UserStep) else None
        name = name or self.run.actor
        if name is None:
            raise StepError("who takes this step? give 'as'")
        return name

    def describe(self, step: LoadedStep) -> str:
        spec = step.spec
        who = getattr(spec, "as_", None) or self.run.actor or "system"
        if isinstance(spec, CreateStep):
            return f"{who} creates {spec.create}" + (f" '{spec.ref}'" if spec.ref else "")
        if isinstance(spec, UpdateStep):
            return f"{who} updates {spec.update}: {', '.join(spec.values)}"
        if isinstance(spec, DeleteStep):
            return f"{who} deletes {spec.delete}"
        if isinstance(spec, TransitionStep):
            return f"{who} takes '{spec.transition}' on {spec.record}"
        if isinstance(spec, ApproveStep | RejectStep | DelegateStep | TransferStep):
            verb = step.kind + "s"
            at = f" at {spec.step}" if spec.step else ""
            to = f" to {spec.to}" if isinstance(spec, DelegateStep | TransferStep) else ""
            return f"{who} {verb} the task on {getattr(spec, step.kind)}{at}{to}"
        if isinstance(spec, MergeStep):
            return f"{who} merges {', '.join(spec.from_)} into {spec.merge}"
        if isinstance(spec, UploadStep):
            return f"{who} uploads '{spec.upload}'"
        if isinstance(spec, FindStep):
            where = f" where {spec.where}" if spec.where else ""
            return f"find {spec.find}{where}" + (f" as '{spec.ref}'" if spec.ref else "")
        if isinstance(spec, AdvanceStep):
            return f"advance {spec.advance}"
        if isinstance(spec, AtStep):
            return f"at {spec.at}"
        return "check"

    def perform(self, step: LoadedStep) -> tuple[Answer | None, str]:
        spec, h, app = step.spec, self.h, self.h.app_key
        told = self.describe(step)
        if isinstance(spec, AdvanceStep | AtStep):
            if isinstance(spec, AdvanceStep):
                target = h.clock.now + advance_of(spec.advance)
            else:
                target = parse_moment(spec.at, h.zone)
            h.move_to(target)
            return None, f"{told} (clock at {h.local(h.clock.now)})"
        if isinstance(spec, FindStep):
            return self.find(spec), told
        if not isinstance(spec, UserStep):
            return None, told
        who = self.actor(step)
        if isinstance(spec, CreateStep):
            params = {"allow_duplicate": "true"} if spec.allow_duplicate else {}
            answer = h.call(
                "POST", f"/api/v1/{app}/{spec.create}", who, json=h.resolve(spec.values), params=params
            )
            answer.form = spec.create
            if answer.ok and isinstance(answer.body, dict):
                answer.record_id = int(answer.body["id"])
                if spec.ref:
                    h.refs[spec.ref] = (spec.create, answer.record_id)
            return answer, told
        if isinstance(spec, UpdateStep):
            form, record_id = h.record(spec.update)
            values = h.rows_kept(form, record_id, h.resolve(spec.values))
            params = {"allow_duplicate": "true"} if spec.allow_duplicate else {}
            answer = h.call("PATCH", f"/api/v1/{app}/{form}/{record_id}", who, json=values, params=params)
            return _on(answer, form, record_id), told
        if isinstance(spec, DeleteStep):
            form, record_id = h.record(spec.delete)
            return _on(h.call("DELETE", f"/api/v1/{app}/{form}/{record_id}", who), form, record_id), told
        if isinstance(spec, TransitionStep):
            form, record_id = h.record(spec.record)
            body: dict[str, Any] = {"values": h.rows_kept(form, record_id, h.resolve(spec.values))}
            if spec.comment is not None:
                body["comment"] = spec.comment
            url = f"/api/v1/{app}/{form}/{record_id}/transitions/{spec.transition}"
            return _on(h.call("POST", url, who, json=body), form, record_id), told
        if isinstance(spec, ApproveStep | RejectStep | DelegateStep | TransferStep):
            return self.decide(step.kind, spec, who), told
        if isinstance(spec, MergeStep):
            form, record_id = h.record(spec.merge)
            merged = [h.record(name)[1] for name in spec.from_]
            chosen = {key: h.record(name)[1] for key, name in spec.values.items()}
            body = {"merge": merged, **({"values": chosen} if chosen else {})}
            answer = h.call("POST", f"/api/v1/{app}/{form}/{record_id}/merge", who, json=body)
            return _on(answer, form, record_id), told
        if isinstance(spec, UploadStep):
            return self.upload(spec, who), told
        raise StepError(f"unknown step kind '{step.kind}'")  # pragma: no cover - the loader refuses it

    def decide(
        self, kind: str, spec: ApproveStep | RejectStep | DelegateStep | TransferStep, who: str
    ) -> Answer:
        h = self.h
        ref = str(getattr(spec, kind))
        form, record_id = h.record(ref)
        mine = [
            t
            for t in h.open_tasks(who)
            if t["form"] == form
            and t["record_id"] == record_id
            and (spec.step is None or t["step"] == spec.step)
        ]
        if not mine:
            at = f" at step {spec.step}" if spec.step else ""
            raise StepError(
                f"{who} holds no open task on {ref}{at}; open tasks on {ref}: {self.holders(form, record_id)}"
            )
        if len(mine) > 1:
            steps = ", ".join(str(t["step"]) for t in mine)
            raise StepError(f"{who} holds {len(mine)} open tasks on {ref} (steps {steps}): give 'step'")
        task = mine[0]["id"]
        body: dict[str, Any] = {}
        if spec.comment is not None:
            body["comment"] = spec.comment
        if isinstance(spec, RejectStep) and spec.to_step is not None:
            body["to_step"] = spec.to_step
        if isinstance(spec, DelegateStep | TransferStep):
            body["to"] = h.user_id(spec.to)
        answer = h.call("POST", f"/api/v1/tasks/{task}/{kind}", who, json=body)
        return _on(answer, form, record_id)

    def holders(self, form: str, record_id: int) -> str:
        """Who holds the open tasks on a record, at which step: 'qian.manager at manager'."""
        names = self.h.usernames()
        held = [
            f"{names.get(task['assignee']['id'], task['assignee']['display'])} at {task['step']}"
            for approval in self.h.processes.approvals(self.h.app_key, form, record_id, SYSTEM)
            for task in approval["tasks"]
            if task["status"] == "open" and task.get("assignee")
        ]
        return ", ".join(held) or "none"

    def upload(self, spec: UploadStep, who: str) -> Answer:
        if spec.file is not None:
            path = self.suite.pack / spec.file
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise StepError(f"cannot read {spec.file}: {exc}") from exc
            name = spec.name or path.name
        else:
            content = str(spec.content).encode("utf-8")
            name = spec.name or f"{spec.upload}.txt"
        answer = self.h.upload(who, name, content, spec.type)
        if answer.ok and isinstance(answer.body, dict):
            self.h.files[spec.upload] = str(answer.body["id"])
        return answer

    def find(self, spec: FindStep) -> Answer:
        h = self.h
        params = [("limit", str(MAX_LIST))] + ([("where", spec.where)] if spec.where else [])
        if spec.as_ is not None:
            answer = h.call("GET", f"/api/v1/{h.app_key}/{spec.find}", spec.as_, params=params)
            if not answer.ok:
                raise StepError(f"{spec.as_} could not list {spec.find}: {answer.describe()}")
            items = list(answer.body["items"])
        else:
            try:
                items = list(h.service.list_page(h.app_key, spec.find, params, SYSTEM)["items"])
            except RecordError as exc:
                raise StepError(f"could not list {spec.find}: {exc}") from exc
        answer = Answer(200, {"items": items}, spec.find)
        if spec.count is not None:
            self.result.expectations += 1
            if len(items) != spec.count:
                ids = ", ".join(f"#{i['id']}" for i in items[:10])
                found = f"found {len(items)}" + (f": {ids}" if ids else "")
                self.pending.append((("count",), f"expected {spec.count} {spec.find} record(s), {found}"))
        if spec.ref is not None:
            if len(items) != 1:
                raise StepError(f"found {len(items)} {spec.find} record(s); '{spec.ref}' names exactly one")
            answer.record_id = int(items[0]["id"])
            h.refs[spec.ref] = (spec.find, answer.record_id)
        return answer

    # -- expectations ------------------------------------------------------------------

    def check(self, step: LoadedStep, answer: Answer | None, mark: Marks) -> None:
        for relative, message in self.pending:
            self.fail((*step.path, *relative), message)
        self.pending = []
        raw = step.spec.expect
        expects = raw if isinstance(raw, list) else [raw] if raw is not None else []
        refusal = any(e.status is not None or e.field or e.code or e.message for e in expects)
        if answer is not None and not answer.ok and not refusal:
            who = (
                self.actor(step)
                if isinstance(step.spec, UserStep) and not isinstance(step.spec, FindStep)
                else ""
            )
            self.fail(step.path, f"{who} was refused: {answer.describe()}".strip())
            return
        for index, expect in enumerate(expects):
            path: PathKey = (*step.path, "expect", index) if isinstance(raw, list) else (*step.path, "expect")
            Expectations(self.h, self.result, expect, path, answer, mark).check()


def _on(answer: Answer, form: str, record_id: int) -> Answer:
    answer.form, answer.record_id = form, record_id
    return answer
