"""Checking what must hold after a step: refusals, states and values, open tasks,
notifications, captured e-mails and webhooks, dashboard rows. Each failure is located at
the expectation's place in the scenario file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from builder.scenarios.compare import Names, matches, pair_up, show
from builder.scenarios.harness import Answer, Harness, Marks
from builder.scenarios.model import DashboardRows, Expect, Sent, TaskItem, Webhook
from builder.scenarios.results import Failure, Result
from runtime.loading.source import PathKey
from runtime.records.errors import RecordError


class Expectations:
    """The checks of one `expect` map after a step; what fails goes into the run's result."""

    def __init__(
        self,
        harness: Harness,
        result: Result,
        expect: Expect,
        path: PathKey,
        answer: Answer | None,
        mark: Marks,
    ) -> None:
        self.h = harness
        self.result = result
        self.expect = expect
        self.path = path
        self.answer = answer
        self.mark = mark
        self.names = Names(dict(self.h.refs), self.h.usernames(), self.h.zone)

    def fail(self, relative: PathKey, message: str, *, key: bool = False) -> None:
        where = self.result.run.suite.at((*self.path, *relative), key=key)
        self.result.failures.append(Failure(where, message))

    def count(self) -> None:
        self.result.expectations += 1

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
        wanted = [(address(s.to), _texts(s.contains), s.subject, s.attachments) for s in expected]
        got = [
            (
                str(m["to"]),
                f"{m['subject']}\n{m['body']}",
                str(m["subject"]),
                list(m.get("attachments") or []),
            )
            for m in sent
        ]
        pairs = pair_up(
            wanted,
            got,
            lambda w, g: (
                w[0] == g[0]
                and all(t in g[1] for t in w[1])
                and (w[2] is None or w[2] in g[2])
                and (w[3] is None or sorted(w[3]) == sorted(g[3]))
            ),
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
