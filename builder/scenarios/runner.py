"""`formloom test`: load the scenario files of packs, run each scenario on a fresh database,
report failures located in the files, a summary, and JUnit XML for CI."""

from __future__ import annotations

import contextlib
import tempfile
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from builder.scenarios.execute import execute
from builder.scenarios.harness import Harness
from builder.scenarios.loading import LoadedSuite, Run, as_text, load_suite, scenario_files
from builder.scenarios.results import Failure, Result
from runtime.db import resolve_url
from runtime.loading.loader import load_packs
from runtime.loading.problems import DefinitionError, Problem
from runtime.model import App

SCHEMA_PREFIX = "formloom_test_"


class Databases:
    """A fresh database per pack: a SQLite file in a temporary folder, or a schema of a
    PostgreSQL database (created for the pack, dropped after its runs). The pack is
    published there once; each run starts from it emptied (see reset.py)."""

    def __init__(self, url: str | None) -> None:
        self.url = resolve_url(url) if url else None
        self.label = "postgresql" if self.url else "sqlite"

    def check(self) -> None:
        """Connect once, so that an unreachable server is one error, not one per run
        (raises sqlalchemy's OperationalError, which the command line reports)."""
        if self.url is None:
            return
        admin = create_engine(self.url)
        try:
            with admin.connect():
                pass
        finally:
            admin.dispose()

    @contextlib.contextmanager
    def fresh(self, folder: Path) -> Iterator[str]:
        if self.url is None:
            yield f"sqlite:///{folder / 'scenarios.db'}"
            return
        schema = SCHEMA_PREFIX + uuid.uuid4().hex[:16]
        admin = create_engine(self.url)
        try:
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                scoped = make_url(self.url).update_query_dict({"options": f"-csearch_path={schema}"})
                yield scoped.render_as_string(hide_password=False)
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()


def check_database(url: str | None) -> str | None:
    """Why `--db` cannot be used for scenarios, or None."""
    if url is None:
        return None
    driver = make_url(resolve_url(url)).drivername
    if not driver.startswith("postgresql"):
        return (
            "--db takes a PostgreSQL URL (each scenario runs in a fresh schema of it); "
            "without --db each scenario runs on a fresh SQLite database"
        )
    return None


@dataclass
class Summary:
    """What a `formloom test` run found."""

    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    database: str = "sqlite"

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    @property
    def expectations(self) -> int:
        return sum(r.expectations for r in self.results)

    def line(self) -> str:
        runs = len(self.results)
        failed = len(self.failed)
        verdict = f"{runs - failed} passed" + (f", {failed} failed" if failed else "")
        return (
            f"{runs} scenario run(s): {verdict} ({self.expectations} expectations checked) "
            f"in {self.seconds:.1f} s on {self.database}"
        )


def load(paths: list[str]) -> tuple[list[LoadedSuite], dict[Path, list[App]]]:
    """Every scenario file of the paths, checked against its pack; every problem at once."""
    problems: list[Problem] = []
    suites: list[LoadedSuite] = []
    packs: dict[Path, list[App]] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            problems.append(Problem(given, 1, 1, "no such file or folder"))
            continue
        try:
            found = scenario_files(path)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        if not found and path.is_dir():
            problems.append(Problem(given, 1, 1, "no scenario files: put them in the pack's tests/ folder"))
        for pack, file in found:
            if pack not in packs:
                packs[pack] = load_packs([pack])
            try:
                suites.append(load_suite(pack, file, packs[pack][0]))
            except DefinitionError as exc:
                problems.extend(exc.problems)
    if problems:
        raise DefinitionError(problems)
    return suites, packs


def selected(suites: list[LoadedSuite], keywords: list[str]) -> list[Run]:
    """The runs whose file, suite or scenario name contains one of the keywords (all without)."""
    runs = [run for suite in suites for run in suite.runs]
    if not keywords:
        return runs
    wanted = [k.lower() for k in keywords]
    return [r for r in runs if any(k in f"{r.suite.name} {r.title}".lower() for k in wanted)]


def run_all(runs: list[Run], packs: dict[Path, list[App]], databases: Databases, out: TextIO) -> Summary:
    """Run each scenario, printing a line per run and each failure: the runs of a pack share
    one database, where the pack is published once and which is emptied before each run."""
    summary = Summary(database=databases.label)
    began = time.perf_counter()
    by_pack: dict[Path, list[Run]] = {}
    for run in runs:
        by_pack.setdefault(run.suite.pack, []).append(run)
    for pack, pack_runs in by_pack.items():
        for result in _pack_runs(pack_runs, packs[pack], databases):
            summary.results.append(result)
            report(result, out)
    summary.seconds = time.perf_counter() - began
    return summary


def _pack_runs(runs: list[Run], apps: list[App], databases: Databases) -> Iterator[Result]:
    """The results of one pack's runs, one at a time."""
    with tempfile.TemporaryDirectory(prefix="formloom-test-") as folder, contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(databases.fresh(Path(folder)))
            harness = Harness(apps, runs[0].suite.pack, url, Path(folder) / "files")
            stack.callback(harness.close)
        except Exception as exc:  # the pack cannot be published or served: every run fails with it
            for run in runs:
                yield _crashed(run, databases.label, "the pack could not be set up", exc)
            return
        for run in runs:
            try:
                result = execute(run, harness, databases.label)
            except Exception as exc:  # the platform itself failed: report it, go on with the others
                result = _crashed(run, databases.label, "error", exc)
            yield result


def _crashed(run: Run, database: str, what: str, exc: Exception) -> Result:
    result = Result(run, database)
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    result.failures.append(Failure(run.suite.at(run.path), f"{what}: {detail}"))
    return result


def report(result: Result, out: TextIO) -> None:
    """`ok` or `FAIL` and the run's name; for a failure, each message and the steps before it."""
    run = result.run
    if result.passed:
        print(f"ok    {run.suite.name}: {run.title} ({result.seconds:.1f} s)", file=out)
        return
    print(f"FAIL  {run.suite.name}: {run.title} [{result.database}]", file=out)
    for failure in result.failures:
        print(str(failure), file=out)
    if result.trail:
        print("  the steps that led there:", file=out)
        for line in result.trail:
            print(f"    {line}", file=out)
    if run.example is not None:
        values = ", ".join(f"{k}={as_text(v)}" for k, v in run.example.items())
        print(f"  with the example {values}", file=out)


def junit(summary: Summary, path: Path) -> None:
    """The results as JUnit XML: a test suite per scenario file, a test case per run."""
    root = ET.Element(
        "testsuites",
        name="formloom test",
        tests=str(len(summary.results)),
        failures=str(len(summary.failed)),
        time=f"{summary.seconds:.3f}",
    )
    by_file: dict[str, list[Result]] = {}
    for result in summary.results:
        by_file.setdefault(result.run.suite.name, []).append(result)
    for name, results in by_file.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=name,
            tests=str(len(results)),
            failures=str(sum(not r.passed for r in results)),
            time=f"{sum(r.seconds for r in results):.3f}",
        )
        for result in results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=name.removesuffix(Path(name).suffix).replace("/", "."),
                name=f"{result.run.title} [{result.database}]",
                time=f"{result.seconds:.3f}",
            )
            if not result.passed:
                failure = ET.SubElement(case, "failure", message=str(result.failures[0]))
                failure.text = "\n".join(
                    [str(f) for f in result.failures] + ["the steps that led there:", *result.trail]
                )
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
