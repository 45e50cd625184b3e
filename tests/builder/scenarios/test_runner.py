"""Running scenarios: every step and expectation kind works (the kinds pack), each kind of
expectation fails with a located message and the steps that led there, runs are isolated,
`-k` selects, `--junit` reports — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from builder.cli import main
from builder.scenarios.model import EXPECT_KINDS, STEP_KINDS, Expect
from builder.scenarios.runner import Databases, load, run_all, selected

HERE = Path(__file__).resolve().parent

# scenario of tests/builder/scenarios/wrong.yaml -> what it prints first
WRONG = {
    "wrong state": "tests/wrong.yaml:14:25: expected state 'pending', got 'draft'",
    "wrong value": "tests/wrong.yaml:19:34: expected hours 8, got 12.0",
    "wrong tasks": "tests/wrong.yaml:29:26: expected boss to hold no open task, got leave at manager",
    "wrong notifications": "tests/wrong.yaml:35:34: expected boss to get no notification, got 1: "
    "'待您审批：请假 A（请假审批 · manager）'",
    "wrong e-mails": "tests/wrong.yaml:42:26: expected 1 e-mail(s), to hr1@example.cn (containing '年假'); "
    "got 1: hr1@example.cn: 'Leave A has waited a day'",
    "wrong webhooks": "tests/wrong.yaml:46:28: expected 1 webhook call(s) as written, got 0: none",
    "wrong dashboard": "tests/wrong.yaml:50:64: widget by_status as hr1: expected 1 row(s) as written, "
    "got 1: status: 'draft', requests: 1, days: 1.0",
    "wrong refusal": "tests/wrong.yaml:55:38: expected a problem with field 'days', code 'min', "
    "got 422 days: max (must be at most 30)",
    "unexpected refusal": "tests/wrong.yaml:58:9: emp was refused: 422 days: max (must be at most 30)",
    "unexpected acceptance": "tests/wrong.yaml:64:26: expected 422, it was accepted 201",
    "no task to approve": "tests/wrong.yaml:68:9: hr1 holds no open task on leave; open tasks on leave: none",
    "nothing expected after a day": "tests/wrong.yaml:76:33: expected no notification, got 1: "
    "hr1: 'Leave A has waited a day'",
    "wrong count": "tests/wrong.yaml:81:16: expected 2 leave record(s), found 1: #1",
}


def run(paths: list[Path], databases: Databases, keywords: list[str] | None = None) -> tuple[int, str]:
    """(failed runs, printed report) of running the scenarios."""
    suites, packs = load([str(p) for p in paths])
    out = io.StringIO()
    summary = run_all(selected(suites, keywords or []), packs, databases, out)
    return len(summary.failed), out.getvalue() + summary.line()


def test_the_kinds_pack_uses_every_step_and_expectation_kind() -> None:
    suites, _ = load([str(HERE / "kinds")])
    steps = [step for suite in suites for r in suite.runs for step in r.steps]
    assert {step.kind for step in steps} == set(STEP_KINDS)
    expects: list[Expect] = []
    for step in steps:
        raw = step.spec.expect
        expects += raw if isinstance(raw, list) else [raw] if raw is not None else []
    used = {key for e in expects for key in e.model_fields_set}
    assert used >= {*EXPECT_KINDS, "record"}


def test_every_step_and_expectation_kind_works(databases: Databases) -> None:
    failed, report = run([HERE / "kinds"], databases)
    assert failed == 0, report
    assert report.splitlines()[-1].startswith("3 scenario run(s): 3 passed (50 expectations checked)")


def test_each_kind_of_expectation_fails_at_its_place(kinds: Path, databases: Databases) -> None:
    shutil.copy(HERE / "wrong.yaml", kinds / "tests" / "wrong.yaml")
    failed, report = run([kinds / "tests" / "wrong.yaml"], databases)
    assert failed == len(WRONG), report
    lines = report.splitlines()
    for name, message in WRONG.items():
        head = f"FAIL  tests/wrong.yaml: wrong › {name} [{databases.label}]"
        assert head in lines, report
        assert lines[lines.index(head) + 1] == message, report
    # the steps that led there, each at its place, the clock included
    at = lines.index(f"FAIL  tests/wrong.yaml: wrong › wrong e-mails [{databases.label}]")
    assert lines[at + 2 : at + 7] == [
        "  the steps that led there:",
        "    tests/wrong.yaml:36:5  set up: clock at 2026-12-01T09:00+08:00",
        "    tests/wrong.yaml:22:9  emp creates leave 'leave'",
        "    tests/wrong.yaml:39:9  emp takes 'submit' on leave",
        "    tests/wrong.yaml:41:9  advance 1d (clock at 2026-12-02T09:00+08:00)",
    ]
    assert lines[-1].startswith(f"{len(WRONG)} scenario run(s): 0 passed, {len(WRONG)} failed")


def test_each_run_starts_from_an_empty_database(kinds: Path, databases: Databases) -> None:
    (kinds / "tests" / "again.yaml").write_text(
        """\
start: 2026-12-01T09:00+08:00
as: emp
users: [{username: emp, roles: [employee]}]
scenarios:
  - name: once
    examples: [{n: 1}, {n: 2}, {n: 3}]
    steps:
      - find: leave
        count: 0
      - create: leave
        values: {title: "leave {{ n }}", days: 1}
        expect: {values: {id: 1}}
      - find: leave
        count: 1
""",
        encoding="utf-8",
    )
    failed, report = run([kinds / "tests" / "again.yaml"], databases)
    assert failed == 0, report
    assert "3 scenario run(s): 3 passed" in report


def test_the_command_selects_reports_and_exits(
    kinds: Path, db_option: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(HERE / "wrong.yaml", kinds / "tests" / "wrong.yaml")
    database = ["--db", db_option] if db_option else []
    junit = tmp_path / "out" / "junit.xml"
    selection = ["-k", "MANAGER and hr", "-k", "wrong state"]
    code = main(["test", str(kinds), *database, *selection, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1, out
    label = "postgresql" if db_option else "sqlite"
    last = out.splitlines()[-1]
    assert last.startswith("2 scenario run(s): 1 passed, 1 failed (") and last.endswith(f"on {label}")
    assert "ok    tests/leave.yaml: Leave requests › a request goes through the manager and HR (" in out
    root = ET.parse(junit).getroot()
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {
        f"Leave requests › a request goes through the manager and HR [{label}]",
        f"wrong › wrong state [{label}]",
    }
    failure = cases[f"wrong › wrong state [{label}]"].find("failure")
    assert failure is not None
    assert failure.get("message") == WRONG["wrong state"]
    assert "the steps that led there:" in (failure.text or "")

    assert main(["test", str(kinds), *database, "-k", "manager and HR"]) == 0
    assert main(["test", str(kinds), "-k", "nothing like it"]) == 1
    assert capsys.readouterr().err.strip().endswith("no scenario matches")


def test_the_database_option_takes_postgresql_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(HERE / "kinds"), "--db", "sqlite:///x.db"]) == 1
    assert capsys.readouterr().err.startswith("error: --db takes a PostgreSQL URL")


def test_an_unreachable_database_is_one_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    assert main(["test", str(HERE / "kinds"), "--db", url]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"error: cannot use the database {url}: ") and len(err.splitlines()) == 1
    assert "scenario run(s)" not in out
