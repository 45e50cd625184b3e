"""The `formloom` command line: exit codes, `file:line:col: message` output, no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from builder.cli import definition_schema, main
from tests.support import SALES, write_pack

BROKEN_FORM = """\
form: lead
label: Lead
fields:
  - key: company
    type: txt
  - key: email
    type: email
    requird: true
"""
BROKEN_LINES = [
    "forms/lead.yaml:5:11: unknown field type 'txt' (did you mean 'text'?)",
    "forms/lead.yaml:8:5: unknown key 'requird' (did you mean 'required'?)",
    "2 problem(s) found",
]


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    return write_pack(tmp_path / "broken", {"lead": BROKEN_FORM})


def test_validate_the_sales_pack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SALES)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok: sales ")
    forms = len(list((SALES / "forms").glob("*.yaml")))
    assert re.fullmatch(rf"ok: sales \S+: {forms} forms, \d+ fields\n", out), out
    assert err == ""


def test_validate_a_broken_pack(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(broken)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == BROKEN_LINES
    assert "Traceback" not in err


def test_validate_reports_every_pack(
    broken: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert main(["validate", str(SALES), str(broken), str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    # Every problem of every pack, sorted by file name (folder packs name files relative
    # to their folder; a missing path is named as given).
    assert err.splitlines() == [
        *sorted([*BROKEN_LINES[:-1], f"{missing}:1:1: no such file or folder"]),
        "3 problem(s) found",
    ]


def test_validate_needs_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["validate"])
    assert exit_.value.code == 2
    assert "PATH" in capsys.readouterr().err


def test_the_console_script_exits_1_without_a_traceback(broken: Path) -> None:
    script = Path(sys.executable).with_name("formloom")
    if not script.exists():
        pytest.skip(f"the console script is not installed next to {sys.executable}")
    done = subprocess.run(
        [str(script), "validate", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == BROKEN_LINES
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("argv", "kind"), [(["schema"], "app"), (["schema", "app"], "app"), (["schema", "form"], "form")]
)
def test_schema_prints_the_definition_schema(
    argv: list[str], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == definition_schema(kind)
    assert printed["$id"] == f"https://formloom.dev/schema/{kind}.json"
