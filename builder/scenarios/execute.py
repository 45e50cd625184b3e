"""Running one scenario on one fresh database: its setup, its steps, its expectations.

A step a user takes goes through the REST API as that user; then the worker runs what is
due (e-mails, webhooks). A time step moves the clock, running the jobs due on the way.
After each step its expectations are checked; a step that cannot be taken, or whose
expectations fail, ends the run with located messages and the steps that led there.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.scenarios.compare import Names, matches, pair_up, show
from builder.scenarios.harness import Answer, Harness, Marks, StepError
from builder.scenarios.loading import LoadedStep, Run
from builder.scenarios.model import (
    AdvanceStep,
    ApproveStep,
    AtStep,
    CreateStep,
    DashboardRows,
    DelegateStep,
    DeleteStep,
    Expect,
    FindStep,
    MergeStep,
    RejectStep,
    Sent,
    TaskItem,
    TransferStep,
    TransitionStep,
    UpdateStep,
    UploadStep,
    UserStep,
    Webhook,
    advance_of,
    parse_moment,
)
from runtime.identity.actor import SYSTEM
from runtime.loading.source import PathKey
from runtime.model import App
from runtime.records.errors import RecordError

MAX_LIST = 500


@dataclass
class Failure:
    """One thing that did not hold, located in the scenario file."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Result:
    """How one run went on one database."""

    run: Run
    database: str
    failures: list[Failure] = field(default_factory=list)
    trail: list[str] = field(default_factory=list)
    expectations: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def name(self) -> str:
        return f"{self.run.title} [{self.database}]"


def execute(run: Run, apps: list[App], url: str, database: str, files: Path) -> Result:
    """Run `run` on the (fresh) database at `url`."""
    began = time.perf_counter()
    result = Result(run, database)
    zone = apps[0].zone()
    harness = Harness(apps, run.suite.pack, url, files, parse_moment(run.start, zone))
    try:
        _Run(run, harness, result).go()
    finally:
        harness.close()
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
            _Expectations(self, expect, path, answer, mark).check()


def _on(answer: Answer, form: str, record_id: int) -> Answer:
    answer.form, answer.record_id = form, record_id
    return answer


