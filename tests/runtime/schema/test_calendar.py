"""The working calendar in SQL: rows made when a runtime first needs them, remade when it changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from runtime.boot import start
from runtime.db import make_engine, write
from runtime.model.calendar import CALENDAR_FIRST, CALENDAR_LAST, Calendar
from runtime.schema.calendar import ensure_calendar, working_days
from runtime.schema.migrate import upgrade_system_tables
from runtime.schema.system import workdays
from tests.support import admin_token, write_files, write_pack

APP = """\
app: t
label: T
version: '1'
timezone: Asia/Shanghai
calendar:
  holidays: [2026-10-01, 2026-10-02, 2026-10-05, 2026-10-06, 2026-10-07]
  workdays: [2026-10-10]
"""
TICKET = """\
form: ticket
label: Ticket
fields:
  - {key: title, type: text}
  - {key: opened, type: date}
  - {key: answered, type: date}
  - {key: age, type: integer, formula: "WORKDAYS_BETWEEN(opened, answered)"}
"""


def test_rows_are_made_when_a_query_first_needs_them_and_agree_with_formulas(
    db_url: str, tmp_path: Path
) -> None:
    pack = write_pack(tmp_path / "pack", {"ticket": TICKET})
    write_files(pack, {"app.yaml": APP})
    runtime = start([pack], db_url, tmp_path / "files")
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(workdays)).scalar_one() == 0  # not at start
    from fastapi.testclient import TestClient

    client = TestClient(runtime.api, headers={"Authorization": f"Bearer {admin_token(runtime.engine)}"})
    made = client.post(
        "/api/v1/t/ticket", json={"title": "a", "opened": "2026-09-30", "answered": "2026-10-12"}
    )
    assert made.json()["age"] == 4  # Oct 8, 9, the Saturday worked, Oct 12
    found = client.get("/api/v1/t/ticket", params={"where": "WORKDAYS_BETWEEN(opened, answered) == 4"})
    assert [item["title"] for item in found.json()["items"]] == ["a"]
    later = client.get("/api/v1/t/ticket", params={"where": "ADD_WORKDAYS(opened, 3) == #2026-10-10#"})
    assert [item["title"] for item in later.json()["items"]] == ["a"]
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(workdays)).scalar_one() == len(
            working_days(runtime.live.service.apps["t"].app.calendar)
        )
    runtime.engine.dispose()


def test_rows_are_remade_when_the_calendar_changes(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_system_tables(engine)
    plain, festive = Calendar(), Calendar(holidays=[dt.date(2026, 10, 1)])
    with write(engine) as conn:
        ensure_calendar(conn, "t", plain)
        ensure_calendar(conn, "t", plain)  # the same calendar again: nothing to do
    with write(engine) as conn:
        ensure_calendar(conn, "t", festive)
    with engine.connect() as conn:
        days = set(conn.execute(select(workdays.c.day).where(workdays.c.app == "t")).scalars())
    assert dt.date(2026, 10, 1) not in days and dt.date(2026, 10, 2) in days
    assert min(days) == CALENDAR_FIRST and max(days) == CALENDAR_LAST  # both are working days
    engine.dispose()
