"""The scenarios every shipped pack carries pass on SQLite and PostgreSQL (`make test` runs
them), and a pack broken on purpose fails them with a located message."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from builder.cli import main
from builder.scenarios.runner import Databases, load, run_all, selected
from tests.support import REPO, SALES


def packs_with_scenarios() -> list[Path]:
    """Every pack folder under definitions/ and examples/ that has a tests/ folder."""
    found: list[Path] = []
    for root in (REPO / "definitions", REPO / "examples"):
        if root.is_dir():
            found += sorted(p for p in root.iterdir() if (p / "tests").is_dir())
    return found


def test_the_sales_pack_has_scenarios() -> None:
    assert SALES in packs_with_scenarios()


@pytest.mark.parametrize("pack", packs_with_scenarios(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_scenarios_of_the_pack_pass(pack: Path, databases: Databases) -> None:
    suites, packs = load([str(pack)])
    out = io.StringIO()
    summary = run_all(selected(suites, []), packs, databases, out)
    assert not summary.failed, out.getvalue()
    assert summary.results, f"{pack} has no scenario runs"


def test_a_broken_pack_fails_with_a_located_message(
    tmp_path: Path, db_option: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = Path(shutil.copytree(SALES, tmp_path / "sales"))
    settings = broken / "forms" / "scoring_settings.yaml"
    text = settings.read_text(encoding="utf-8")
    assert text.count("default: 60\n") == 1  # the MQL threshold of the requirement
    settings.write_text(text.replace("default: 60\n", "default: 70\n"), encoding="utf-8")

    database = ["--db", db_option] if db_option else []
    assert main(["test", str(broken), *database, "-k", "MQL from a score of 60"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    label = "postgresql" if db_option else "sqlite"
    # 59 stays new either way; 60 and 61 are MQL at 60, not at 70
    assert lines[0].startswith("ok    tests/lead_scoring.yaml: Lead capture and scoring › a lead is MQL")
    failed = "FAIL  tests/lead_scoring.yaml: Lead capture and scoring › a lead is MQL from a score of 60"
    at = next(i for i, line in enumerate(lines) if line.startswith(f"{failed} [visits=9"))
    scenario = broken / "tests" / "lead_scoring.yaml"
    state = place(scenario, '"{{ state }}"')
    assert lines[at + 1] == f"{state}: expected state 'mql', got 'new'", out
    mql = place(scenario, '"{{ mql }}"')
    assert lines[at + 2] == f"{mql}: expected reached_mql_score true, got false", out
    assert lines[at + 3] == "  the steps that led there:", out
    assert lines[at + 5].endswith("  wu.marketing creates lead 'lead'"), out
    assert lines[-1].startswith("3 scenario run(s): 1 passed, 2 failed") and lines[-1].endswith(label)


def place(path: Path, text: str) -> str:
    """`tests/file.yaml:line:col` of the first place `text` is written."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            return f"tests/{path.name}:{number}:{line.index(text) + 1}"
    raise AssertionError(f"no {text!r} in {path}")
