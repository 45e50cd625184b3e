"""Schema changes on a big table: publish() against bare SQL, on PostgreSQL.

A one-form pack (`lead`: company, contact, notes, employees, budget) is started once,
which creates `bench__lead`; N rows (`--rows`, default 1,000,000) are then inserted in
one `INSERT … SELECT … FROM generate_series` (system columns included), and an
identical copy `plain_lead_copy` is made beside it (`CREATE TABLE … (LIKE … INCLUDING
ALL)` and `INSERT … SELECT *`). Both tables are vacuumed and analysed before measuring.

1. **Adding a nullable field.** docs/schema-changes.md promises that adding a field is
   an `ADD COLUMN` that does not rewrite the table. Each round publishes the pack with
   one more nullable text field (`publish()`: plan, DDL, version record, commit), then
   runs a plain `ALTER TABLE plain_lead_copy ADD COLUMN … VARCHAR(255)` in its own
   transaction on the copy; the rounds alternate (`--rounds`, default 5). The table shows
   each round, the medians and the ratio (target: at most 1.5× the bare ALTER). Every
   publish is checked not to have rewritten the table (`pg_relation_filenode` unchanged)
   and to have added a nullable column. The SQL each publish runs is timed by statement
   kind (row count, ALTER, the rest), which shows where its time goes.
2. **The plan's row counting.** `make_plan()` of a required field with a default (its
   plan counts the rows the default will fill) against a bare `SELECT count(*)` on the
   same table, alternating, median of `--runs` (default 5); also the count statement
   alone as timed inside `make_plan`, and `make_plan()` of a label-only change (no
   count) to show the plan's fixed cost.

`--profile` adds one more publish under cProfile and lists the functions where its time
goes. Only 127.0.0.1 is contacted; the script works in a schema `bench_<random>` of its
own (through `search_path`) and drops it at the end.

Run: `.venv/bin/python bench/schema_change.py [--db URL] [--rows N] [--rounds N] [--runs N]
[--profile]` (default URL postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from builder.publishing.publish import make_plan, publish
from runtime.boot import start
from runtime.db import make_engine, resolve_url
from runtime.loading.loader import load_pack

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
APP = "bench"
TABLE = f"{APP}__lead"
COPY = "plain_lead_copy"
TARGET = 1.5

APP_YAML = """\
app: {app}
label: {{en: Schema change benchmark}}
version: 1.0.{version}
"""

LEAD_YAML = """\
form: lead
label: {en: Lead}
title_field: company
fields:
  - {key: company, type: text, label: {en: Company}}
  - {key: contact, type: text, label: {en: Contact}}
  - {key: notes, type: text, label: {en: Notes}}
  - {key: employees, type: integer, label: {en: Employees}}
  - {key: budget, type: decimal, precision: 18, scale: 2, label: {en: Budget}}
"""

FILL = f"""
INSERT INTO {TABLE} (created_at, updated_at, version, company, contact, notes, employees, budget)
SELECT now() - make_interval(secs => g), now() - make_interval(secs => g), 1,
       'Company ' || g, 'Contact ' || g,
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'Note ' || g END,
       g % 5000, (g % 100000) * 10.25
FROM generate_series(1, :rows) AS g
"""


class Pack:
    """The benchmark pack, written again (as a new version) for every change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions = 0
        self.extra: list[str] = []

    def write(self, *more: str, label: str = "Lead") -> Path:
        """A pack folder with the base fields, the fields added so far and `more` lines."""
        self.versions += 1
        folder = self.root / f"v{self.versions}"
        (folder / "forms").mkdir(parents=True)
        (folder / "app.yaml").write_text(APP_YAML.format(app=APP, version=self.versions), encoding="utf-8")
        body = LEAD_YAML.replace("label: {en: Lead}", f"label: {{en: {label}}}")
        body += "".join(f"{line}\n" for line in [*self.extra, *more])
        (folder / "forms" / "lead.yaml").write_text(body, encoding="utf-8")
        return folder


def field_line(key: str, extra: str = "") -> str:
    """A nullable text field's line in forms/lead.yaml."""
    return f"  - {{key: {key}, type: text, label: {{en: {key}}}{extra}}}"


# ----------------------------------------------------------------------- timing helpers


