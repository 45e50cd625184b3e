"""Timers fired per second: two `formloom worker` processes against a bare SKIP LOCKED loop, on PostgreSQL.

A tiny pack (`item`: title, a status select, an integer `fired`; a workflow whose timer,
a minute after a record enters `open`, runs `set: {fired: "fired + 1"}`) is started in a
schema of its own. N items are created through the records service (`--timers`, default
5,000), which queues N timer jobs; copies of the item, job and audit tables are made
beside them (`bare_item`, `bare_jobs`, `bare_audit`: `CREATE TABLE … (LIKE … INCLUDING
ALL)`), holding the same rows.

Each round makes every job due and measures, in an order that alternates:

* **formloom**: two `formloom worker PACK --db URL --until-idle --batch B` processes,
  started together, fire the N timers (claim with leases, run each timer in its own
  transaction through the process engine: instance check, the `set` effect through the
  records service with its audit row, the timer step in the history, the job marked done);
* **bare**: two processes (this script with `--bare-worker`, psycopg and nothing else)
  that each loop `BEGIN; SELECT id, record_id FROM bare_jobs WHERE status = 'pending' AND
  due_at <= now ORDER BY due_at, id LIMIT B FOR UPDATE SKIP LOCKED`, then per job
  `UPDATE bare_item SET fired = fired + 1 …`, one `INSERT` of the same two audit rows
  Formloom writes (the timer step and the field change) and `UPDATE bare_jobs SET status =
  'done' …`, and `COMMIT` once per batch. The row locks are its leases.

The rate is N over the busy time, from the first claim to the last job marked done
(process start-up excluded); the wall time with start-up is shown beside it. After each
run the script checks that every job is done once and every item fired exactly once,
and shows how the jobs were split between the two processes. It prints the CPU the
worker processes and the database server spent per timer, the load average, and the
statements and commits Formloom runs per timer (counted in process on 50 more timers),
then the ratio formloom/bare against the 0.5 target.

Only 127.0.0.1 is contacted; the schema `bench_<random>` is dropped at the end.

    .venv/bin/python bench/timers.py                 # 5,000 timers, 3 rounds: 1-3 minutes
    .venv/bin/python bench/timers.py --timers 1000 --rounds 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
TARGET = 0.5
LEASE = 300  # seconds, passed to `formloom worker --lease`
CHUNK = 1000  # records per create_many call (the service's bulk limit)
EXTRA = 50  # timers fired in process at the end, to count Formloom's statements per timer
ROOT = Path(__file__).resolve().parents[1]
DONE_LINE = re.compile(r"^worker (\S+): (\d+) job\(s\) done$", re.M)

APP_YAML = """\
app: bench
label: {en: Timer benchmark}
version: 1.0.0
"""

ITEM_YAML = """\
form: item
label: {en: Item}
title_field: title
fields:
  - {key: title, type: text, label: {en: Title}}
  - {key: status, type: select, label: {en: Status}, options: [open, closed]}
  - {key: fired, type: integer, label: {en: Fired}, default: 0}
"""

WORKFLOW_YAML = """\
workflow: item_flow
form: item
field: status
states:
  - {key: open, initial: true}
  - {key: closed, final: true}
transitions:
  - {action: close, from: open, to: closed}
timers:
  - key: remind
    state: open
    after: "1m"
    effects:
      - set: {fired: "fired + 1"}
"""


def write_pack(root: Path) -> Path:
    """The benchmark pack: app.yaml, forms/item.yaml, workflows/item.yaml."""
    for name, body in {
        "app.yaml": APP_YAML,
        "forms/item.yaml": ITEM_YAML,
        "workflows/item.yaml": WORKFLOW_YAML,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body, encoding="utf-8")
    return root


# --------------------------------------------------------------------------- the bare loop

CLAIM = """
SELECT id, record_id FROM bare_jobs
WHERE status = 'pending' AND due_at <= %s
ORDER BY due_at, id LIMIT %s FOR UPDATE SKIP LOCKED
"""
FIRE = """
UPDATE bare_item SET fired = fired + 1, version = version + 1, updated_at = %s
WHERE id = %s RETURNING fired
"""
AUDIT = """
INSERT INTO bare_audit (app, form, record_id, action, channel, user_id, at, changes)
VALUES ('bench', 'item', %s, 'timer', 'timer', NULL, %s, %s),
       ('bench', 'item', %s, 'update', 'timer', NULL, %s, %s)
