"""`formloom worker --at TIME`: refused on a database not published with `--allow-clock`;
on one that is, the work due up to TIME runs, each job at its due time, and the clock never
goes back — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from builder.cli import main
from builder.scenarios.harness import create_people
from builder.scenarios.model import Department, Person
from runtime.boot import start
from runtime.db import write
from runtime.identity.tokens import create_token
from runtime.schema.system import clock, jobs, notifications, users


def hr_notifications(engine: Engine) -> list[dt.datetime]:
    """When hr1's notifications were sent."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(notifications.c.created_at)
            .join(users, users.c.id == notifications.c.user_id)
            .where(users.c.username == "hr1")
        )
        return [row[0] for row in rows]


def test_the_worker_moves_the_clock_of_a_staging_database_only(
    kinds: Path,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FORMLOOM_SMTP_HOST", raising=False)
    pack = str(kinds)
    at = ["worker", pack, "--db", db_url, "--until-idle", "--at"]
    assert main(["publish", pack, "--db", db_url]) == 0
    runtime = start([pack], db_url, tmp_path / "files")
    try:
        create_people(
            runtime.engine,
            [Department(key="team", manager="boss")],
            [
                Person(username="emp", roles=["employee"], department="team"),
                Person(username="boss", roles=["employee"], department="team"),
                Person(username="hr1", roles=["hr"]),
            ],
        )
        with write(runtime.engine) as conn:
            token = create_token(conn, "emp", "test")
        client = TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})
        leave = client.post("/api/v1/kinds/leave", json={"title": "年假", "days": 2})
        assert leave.status_code == 201, leave.text
        submitted = client.post(f"/api/v1/kinds/leave/{leave.json()['id']}/transitions/submit", json={})
        assert submitted.status_code == 200, submitted.text
        with runtime.engine.connect() as conn:  # HR is told a day after the submit: the timer
            due = conn.execute(select(jobs.c.due_at).where(jobs.c.kind == "timer")).scalar_one()
        capsys.readouterr()

        # not marked: refused, nothing run
        assert main([*at, "+2d"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: the database ") and "does not allow moving its clock" in err
        assert "--allow-clock" in err and "Traceback" not in err
        assert hr_notifications(runtime.engine) == []

        # marked by a publish with --allow-clock (the pack is already published)
        assert main(["publish", pack, "--db", db_url, "--allow-clock"]) == 0
        assert "this database now allows moving its clock" in capsys.readouterr().out
        assert main(["publish", pack, "--db", db_url, "--allow-clock"]) == 0
        assert "already allows" in capsys.readouterr().out

        assert main([*at, "+23h"]) == 0  # not yet a day after the submit
        out = capsys.readouterr().out
        assert "job(s) done as of" in out and "the database's clock is there now" in out
        assert hr_notifications(runtime.engine) == []
        with runtime.engine.connect() as conn:
            moved = conn.execute(select(clock.c.moved_to)).scalar_one()
        assert dt.timedelta(hours=22, minutes=59) < moved - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=23)

        assert main([*at, "+2h"]) == 0  # from where the clock was: 25 h after the submit
        (told,) = hr_notifications(runtime.engine)
        assert told == due  # the timer ran as of its due time, not as of the end of the move

        assert main([*at, "2026-01-01T00:00+08:00"]) == 1
        assert "the clock cannot go back" in capsys.readouterr().err
        assert main([*at, "soon"]) == 1
        assert "give a time such as 2026-12-25T09:00+08:00" in capsys.readouterr().err
    finally:
        runtime.engine.dispose()
