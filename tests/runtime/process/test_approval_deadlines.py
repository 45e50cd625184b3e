"""Step deadlines (节点限时) on the test clock: remind, escalate, decide automatically — on working days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from runtime.model.calendar import Calendar, add_workdays, workdays_between
from runtime.process.workdays import shifted
from runtime.schema.system import jobs
from tests.runtime.process.approval_pack import Desk

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
CALENDAR = Calendar(holidays=[dt.date(2026, 12, 7)], workdays=[dt.date(2026, 12, 12)])


@pytest.fixture
def desk(db_url: str, tmp_path: Path) -> Iterator[Desk]:
    built = Desk(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def test_working_days_skip_weekends_and_holidays_and_count_make_up_days() -> None:
    friday = dt.date(2026, 12, 4)
    assert add_workdays(friday, 1, CALENDAR) == dt.date(2026, 12, 8)  # Sat, Sun, the Monday holiday
    assert add_workdays(friday, 5, CALENDAR) == dt.date(2026, 12, 12)  # the Saturday worked (调休)
    assert add_workdays(dt.date(2026, 12, 8), -1, CALENDAR) == friday
    assert workdays_between(friday, dt.date(2026, 12, 14), CALENDAR) == 6
    assert workdays_between(dt.date(2026, 12, 14), friday, CALENDAR) == -6
    start = dt.datetime(2026, 12, 4, 10, 0, tzinfo=SHANGHAI)
    zone = __import__("zoneinfo").ZoneInfo("Asia/Shanghai")
    assert shifted(start, "1wd 4h", CALENDAR, zone) == dt.datetime(2026, 12, 8, 14, 0, tzinfo=SHANGHAI)
    assert shifted(start, "2d", CALENDAR, zone) == dt.datetime(2026, 12, 6, 10, 0, tzinfo=SHANGHAI)


def test_a_step_reminds_after_one_working_day(desk: Desk) -> None:
    desk.submitted()
    reminders = lambda: [m for m in desk.messages("ann") if m.startswith("催办")]  # noqa: E731
    desk.at("2026-12-08 09:59")
    assert reminders() == []
    desk.at("2026-12-08 10:00")
    assert reminders() == ["催办：文档 D-001 仍在等待审批（评审 · 经理审批）"]
    desk.at("2026-12-08 12:00")
    assert len(reminders()) == 1


def test_an_overdue_step_is_escalated_to_the_holders_manager(desk: Desk) -> None:
    desk.submitted()
    desk.at("2026-12-09 09:59")
    assert desk.tasks("mgr") == []
    desk.at("2026-12-09 10:00")
    assert [t["step"] for t in desk.tasks("mgr")] == ["manager"]
    assert desk.tasks("ann") == []  # reassigned: ann's task moved to her manager
    escalated = [t for t in desk.tasks("ann", "done") if t["status"] == "escalated"]
    assert len(escalated) == 1
    assert "审批超时，已转交给您：文档 D-001" in desk.messages("mgr")[0]
    assert desk.decide("mgr").status_code == 200
    assert [t["step"] for t in desk.tasks("bob")] == ["final"]


def test_a_step_decides_itself_when_its_time_is_up_once_across_workers(desk: Desk) -> None:
    record = desk.submitted()
    desk.at("2026-12-12 09:59")  # past the escalation: the manager holds the task now
    assert desk.status(record) == "review" and [t["step"] for t in desk.tasks("mgr")] == ["manager"]
    desk.at("2026-12-12 10:00")  # five working days: approved automatically
    desk.run_due()
    assert desk.tasks("mgr") == []
    assert [t["step"] for t in desk.tasks("bob")] == ["final"]
    history = desk.clients["rep"].get(f"/api/v1/t/doc/{record}/history").json()["items"]
    assert [h["action"] for h in history].count("deadline_auto") == 1
    desk.at("2026-12-12 14:00")  # the final step returns it after four hours
    assert desk.status(record) == "draft"
    assert desk.messages("rep")[0].startswith("Returned to you to revise: Doc D-001 (Review)")
    with desk.runtime.engine.connect() as conn:
        done = select(func.count()).where(jobs.c.kind == "deadline", jobs.c.status == "done")
        assert conn.execute(done).scalar_one() == 4  # remind, escalate, auto, auto: once each


def test_deadlines_of_a_decided_step_do_nothing(desk: Desk) -> None:
    record = desk.submitted()
    assert desk.decide("ann").status_code == 200
    desk.at("2026-12-20 10:00")
    assert desk.tasks("mgr") == []
    assert [m for m in desk.messages("ann") if m.startswith("催办")] == []
    assert desk.status(record) == "draft"  # only the final step's own auto-return acted