"""
DONE = """
UPDATE bare_jobs SET status = 'done', attempts = attempts + 1, lease_owner = %s,
       finished_at = clock_timestamp(), last_error = NULL
WHERE id = %s
"""


def bare_worker(conninfo: str, name: str, batch: int) -> None:
    """One bare process: claim a batch with SKIP LOCKED, fire each timer, commit; until none is due."""
    import psycopg
    from psycopg.types.json import Jsonb

    done, first_claim = 0, None
    step = Jsonb({"timer": "remind", "state": "open", "round": 0})
    with psycopg.connect(conninfo) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
        while True:
            now = dt.datetime.now(dt.UTC)
            first_claim = first_claim or time.time()
            with conn.transaction():
                rows = conn.execute(CLAIM, (now, batch)).fetchall()
                for job_id, record_id in rows:
                    at = dt.datetime.now(dt.UTC)
                    [fired] = conn.execute(FIRE, (at, record_id)).fetchall()[0]
                    change = Jsonb({"fired": [fired - 1, fired]})
                    conn.execute(AUDIT, (record_id, at, step, record_id, at, change))
                    conn.execute(DONE, (name, job_id))
            if not rows:
                break
            done += len(rows)
    print(json.dumps({"name": name, "done": done, "first_claim": first_claim}), flush=True)


# ------------------------------------------------------------------------------- the runs


@dataclass
class Run:
    """One measurement: N timers fired by two processes."""

    side: str
    timers: int
    busy: float  # first claim to last job done
    wall: float  # process start to both exited
    split: dict[str, int]
    worker_cpu: float  # seconds of CPU in the two worker processes
    database_cpu: float | None  # seconds of CPU in the local PostgreSQL server processes
    others: float | None  # CPUs busy outside the benchmark and the database while it ran
    problems: list[str]

    @property
    def rate(self) -> float:
        return self.timers / self.busy

    @property
    def wall_rate(self) -> float:
        return self.timers / self.wall


class Bench:
    """The schema, the runtime on the pack and the bare tables."""

    def __init__(
        self, url: str, conninfo: str, folder: Path, timers: int, batch: int, bare_batch: int
    ) -> None:
        from runtime.boot import start

        self.url, self.conninfo, self.timers = url, conninfo, timers
        self.batch, self.bare_batch = batch, bare_batch
        self.pack = write_pack(folder / "pack")
        self.runtime = start([self.pack], url, folder / "files")
        self.engine = self.runtime.engine
        self.running: list[subprocess.Popen[str]] = []  # the worker processes, for the watchdog

    def sql(self, *statements: str, autocommit: bool = False) -> list[Any]:
        """Run statements in one transaction (or each on its own); answers the rows of the last one."""
        from sqlalchemy import text

        options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
        with self.engine.connect().execution_options(**options) as conn:
            rows: list[Any] = []
            for statement in statements:
                result = conn.execute(text(statement))
                rows = list(result) if result.returns_rows else []
            if not autocommit:
                conn.commit()
        return rows

    def prepare(self) -> float:
        """Create the items (and their timers) through the records service, then the bare copies."""
        began = time.perf_counter()
        for first in range(0, self.timers, CHUNK):
            count = min(CHUNK, self.timers - first)
            self.runtime.service.create_many(
                "bench", "item", [{"title": f"item {first + n}"} for n in range(count)]
            )
        spent = time.perf_counter() - began
        self.sql(
            "CREATE TABLE bare_item (LIKE bench__item INCLUDING ALL)",
            "INSERT INTO bare_item SELECT * FROM bench__item",
            "CREATE TABLE bare_jobs (LIKE formloom_jobs INCLUDING ALL)",
            "INSERT INTO bare_jobs SELECT * FROM formloom_jobs",
            "CREATE TABLE bare_audit (LIKE formloom_audit INCLUDING ALL)",
            "INSERT INTO bare_audit SELECT * FROM formloom_audit",
        )
        [(jobs,)] = self.sql("SELECT count(*) FROM formloom_jobs WHERE kind = 'timer' AND status = 'pending'")
        if jobs != self.timers:
            raise SystemExit(
                f"expected {self.timers} pending timer jobs after creating the items, found {jobs}"
            )
        return spent

    def reset(self, side: str) -> None:
        """Every timer job pending and due, every item's `fired` back to 0; tables vacuumed."""
        jobs, items = ("formloom_jobs", "bench__item") if side == "formloom" else ("bare_jobs", "bare_item")
        self.sql(
            f"UPDATE {jobs} SET status = 'pending', attempts = 0, lease_owner = NULL, "
            "lease_expires_at = NULL, finished_at = NULL, last_error = NULL, "
            "due_at = now() - interval '1 minute' WHERE kind = 'timer'",
            f"UPDATE {items} SET fired = 0",
        )
        self.sql(f"VACUUM ANALYZE {jobs}", f"VACUUM ANALYZE {items}", autocommit=True)

    def run(self, side: str) -> Run:
        """Fire every timer with two processes of one side; check the result."""
        self.reset(side)
        audit = "formloom_audit" if side == "formloom" else "bare_audit"
        [(audit_before,)] = self.sql(f"SELECT count(*) FROM {audit} WHERE action = 'timer'")
        watch = CpuWatch()
        began = time.perf_counter()
        processes, outputs = self.start_two(side)
        wall = time.perf_counter() - began
        worker_cpu, database_cpu, others = watch.stop()
        problems = [
            f"{side} worker exited with {p.returncode}: {err.strip()[-500:]}"
            for p, (_, err) in zip(processes, outputs, strict=True)
            if p.returncode
        ]
        split: dict[str, int] = {}
        if side == "formloom":
            for out, _ in outputs:
                split.update({name: int(n) for name, n in DONE_LINE.findall(out)})
            [(first, last)] = self.sql("SELECT min(lease_expires_at), max(finished_at) FROM formloom_jobs")
            busy = (last - (first - dt.timedelta(seconds=LEASE))).total_seconds()
        else:
            reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs if out.strip()]
            split = {r["name"]: r["done"] for r in reports}
            [(last,)] = self.sql("SELECT extract(epoch FROM max(finished_at)) FROM bare_jobs")
            busy = float(last) - min(r["first_claim"] for r in reports) if reports else wall
        problems += self.check(side, split, audit, audit_before)
        return Run(side, self.timers, busy, wall, split, worker_cpu, database_cpu, others, problems)

    def start_two(self, side: str) -> tuple[list[subprocess.Popen[str]], list[tuple[str, str]]]:
        """Start two worker processes of one side together and wait for both; their outputs."""
        processes = [
            subprocess.Popen(
                self.command(side, f"{side}-{n}"),
                cwd=ROOT,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for n in (1, 2)
        ]
        self.running.extend(processes)
        return processes, [p.communicate() for p in processes]

    def start_up_cpu(self, side: str) -> float:
        """CPU seconds two worker processes of one side spend with nothing due: start-up and exit."""
        watch = CpuWatch()
        self.start_two(side)
        return watch.stop()[0]

    def command(self, side: str, name: str) -> list[str]:
        if side == "formloom":
            return [
                sys.executable,
                "-m",
                "builder.cli",
                "worker",
                str(self.pack),
                "--db",
                self.url,
                "--until-idle",
                "--batch",
                str(self.batch),
                "--lease",
                str(LEASE),
                "--name",
                name,
            ]
        return [
            sys.executable,
            str(Path(__file__).resolve()),
            "--bare-worker",
            self.conninfo,
            "--name",
            name,
            "--batch",
            str(self.bare_batch),
        ]

    def check(self, side: str, split: dict[str, int], audit: str, audit_before: int) -> list[str]:
        """Every job done once, every item fired exactly once, one timer step each, both processes busy."""
        jobs, items = ("formloom_jobs", "bench__item") if side == "formloom" else ("bare_jobs", "bare_item")
        n = self.timers
        problems = []
        statuses = self.sql(f"SELECT status, attempts, count(*) FROM {jobs} GROUP BY 1, 2")
        if [tuple(r) for r in statuses] != [("done", 1, n)]:
            problems.append(f"{side}: jobs by (status, attempts): {[tuple(r) for r in statuses]}")
        fired = self.sql(f"SELECT fired, count(*) FROM {items} GROUP BY 1")
        if [tuple(r) for r in fired] != [(1, n)]:
            problems.append(f"{side}: items by fired: {[tuple(r) for r in fired]}")
        [(steps,)] = self.sql(f"SELECT count(*) FROM {audit} WHERE action = 'timer'")
        if steps - audit_before != n:
            problems.append(f"{side}: {steps - audit_before} timer steps in the history, not {n}")
        if sum(split.values()) != n or len(split) != 2 or min(split.values()) == 0:
            problems.append(f"{side}: jobs done by each process: {split}")
        return problems

    def statements_per_timer(self) -> tuple[float, float]:
        """Statements and commits of Formloom's worker per timer, counted in process on EXTRA timers."""
        from sqlalchemy import event

        from runtime.process.engine import engine_for
        from runtime.process.worker import Worker

        self.sql(
            "UPDATE formloom_jobs SET status = 'pending', attempts = 0, lease_owner = NULL, "
            "due_at = now() - interval '1 minute' "
            f"WHERE id IN (SELECT id FROM formloom_jobs WHERE kind = 'timer' ORDER BY id LIMIT {EXTRA})"
        )
        counts = {"statements": 0, "commits": 0}

        def statement(*_args: Any) -> None:
            counts["statements"] += 1

        def commit(*_args: Any) -> None:
            counts["commits"] += 1

        event.listen(self.engine, "before_cursor_execute", statement)
        event.listen(self.engine, "commit", commit)
        try:
            worker = Worker(engine_for(self.runtime.service), "counting", batch=EXTRA)
            worker.run_until_idle()
        finally:
            event.remove(self.engine, "before_cursor_execute", statement)
            event.remove(self.engine, "commit", commit)
        fired = worker.stats.done or 1
        return counts["statements"] / fired, counts["commits"] / fired


class CpuWatch:
    """CPU time of the waited-for worker processes, of the local PostgreSQL server, and of the rest."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.children = self._children()
        self.machine = self._machine()
        self.database = self._database()

    def stop(self) -> tuple[float, float | None, float | None]:
        """(worker processes' CPU s, database CPU s, CPUs busy elsewhere on average)."""
        children = self._children() - self.children
        machine, database = self._machine(), self._database()
        if machine is None or self.machine is None or database is None or self.database is None:
            return children, None, None
        ticks = os.sysconf("SC_CLK_TCK")
        database_cpu = (database - self.database) / ticks
        elsewhere = (machine - self.machine) / ticks - children - database_cpu
        return children, database_cpu, max(0.0, elsewhere / (time.monotonic() - self.wall))

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    @staticmethod
    def _machine() -> int | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return user + nice + system + irq + softirq + steal

    @staticmethod
    def _database() -> int | None:
        if not Path("/proc/self/stat").exists():
            return None
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            name, rest = text[text.find("(") + 1 : text.rfind(")")], text[text.rfind(")") + 2 :].split()
            if name.startswith("postgres"):  # with reaped children: backends that have exited
                total += sum(int(v) for v in rest[11:15])
        return total


# ------------------------------------------------------------------------------- reporting


def report(
    runs: list[Run],
    args: argparse.Namespace,
    server: str,
    created: float,
    per_timer: tuple[float, float],
    start_up: dict[str, float],
) -> bool:
    """Print the table and the ratio; False when a check failed."""
    cores, load = os.cpu_count() or 1, os.getloadavg()[0]
    print()
    print("Timers fired per second: two `formloom worker` processes vs a bare SKIP LOCKED loop (PostgreSQL)")
    print(f"  database : PostgreSQL {server} on {HOST}, a schema of its own")
    print(
        f"  load     : {args.timers} due timers per run, 2 processes each, batch {args.batch}"
        f"{'' if args.bare_batch == args.batch else f' (bare loop: {args.bare_batch})'}, "
        f"{args.rounds} alternating rounds, median"
    )
    print(
        f"  machine  : {cores} CPUs, Python {platform.python_version()}, load average now {load:.2f}, "
        f"{dt.date.today().isoformat()}"
    )
    print(f"  code     : {code_version()}")
    print(
        f"  set-up   : {args.timers} items created through the records service in {created:.1f} s "
        f"({args.timers / created:.0f}/s, each queueing its timer)"
    )
    print()
    head = "".join(f"  round {i + 1:<3}" for i in range(args.rounds))
    print(f"{'timers/s':10}{head}    median  with start-up  worker CPU ms  db CPU ms  split")
    medians: dict[str, float] = {}
    cpu_per_timer: dict[str, float | None] = {}
    for side in ("formloom", "bare"):
        mine = [r for r in runs if r.side == side]
        medians[side] = statistics.median(r.rate for r in mine)
        cells = "".join(f"{r.rate:>11.1f}" for r in mine)
        wall = statistics.median(r.wall_rate for r in mine)
        cpu = (statistics.median(r.worker_cpu for r in mine) - start_up[side]) / args.timers * 1000
        db = [r.database_cpu for r in mine if r.database_cpu is not None]
        db_ms = f"{statistics.median(db) / args.timers * 1000:>11.2f}" if db else f"{'?':>11}"
        cpu_per_timer[side] = cpu + statistics.median(db) / args.timers * 1000 if db else None
        split = " / ".join(str(v) for v in mine[-1].split.values())
        print(f"{side:<10}{cells}{medians[side]:>10.1f}{wall:>15.1f}{cpu:>15.2f}{db_ms}  {split}")
    print(
        f"(worker CPU: the two processes' CPU time per timer, less their start-up and exit with nothing "
        f"due: {start_up['formloom']:.2f} s for formloom, {start_up['bare']:.2f} s for bare)"
    )
    others = [r.others for r in runs if r.others is not None]
    if others:
        busy = max(others)
        note = "  (the machine was busy: figures are noisy)" if busy > 0.25 else ""
        print(
            f"(others: up to {busy:.2f} CPUs busy outside the benchmark and the database during a run{note})"
        )
    statements, commits = per_timer
    print(
        f"(Formloom runs {statements:.1f} statements and {commits:.2f} commits per timer; the bare loop 3 "
        f"statements per timer plus a SELECT and a COMMIT per batch of {args.bare_batch})"
    )
    problems = [p for r in runs for p in r.problems]
    ratio = medians["formloom"] / medians["bare"]
    verdict = "meets" if ratio >= TARGET else "BELOW"
    print()
    by_cpu = ""
    formloom_cpu, bare_cpu = cpu_per_timer["formloom"], cpu_per_timer["bare"]
    if formloom_cpu and bare_cpu:
        by_cpu = f"   by CPU per timer (workers and database): {bare_cpu / formloom_cpu:5.3f}"
    print(f"ratio formloom/bare  {ratio:5.3f}   (target >= {TARGET:.2f}: {verdict}){by_cpu}")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    return not problems


def code_version() -> str:
    """The commit of the working tree, and whether runtime/ has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "runtime", "builder"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return commit + (" with uncommitted changes in runtime/ or builder/" if dirty else "")


# ------------------------------------------------------------------------------------ main


@contextmanager
def database(url: str) -> Iterator[tuple[str, str, str]]:
    """A schema of our own on 127.0.0.1: (SQLAlchemy URL, libpq conninfo, server version); dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from runtime.db import resolve_url

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
    scoped = resolved.update_query_dict({"options": f"-csearch_path={schema}"})
    parts = {
        "host": resolved.host,
        "port": resolved.port or 5432,
        "user": resolved.username,
        "password": resolved.password,
        "dbname": resolved.database,
    }
    conninfo = " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)
    conninfo += f" options='-csearch_path={schema}'"
    try:
        yield scoped.render_as_string(hide_password=False), conninfo, version
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--db",
        default=os.environ.get("FORMLOOM_BENCH_PG", DEFAULT_URL),
        help="PostgreSQL URL on 127.0.0.1 (default: $FORMLOOM_BENCH_PG, else %(default)s)",
    )
    parser.add_argument("--timers", type=int, default=5000, help="due timers per run (default: 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, median taken (default: 3)")
    parser.add_argument("--batch", type=int, default=50, help="jobs claimed at once (default: 50)")
    parser.add_argument(
        "--bare-batch",
        type=int,
        default=None,
        help="jobs the bare loop claims (and commits) at once (default: --batch; 1 commits every timer)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="hard stop after these seconds")
    parser.add_argument("--bare-worker", metavar="CONNINFO", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="bare", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_worker:
        bare_worker(args.bare_worker, args.name, args.batch)
        return 0
    args.bare_batch = args.bare_batch or args.batch
    if (
        args.timers < 2 * max(args.batch, args.bare_batch)
        or min(args.rounds, args.batch, args.bare_batch) < 1
    ):
        parser.error("--timers must be at least twice --batch; --rounds and the batches at least 1")

    running: list[subprocess.Popen[str]] = []

    def watchdog() -> None:
        """Kill the worker processes and interrupt the run, so the schema is still dropped."""
        print(f"\nbenchmark still running after {args.timeout:.0f}s: stopping", file=sys.stderr)
        for process in running:
            if process.poll() is None:
                process.kill()
        last_resort = threading.Timer(60, lambda: os._exit(2))  # in case the clean-up hangs
        last_resort.daemon = True
        last_resort.start()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(args.timeout, watchdog)
    timer.daemon = True
    timer.start()
    began = time.perf_counter()
    try:
        with database(args.db) as (url, conninfo, server), tempfile.TemporaryDirectory() as folder:
            print(
                f"PostgreSQL {server}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            bench = Bench(url, conninfo, Path(folder), args.timers, args.batch, args.bare_batch)
            bench.running = running
            created = bench.prepare()
            print(f"created {args.timers} items (and timers) in {created:.1f} s", flush=True)
            runs = []
            for round_no in range(args.rounds):
                order = ("formloom", "bare") if round_no % 2 == 0 else ("bare", "formloom")
                for side in order:
                    run = bench.run(side)
                    runs.append(run)
                    print(
                        f"  round {round_no + 1} {side:<8} {run.rate:8.1f} timers/s "
                        f"({run.busy:.1f} s busy, {run.wall:.1f} s with start-up"
                        + (f"; others {run.others:.2f} CPUs)" if run.others is not None else ")"),
                        flush=True,
                    )
            start_up = {side: bench.start_up_cpu(side) for side in ("formloom", "bare")}
            per_timer = bench.statements_per_timer()
            ok = report(runs, args, server, created, per_timer, start_up)
            bench.engine.dispose()
    except KeyboardInterrupt:
        print("interrupted: the worker processes were stopped and the schema dropped", file=sys.stderr)
        return 2
    finally:
        timer.cancel()
    print(f"\n(whole run: {time.perf_counter() - began:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
