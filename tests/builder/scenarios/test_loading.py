"""Loading scenario files: every problem at once, each at its `file:line:col`, checked
against the pack (forms, fields, users, records, states), and `formloom test` printing them
without running anything."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from builder.cli import main
from builder.scenarios.loading import scenario_files
from builder.scenarios.runner import load, selected
from runtime.loading.problems import DefinitionError

MISTAKES = """\
suite: Mistakes
start: 2026-12-01T09:00+08:00
as: emp
users:
  - {username: emp, roles: [employee]}
scenarios:
  - name: one of each
    steps:
      - creat: leave
      - create: leave
        ref: leave
        values: {title: 年假, dayz: 5}
      - advance: 20 hours
      - as: boss
        approve: leave
      - transition: submit
        record: leev
      - create: leave
        update: leave
        values: {}
      - update: leave
        valuez: {days: 2}
      - expect: {record: leave, state: aproved}
      - create: leave
        values: {title: "{{ title }}", days: 1}
  - name: no steps
    steps: 5
"""

EXPECTED = [
    "tests/bad.yaml:9:9: unknown step kind 'creat' (did you mean 'create'?): a step needs one of "
    "create, update, delete, transition, approve, reject, delegate, transfer, merge, upload, find, "
    "advance, at, expect",
    "tests/bad.yaml:12:29: unknown field 'dayz' of form 'leave' (did you mean 'days'?)",
    "tests/bad.yaml:13:18: invalid duration '20 hours': use a number and a unit m, h, d or w, such as "
    "'20h', '19h 30m' or '3d'",
    "tests/bad.yaml:14:13: unknown user 'boss': add it under 'users' (or use demo_users)",
    "tests/bad.yaml:17:17: unknown record 'leev' (did you mean 'leave'?)",
    "tests/bad.yaml:19:9: a step takes one kind; this one has create and update",
    "tests/bad.yaml:21:9: missing required key 'values'",
    "tests/bad.yaml:22:9: unknown key 'valuez' (did you mean 'values'?)",
    "tests/bad.yaml:23:40: unknown state 'aproved' of form 'leave' (did you mean 'approved'?)",
    "tests/bad.yaml:25:26: 'title' needs 'examples' to take from",
    "tests/bad.yaml:27:12: steps: input should be a valid list",
]


def write(pack: Path, name: str, text: str) -> Path:
    path = pack / "tests" / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(paths: list[Path]) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load([str(p) for p in paths])
    return [str(p) for p in caught.value.problems]


def test_every_problem_of_a_file_is_reported_at_its_place(kinds: Path) -> None:
    assert problems([write(kinds, "bad.yaml", MISTAKES)]) == EXPECTED


def test_formloom_test_prints_the_problems_and_runs_nothing(
    kinds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(kinds, "bad.yaml", MISTAKES)
    assert main(["test", str(kinds)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [*EXPECTED, f"{len(EXPECTED)} problem(s) found"]
    assert "Traceback" not in out + err
    assert "scenario run(s)" not in out  # nothing ran, not even the good file


def test_a_file_that_is_not_a_scenario_file(kinds: Path) -> None:
    path = write(kinds, "odd.yaml", "suite: Odd\nscenarioz: []\nstart: [1\n")
    assert problems([path]) == [  # the YAML itself is broken
        "tests/odd.yaml:4:1: syntax error: expected ',' or ']', but got '<stream end>'"
    ]
    write(kinds, "odd.yaml", "suite: Odd\nscenarioz: []\n")
    assert problems([path]) == [
        "tests/odd.yaml:1:1: missing required key 'scenarios'",
        "tests/odd.yaml:2:1: unknown key 'scenarioz' (did you mean 'scenarios'?)",
    ]
    write(kinds, "odd.yaml", "- just a list\n")
    assert problems([path]) == ["tests/odd.yaml:1:1: a scenario file is a map with 'scenarios'"]


def test_examples_are_checked_and_expanded(kinds: Path) -> None:
    path = write(
        kinds,
        "bands.yaml",
        """\
        start: 2026-12-01
        as: emp
        users: [{username: emp, roles: [employee]}]
        scenarios:
          - name: days
            examples: [{days: 1, hours: 8}, {days: 2.5, hours: 20}]
            steps:
              - create: leave
                values: {title: "{{ days }} days", days: "{{ days }}"}
                expect: {values: {hours: "{{ hours }}"}}
          - name: a typo
            examples: [{days: 1}]
            steps:
              - create: leave
                values: {title: x, days: "{{ dayz }}"}
        """,
    )
    assert problems([path]) == ["tests/bands.yaml:15:35: no example key 'dayz' (did you mean 'days'?)"]
    write(kinds, "bands.yaml", path.read_text(encoding="utf-8").split("  - name: a typo")[0])
    runs = selected(load([str(path)])[0], [])
    assert [r.name for r in runs] == ["days [days=1, hours=8]", "days [days=2.5, hours=20]"]
    first = runs[1].steps[0].spec
    assert first.values == {"title": "2.5 days", "days": 2.5}  # a value alone keeps its type


def test_where_scenario_files_are_found(kinds: Path, tmp_path: Path) -> None:
    assert [f.name for _, f in scenario_files(kinds)] == ["leave.yaml"]
    assert scenario_files(tmp_path) == []
    outside = tmp_path / "loose.yaml"
    outside.write_text("scenarios: []\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        scenario_files(outside)
    assert "belongs in the tests/ folder of a pack folder" in str(caught.value.problems[0])
    assert problems([tmp_path / "missing"]) == [f"{tmp_path / 'missing'}:1:1: no such file or folder"]
    none = f"{tmp_path}:1:1: no scenario files: put them in the pack's tests/ folder"
    assert problems([tmp_path]) == [none]