class SqlClock:
    """Times the statements an engine runs, by kind: row counts, ALTERs and the rest."""

    KINDS = (
        ("count", re.compile(r"^\s*SELECT count\(\*\)", re.I)),
        ("alter", re.compile(r"^\s*ALTER\b", re.I)),
    )

    def __init__(self, engine: Engine) -> None:
        self.spent: dict[str, float] = {}
        self.statements = 0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cursor: Any, _statement: str, *_args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
        kind = next((name for name, pattern in self.KINDS if pattern.match(statement)), "other")
        self.spent[kind] = self.spent.get(kind, 0.0) + elapsed
        self.spent[f"{kind}_n"] = self.spent.get(f"{kind}_n", 0) + 1
        self.statements += 1

    @contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        """Seconds per kind, statements per kind (`<kind>_n`), `statements` and `total` of the block."""
        self.spent, self.statements = {}, 0
        result: dict[str, float] = {}
        started = time.perf_counter()
        yield result
        result["total"] = time.perf_counter() - started
        result.update(self.spent)
        result["statements"] = self.statements


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def filenode(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_relation_filenode(:t)"), {"t": table}).scalar_one())


def nullable_column(engine: Engine, table: str, column: str) -> bool:
    """True when the column exists and is nullable."""
    query = text(
        "SELECT NOT a.attnotnull FROM pg_attribute a WHERE a.attrelid = CAST(:t AS regclass) "
        "AND a.attname = :c AND NOT a.attisdropped"
    )
    with engine.connect() as conn:
        return bool(conn.execute(query, {"t": table, "c": column}).scalar())


# ------------------------------------------------------------------------------ setup


def prepare(url: str, pack: Pack, rows: int, folder: Path) -> Engine:
    """Create the table through Formloom, fill it, copy it, vacuum both."""
    runtime = start([pack.write()], url, folder / "files")
    runtime.engine.dispose()
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(FILL), {"rows": rows})
    filled = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {COPY} (LIKE {TABLE} INCLUDING ALL)"))
        conn.execute(text(f"INSERT INTO {COPY} SELECT * FROM {TABLE}"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE) {TABLE}, {COPY}"))
        size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size(:t))"), {"t": TABLE}).scalar()
        counts = [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in (TABLE, COPY)]
    assert counts == [rows, rows], counts
    print(f"{TABLE}: {rows:,} rows inserted in {filled:.1f} s ({size} with its index); "
          f"{COPY}: an identical copy")
    return engine


# ---------------------------------------------------------------------- 1. nullable field


def bench_add_field(engine: Engine, pack: Pack, clock: SqlClock, rounds: int, backups: Path) -> None:
    node, copy_node = filenode(engine, TABLE), filenode(engine, COPY)
    ours: list[float] = []
    theirs: list[float] = []
    parts: list[dict[str, float]] = []
    lines = []
    for number in range(1, rounds + 1):
        key = f"extra_{number}"
        app = load_pack(pack.write(field_line(key)))
        with clock.measure() as spent:
            outcome = publish(engine, app, backups=backups)
        words = [step.words for step in outcome.plan.steps]
        assert words == [f"add column {key} (VARCHAR(255))"], words
        pack.extra.append(field_line(key))
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {COPY} ADD COLUMN {key} VARCHAR(255)"))
        bare = time.perf_counter() - started
        assert nullable_column(engine, TABLE, key) and nullable_column(engine, COPY, key)
        ours.append(spent["total"])
        theirs.append(bare)
        parts.append(spent)
        lines.append(f"  {number:>6}   {ms(spent['total'])}   {ms(bare)}   {spent['total'] / bare:7.1f}×")
    rewritten = filenode(engine, TABLE) != node or filenode(engine, COPY) != copy_node
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"1. Add a nullable text field: publish() against a bare ALTER TABLE … ADD COLUMN "
          f"({rounds} alternating rounds)")
    print("   round     publish()      bare ALTER     ratio")
    print("\n".join(lines))
    print(f"  median   {ms(a)}   {ms(b)}   {a / b:7.1f}×   (target {TARGET}× or less: "
          f"{'met' if a / b <= TARGET else 'MISSED'})")
    print(f"  table rewritten by publish(): {'YES' if rewritten else 'no'} "
          f"(pg_relation_filenode {node} {'changed' if rewritten else 'unchanged'} "
          f"over {rounds} publishes; every new column nullable)")
    count, alter, other, statements = (
        statistics.median(p.get(kind, 0.0) for p in parts) for kind in ("count", "alter", "other", "other_n")
    )
    breakdown = [
        ("SELECT count(*) of the table (the plan's row count)", count),
        ("ALTER TABLE … ADD COLUMN", alter),
        (f"other SQL: {statements:.0f} statements (migrations check,", other),
        ("  reflection, history, version record)", None),
        ("Python and commit (the rest)", a - count - alter - other),
    ]
    print("  where a publish()'s time goes (median per publish):")
    for label, seconds in breakdown:
        print(f"    {label:<54}{ms(seconds) if seconds is not None else ''}".rstrip())