class _Expectations:
    """The checks of one `expect` map."""

    def __init__(self, run: _Run, expect: Expect, path: PathKey, answer: Answer | None, mark: Marks) -> None:
        self.run = run
        self.h = run.h
        self.expect = expect
        self.path = path
        self.answer = answer
        self.mark = mark
        self.names = Names(dict(self.h.refs), self.h.usernames(), self.h.zone)

    def fail(self, relative: PathKey, message: str, *, key: bool = False) -> None:
        self.run.fail((*self.path, *relative), message, key=key)

    def count(self) -> None:
        self.run.result.expectations += 1

    def check(self) -> None:
        e = self.expect
        if e.status is not None or e.field or e.code or e.message:
            self.refusal()
        if e.state is not None or e.values is not None:
            self.record()
        if e.tasks is not None:
            self.tasks(e.tasks)
        if e.notifications is not None:
            self.notifications(e.notifications)
        if e.emails is not None:
            self.emails(e.emails)
        if e.webhooks is not None:
            self.webhooks(e.webhooks)
        boards = e.dashboard if isinstance(e.dashboard, list) else [e.dashboard] if e.dashboard else []
        for index, board in enumerate(boards):
            self.dashboard(board, ("dashboard", index) if isinstance(e.dashboard, list) else ("dashboard",))

    def refusal(self) -> None:
        e, answer = self.expect, self.answer
        self.count()
        if answer is None:
            self.fail((), "this step has no answer to be refused")
            return
        if e.status is not None and answer.status != e.status:
            got = "it was accepted" if answer.ok else "got"
            self.fail(("status",), f"expected {e.status}, {got} {answer.describe()}")
            return
        if e.status is None and answer.ok:
            self.fail((), f"expected a refusal, got {answer.status}")
            return
        if not (e.field or e.code or e.message):
            return
        found = [
            p
            for p in answer.errors()
            if (e.field is None or _same_field(str(p.get("field") or ""), e.field))
            and (e.code is None or p.get("code") == e.code)
            and (e.message is None or e.message in str(p.get("message") or ""))
        ]
        if not found:
            wanted = ", ".join(
                f"{k} {show(v)}"
                for k, v in (("field", e.field), ("code", e.code), ("message", e.message))
                if v
            )
            place = "field" if e.field else "code" if e.code else "message"
            self.fail((place,), f"expected a problem with {wanted}, got {answer.describe()}")

    def record(self) -> None:
        e = self.expect
        if e.record is not None:
            form, record_id = self.h.record(e.record)
        elif self.answer is not None and self.answer.form and self.answer.record_id:
            form, record_id = self.answer.form, self.answer.record_id
        else:
            self.fail((), "which record? give 'record'")
            return
        try:
            current = self.h.read(form, record_id)
        except RecordError:
            self.fail((), f"{self.h.name_of(form, record_id)} no longer exists")
            return
        if e.state is not None:
            self.count()
            key = self.h.state_field(form)
            got = current.get(key) if key else None
            if got != e.state:
                self.fail(("state",), f"expected state '{e.state}', got {show(got)}")
        for key, wanted in (e.values or {}).items():
            self.count()
            got = current.get(key)
            if not matches(wanted, got, self.names):
                self.fail(("values", key), f"expected {key} {show(wanted)}, got {show(got, self.names)}")

    def tasks(self, expected: dict[str, list[str | TaskItem]]) -> None:
        for username, items in expected.items():
            self.count()
            held = self.h.open_tasks(username)
            got = [(self.h.name_of(str(t["form"]), int(t["record_id"])), str(t["step"])) for t in held]
            wanted = [(i, None) if isinstance(i, str) else (i.record, i.step) for i in items]
            pairs = pair_up(wanted, got, lambda w, g: w[0] == g[0] and (w[1] is None or w[1] == g[1]))
            if len(pairs) != len(wanted) or len(got) != len(wanted):
                self.fail(
                    ("tasks", username),
                    f"expected {username} to hold {_tasks(wanted) or 'no open task'}, "
                    f"got {_tasks(got) or 'none'}",
                    key=True,
                )

    def notifications(self, expected: dict[str, list[str]] | list[Sent]) -> None:
        if isinstance(expected, dict):
            got = self.h.notifications_since(self.mark, list(expected))
            for username, texts in expected.items():
                self.count()
                mine = [m for u, m in got if u == username]
                if not _contains_each(texts, mine):
                    self.fail(
                        ("notifications", username),
                        _sent_message(username, texts, mine, "notification"),
                        key=True,
                    )
            return
        self.count()
        got = self.h.notifications_since(self.mark, None)
        wanted = [(s.to, _texts(s.contains)) for s in expected]
        pairs = pair_up(wanted, got, lambda w, g: w[0] == g[0] and all(t in g[1] for t in w[1]))
        if len(pairs) != len(wanted) or len(got) != len(wanted):
            self.fail(("notifications",), _list_message("notification", wanted, got))

    def emails(self, expected: dict[str, list[str]] | list[Sent]) -> None:
        sent = self.h.emails[self.mark.emails :]
        addresses = self.h.emails_of()

        def address(name: str) -> str:
            return name if "@" in name else addresses.get(name, f"<{name} has no e-mail address>")

        texts_of = [(str(m["to"]), f"{m['subject']}\n{m['body']}") for m in sent]
        if isinstance(expected, dict):
            for name, texts in expected.items():
                self.count()
                mine = [t for to, t in texts_of if to == address(name)]
                if not _contains_each(texts, mine):
                    self.fail(("emails", name), _sent_message(name, texts, mine, "e-mail"), key=True)
            return
        self.count()
        wanted = [(address(s.to), _texts(s.contains), s.subject) for s in expected]
        got = [(str(m["to"]), f"{m['subject']}\n{m['body']}", str(m["subject"])) for m in sent]
        pairs = pair_up(
            wanted,
            got,
            lambda w, g: w[0] == g[0] and all(t in g[1] for t in w[1]) and (w[2] is None or w[2] in g[2]),
        )
        if len(pairs) != len(wanted) or len(got) != len(wanted):
            self.fail(
                ("emails",),
                _list_message("e-mail", [(w[0], w[1]) for w in wanted], [(g[0], g[1]) for g in got]),
            )

    def webhooks(self, expected: list[Webhook]) -> None:
        self.count()
        sent = self.h.webhooks[self.mark.webhooks :]

        def fits(wanted: Webhook, call: dict[str, Any]) -> bool:
            body = call["body"] if isinstance(call["body"], dict) else {}
            return (
                (wanted.url is None or wanted.url == call["url"])
                and (wanted.event is None or wanted.event == body.get("event"))
                and (wanted.body is None or matches(wanted.body, body, self.names))
            )

        pairs = pair_up(expected, sent, fits)
        if len(pairs) != len(expected) or len(sent) != len(expected):
            calls = "; ".join(f"{c['url']} {show(c['body'])[:300]}" for c in sent) or "none"
            self.fail(
                ("webhooks",),
                f"expected {len(expected)} webhook call(s) as written, got {len(sent)}: {calls}",
            )

    def dashboard(self, board: DashboardRows, where: PathKey) -> None:
        self.count()
        key = board.dashboard or self.h.app.dashboards[0].dashboard
        try:
            data = self.h.widget(key, board.widget, board.as_, board.params)
        except RecordError as exc:
            self.fail(where, f"{board.as_} cannot read widget {board.widget}: {exc}")
            return
        columns = [str(c["key"]) for c in data["columns"]]
        rows = []
        for row in data["rows"]:
            cells = [*row["dimensions"], *row["values"]]
            flat = {}
            for column, cell in zip(columns, cells, strict=False):
                flat[column] = cell
            rows.append(flat)

        def fits(wanted: dict[str, Any], row: dict[str, Any]) -> bool:
            return all(k in row and _cell(v, row[k], self.names) for k, v in wanted.items())

        if board.ordered:
            ok = len(rows) == len(board.rows) and all(
                fits(w, r) for w, r in zip(board.rows, rows, strict=False)
            )
        else:
            ok = len(rows) == len(board.rows) and len(pair_up(board.rows, rows, fits)) == len(rows)
        if not ok:
            shown = "; ".join(
                ", ".join(
                    f"{k}: {show(v['display'] if isinstance(v, dict) and 'value' in v else v)}"
                    for k, v in r.items()
                )
                for r in rows
            )
            self.fail(
                (*where, "rows"),
                f"widget {board.widget} as {board.as_}: expected {len(board.rows)} row(s) as written, "
                f"got {len(rows)}: {shown or 'none'}",
            )