def profile_publish(engine: Engine, pack: Pack, backups: Path, top: int = 25) -> None:
    """One more publish of a nullable field under cProfile: the functions it spends time in."""
    app = load_pack(pack.write(field_line("profiled")))
    profiler = cProfile.Profile()
    profiler.enable()
    publish(engine, app, backups=backups)
    profiler.disable()
    pack.extra.append(field_line("profiled"))
    stats = pstats.Stats(profiler)
    total = max(ct for _cc, _nc, _tt, ct, _callers in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (path, line, name), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "/builder/" in path or "/runtime/" in path or "alembic/command" in path:
            short = path.split("/site-packages/")[-1] if "site-packages" in path else path.split("/main/")[-1]
            rows.append((cumulative, own, calls, f"{short}:{line}({name})"))
    rows.sort(reverse=True)
    print(f"cProfile of one publish() of a nullable field ({total * 1000:.0f} ms under the profiler), "
          "functions of Formloom and Alembic by cumulative time:")
    print("   cumulative        own   calls  function")
    for cumulative, own, calls, where in rows[:top]:
        print(f"  {ms(cumulative)} {ms(own)} {calls:>6}  {where}")


# -------------------------------------------------------------------- 2. the plan's count


def bench_plan_count(
    engine: Engine, pack: Pack, clock: SqlClock, runs: int, backups: Path, rows: int
) -> None:
    required = load_pack(pack.write(field_line("region", ", required: true, default: east")))
    relabelled = load_pack(pack.write(label="Sales lead"))
    words = [s.words for s in make_plan(engine, required, backups=backups).steps]
    assert any(f"filled with its default in {rows} row(s)" in w for w in words), words
    assert [s.words for s in make_plan(engine, relabelled, backups=backups).steps] == [], "label only"

    def bare() -> float:
        started = time.perf_counter()
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar_one() == rows
        return time.perf_counter() - started

    plans, inner, fixed, counts = [], [], [], []
    for _ in range(runs):
        with clock.measure() as spent:
            make_plan(engine, required, backups=backups)
        plans.append(spent["total"])
        inner.append(spent.get("count", 0.0))
        with clock.measure() as spent:
            make_plan(engine, relabelled, backups=backups)
        fixed.append(spent["total"])
        counts.append(bare())
    plan, count, label, bare_count = (statistics.median(x) for x in (plans, inner, fixed, counts))
    print(f"2. The plan's row counting: a required field with a default (the plan counts the "
          f"{rows:,} rows it fills), median of {runs} alternating runs")
    table = [
        ("make_plan(), required field with a default", plan, f"{plan / bare_count:6.2f}× the bare count"),
        ("  of which its SELECT count(*)", count, f"{count / bare_count:6.2f}×"),
        ("make_plan(), label change only (no count)", label, ""),
        (f"bare SELECT count(*) FROM {TABLE}", bare_count, ""),
    ]
    for words, seconds, ratio in table:
        print(f"  {words:<46}{ms(seconds)}   {ratio}".rstrip())


# ------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_URL, help=f"PostgreSQL URL on {HOST} (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (default: 1000000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating publish/ALTER rounds (default: 5)")
    parser.add_argument("--runs", type=int, default=5, help="make_plan/count(*) runs (default: 5)")
    parser.add_argument("--profile", action="store_true", help="profile one more publish with cProfile")
    args = parser.parse_args()
    began = time.perf_counter()
    url, cleanup, server = _database(args.db)
    cores, load = os.cpu_count() or 1, os.getloadavg()[0]
    print(f"Schema changes on PostgreSQL {server}, {cores} cores, load average {load:.2f}"
          f"{' (busy machine: figures are noisy)' if load > cores / 2 else ''}, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    engine: Engine | None = None
    try:
        with tempfile.TemporaryDirectory() as folder:
            pack = Pack(Path(folder) / "pack")
            backups = Path(folder) / "backups"
            engine = prepare(url, pack, args.rows, Path(folder))
            clock = SqlClock(engine)
            make_plan(engine, load_pack(pack.write()), backups=backups)  # warm-up: imports, caches
            print()
            bench_add_field(engine, pack, clock, args.rounds, backups)
            if args.profile:
                print()
                profile_publish(engine, pack, backups)
            print()
            bench_plan_count(engine, pack, clock, args.runs, backups, args.rows)
    finally:
        if engine is not None:
            engine.dispose()
        cleanup()
    print(f"\n(whole run: {time.perf_counter() - began:.0f} s)")


def _database(url: str) -> tuple[str, Callable[[], None], str]:
    """A schema of our own on the PostgreSQL server at 127.0.0.1: its URL, its removal, the version."""
    resolved = make_url(resolve_url(url))
    if resolved.get_backend_name() != "postgresql":
        raise SystemExit("this benchmark needs PostgreSQL (--db postgresql://…@127.0.0.1/…)")
    if resolved.host != HOST:
        raise SystemExit(f"refusing to talk to {resolved.host}: the benchmark only uses {HOST}")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(resolved, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        version = str(conn.execute(text("SHOW server_version")).scalar_one()).split()[0]

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    scoped = resolved.update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop, version


if __name__ == "__main__":
    main()