def _cell(wanted: Any, cell: Any, names: Names) -> bool:
    if isinstance(cell, dict) and "value" in cell:  # a dimension: its value or its label
        return matches(wanted, cell["value"], names) or matches(wanted, cell.get("display"), names)
    return matches(wanted, cell, names)


def _same_field(got: str, wanted: str) -> bool:
    plain = re.sub(r"\[\d+\]", "", got)
    return wanted in (got, plain) or got.endswith("." + wanted) or plain.endswith("." + wanted)


def _texts(contains: str | list[str] | None) -> list[str]:
    if contains is None:
        return []
    return [contains] if isinstance(contains, str) else list(contains)


def _contains_each(texts: list[str], got: list[str]) -> bool:
    pairs = pair_up(texts, got, lambda t, g: t in g)
    return len(pairs) == len(texts) and len(got) == len(texts)


def _sent_message(who: str, texts: list[str], got: list[str], kind: str) -> str:
    wanted = (
        f"{len(texts)} {kind}(s) containing " + ", ".join(show(t) for t in texts) if texts else f"no {kind}"
    )
    found = "; ".join(show(_one_line(g)) for g in got) or "none"
    return (
        f"expected {who} to get {wanted}, got {len(got)}: {found}"
        if got
        else f"expected {who} to get {wanted}, got none"
    )


def _list_message(kind: str, wanted: list[tuple[str, list[str]]], got: list[tuple[str, str]]) -> str:
    def one(to: str, texts: list[str]) -> str:
        return to + (" (containing " + ", ".join(show(t) for t in texts) + ")" if texts else "")

    found = "; ".join(f"{to}: {show(_one_line(text))}" for to, text in got) or "none"
    if not wanted:
        return f"expected no {kind}, got {len(got)}: {found}"
    expected = "; ".join(one(to, texts) for to, texts in wanted)
    return f"expected {len(wanted)} {kind}(s), to {expected}; got {len(got)}: {found}"


def _one_line(text: str) -> str:
    """A message on one line: an e-mail's subject is its first line, so it is not shown twice."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    unique = [line for i, line in enumerate(lines) if line not in lines[:i]]
    return " / ".join(unique)[:200]


def _tasks(items: Sequence[tuple[str, str | None]]) -> str:
    return ", ".join(f"{ref} at {step}" if step else ref for ref, step in items)
