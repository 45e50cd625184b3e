"""Formloom's REST API against a hand-written FastAPI + SQLAlchemy Core app, on the same tables.

One run serves a tiny two-form pack (account, lead) twice on 127.0.0.1: once by Formloom
(`runtime.boot.start`) and once by the baseline app defined below, which reads and writes
Formloom's own tables `bench__lead` and `bench__account` in the same database. A separate
client process drives both with the same load (N threads, one keep-alive httpx.Client
each) and measures:

* create: `POST /api/v1/bench/lead`, one validated lead per request, 201 with the record;
* list:   `GET /api/v1/bench/lead?limit=50&offset=…`, a page of 50 leads whose `account`
          link comes back as `{id, display}` (a JOIN), after seeding the leads.

Both apps require the same bearer token (an admin user's, checked against Formloom's
token table). The baseline does what a small hand-written service would: validate, insert,
read back with the JOIN; it keeps no audit trail and has no permission rules, duplicate
checks or definitions to interpret, which Formloom pays for on every request.

Measurements alternate between the two apps (and which one goes first) over several
rounds; the median of each is reported with the ratio formloom/baseline against the
target of 0.7, next to the server's CPU time per request (a figure less disturbed by
other work on the machine). The load runs in its own process so the client does not
share the servers' GIL. Only 127.0.0.1 is contacted; the run stops by itself (and is killed by a
watchdog after `--timeout` seconds in any case).

    .venv/bin/python bench/api_vs_baseline.py                       # temp SQLite file
    .venv/bin/python bench/api_vs_baseline.py --db postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import multiprocessing as mp
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import fastapi
import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError

TARGET = 0.7
HOST = "127.0.0.1"
APP, LEAD_URL = "bench", "/api/v1/bench/lead"
SOURCES = ("web", "referral", "event", "advertising", "partner")  # the lead form's options
ACCOUNTS = 100
PAGE = 50
WARMUP = 200

# ---------------------------------------------------------------------------- the pack

APP_YAML = """\
app: bench
label: {en: Benchmark}
version: 1.0.0
"""

ACCOUNT_YAML = """\
form: account
label: {en: Account}
title_field: name
fields:
  - {key: name, type: text, label: {en: Name}, required: true}
"""

LEAD_YAML = """\
form: lead
label: {en: Lead}
title_field: company
fields:
  - {key: company, type: text, label: {en: Company}, required: true}
  - {key: contact_name, type: text, label: {en: Contact name}, required: true}
  - {key: email, type: email, label: {en: Email}}
  - key: source
    type: select
    label: {en: Source}
    required: true
    options:
      - {key: web, label: {en: Website}}
      - {key: referral, label: {en: Referral}}
      - {key: event, label: {en: Event}}
      - {key: advertising, label: {en: Advertising}}
      - {key: partner, label: {en: Partner}}
  - {key: budget, type: money, label: {en: Budget}, min: 0}
  - {key: account, type: link, label: {en: Account}, to: account, on_delete: set_null}
"""


def write_pack(root: Path) -> Path:
    """The benchmark pack: app.yaml, forms/account.yaml and forms/lead.yaml."""
    (root / "forms").mkdir(parents=True, exist_ok=True)
    (root / "app.yaml").write_text(APP_YAML, encoding="utf-8")
    (root / "forms" / "account.yaml").write_text(ACCOUNT_YAML, encoding="utf-8")
    (root / "forms" / "lead.yaml").write_text(LEAD_YAML, encoding="utf-8")
    return root


# ------------------------------------------------------------------- the baseline app

Text = Annotated[str, Field(min_length=1, max_length=255)]


class LeadIn(BaseModel):
    """A new lead, with the same rules as the pack's lead form."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    company: Text
    contact_name: Text
    email: EmailStr | None = None
    source: Literal["web", "referral", "event", "advertising", "partner"]
    budget: Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)] | None = None
    account: Annotated[int, Field(ge=1, lt=2**63)] | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value


class Ref(BaseModel):
    id: int
    display: str


class LeadOut(BaseModel):
    id: int
    company: str
    contact_name: str
    email: str | None
    source: str
    budget: Decimal | None
    account: Ref | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class LeadPage(BaseModel):
    items: list[LeadOut]
    limit: int
    offset: int
    next_offset: int | None


def baseline_app(db_url: str) -> tuple[FastAPI, Engine]:
    """A plain FastAPI app over SQLAlchemy Core: what one would write by hand for one table."""
    sqlite = db_url.startswith("sqlite")
    if sqlite:
        engine = sa.create_engine(db_url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    else:
        engine = sa.create_engine(db_url, pool_size=10, max_overflow=20)

    meta = sa.MetaData()
    users = sa.Table("formloom_users", meta,
                     sa.Column("id", sa.BigInteger, primary_key=True),
                     sa.Column("active", sa.Boolean))
    tokens = sa.Table("formloom_tokens", meta,
                      sa.Column("id", sa.BigInteger, primary_key=True),
                      sa.Column("user_id", sa.BigInteger, sa.ForeignKey(users.c.id)),
                      sa.Column("token_hash", sa.String(64)),
                      sa.Column("expires_at", sa.DateTime(timezone=True)),
                      sa.Column("revoked_at", sa.DateTime(timezone=True)))
    account = sa.Table("bench__account", meta,
                       sa.Column("id", sa.BigInteger, primary_key=True),
                       sa.Column("name", sa.String(255)))
    lead = sa.Table("bench__lead", meta,
                    sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("created_at", sa.DateTime(timezone=True)),
                    sa.Column("updated_at", sa.DateTime(timezone=True)),
                    sa.Column("created_by", sa.BigInteger),
                    sa.Column("version", sa.Integer),
                    sa.Column("company", sa.String(255)),
                    sa.Column("contact_name", sa.String(255)),
                    sa.Column("email", sa.String(254)),
                    sa.Column("source", sa.String(64)),
                    sa.Column("budget", sa.Numeric(18, 2)),
                    sa.Column("account", sa.BigInteger, sa.ForeignKey(account.c.id)))
    read = (sa.select(lead.c.id, lead.c.company, lead.c.contact_name, lead.c.email,
                      lead.c.source, lead.c.budget, lead.c.account,
                      account.c.name.label("account_name"),
                      lead.c.created_at, lead.c.updated_at, lead.c.version)
            .select_from(lead.outerjoin(account, lead.c.account == account.c.id)))

    def out(row: Any) -> dict[str, Any]:
        record = dict(row._mapping)
        ref, name = record.pop("account"), record.pop("account_name")
        record["account"] = None if ref is None else {"id": ref, "display": name or f"#{ref}"}
        return record

    def now() -> dt.datetime:
        moment = dt.datetime.now(dt.UTC)
        return moment.replace(tzinfo=None) if sqlite else moment

    def caller(authorization: str = Header(default="")) -> int:
        """The user of a live bearer token (Formloom's token table: SHA-256 of the token)."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "use Authorization: Bearer <token>")
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        live = (sa.select(tokens.c.user_id).join(users, users.c.id == tokens.c.user_id)
                .where(tokens.c.token_hash == digest, tokens.c.revoked_at.is_(None), users.c.active,
                       sa.or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now())))
        with engine.connect() as conn:
            user_id = conn.execute(live).scalar()
        if user_id is None:
            raise HTTPException(401, "the token is unknown, revoked or expired")
        return int(user_id)

    api = FastAPI(title="baseline")

    @api.post(LEAD_URL, status_code=201, response_model=LeadOut)
    def create_lead(body: LeadIn, user_id: int = Depends(caller)) -> dict[str, Any]:
        stamp = now()
        values = {**body.model_dump(), "created_at": stamp, "updated_at": stamp, "version": 1,
                  "created_by": user_id}
        try:
            with engine.begin() as conn:
                new_id = conn.execute(sa.insert(lead).values(values).returning(lead.c.id)).scalar_one()
                row = conn.execute(read.where(lead.c.id == new_id)).one()
        except IntegrityError as error:
            raise HTTPException(422, "account: no such record") from error
        return out(row)

    @api.get(LEAD_URL, response_model=LeadPage)
    def list_leads(limit: int = Query(PAGE, ge=1, le=500), offset: int = Query(0, ge=0),
                   _user_id: int = Depends(caller)) -> dict[str, Any]:
        with engine.connect() as conn:
            rows = conn.execute(read.order_by(lead.c.id).limit(limit + 1).offset(offset)).all()
        more = len(rows) > limit
        return {"items": [out(r) for r in rows[:limit]], "limit": limit, "offset": offset,
                "next_offset": offset + limit if more else None}

    return api, engine


# ---------------------------------------------------------------------------- serving


class Served:
    """One ASGI app served by uvicorn in a background thread on 127.0.0.1:<free port>."""

    def __init__(self, name: str, app: Any) -> None:
        self.name = name
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
        # without it every keep-alive response waits ~40 ms for a delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.url = f"http://{HOST}:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                backlog=256)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name=f"uvicorn-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


# ------------------------------------------------------------- the load (client process)


def lead_payload(tag: str, i: int) -> dict[str, Any]:
    """A valid lead; every request a different one."""
    return {"company": f"Company {tag}-{i}", "contact_name": f"Contact {i}",
            "email": f"contact{i}@{tag.lower()}.example.com", "source": SOURCES[i % len(SOURCES)],
            "budget": f"{(i * 37) % 100000}.{i % 100:02d}", "account": 1 + i % ACCOUNTS}


def run_load(url: str, kind: str, tag: str, requests: int, clients: int, pages: int,
             token: str) -> dict[str, Any]:
    """`requests` requests of `kind` spread over `clients` keep-alive threads; wall time."""
    counter = itertools.count()
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []
    latencies: list[float] = []
    expected = 201 if kind == "create" else 200

    def request(client: httpx.Client, i: int) -> httpx.Response:
        if kind == "create":
            return client.post(LEAD_URL, json=lead_payload(tag, i))
        return client.get(LEAD_URL, params={"limit": PAGE, "offset": (i % pages) * PAGE})

    def worker() -> None:
        own: list[float] = []
        with httpx.Client(base_url=url, headers=bearer(token), trust_env=False, timeout=60) as client:
            barrier.wait()
            while (i := next(counter)) < requests:
                began = time.perf_counter()
                try:
                    response = request(client, i)
                    if response.status_code != expected:
                        errors.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                own.append(time.perf_counter() - began)
        latencies.extend(own)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"rps": requests / elapsed, "elapsed": elapsed, "errors": errors[:5],
            "error_count": len(errors), "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p95_ms": 1000 * latencies[int(len(latencies) * 0.95)]}


def client_process(pipe: Any) -> None:
    """Runs load jobs sent over `pipe` until it receives None."""
    while (job := pipe.recv()) is not None:
        pipe.send(run_load(**job))


# --------------------------------------------------------------------------- database


class Database:
    """The database URL to use, and the temporary schema or file to remove afterwards."""

    def __init__(self, url: str | None, workdir: Path) -> None:
        from runtime.db import resolve_url

        self.schema: str | None = None
        self.admin: Engine | None = None
        if url is None:
            self.url = f"sqlite:///{workdir / 'bench.db'}"
            self.label = "SQLite (temp file, WAL)"
            return
        parsed = make_url(resolve_url(url))
        if parsed.get_backend_name() != "postgresql":
            self.url = parsed.render_as_string(hide_password=False)
            self.label = parsed.get_backend_name()
            return
        self.schema = f"bench_{secrets.token_hex(4)}"
        self.admin = sa.create_engine(parsed, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        if parsed.host not in (HOST, "localhost", None):
            raise SystemExit(f"refusing to talk to {parsed.host}: the benchmark only uses {HOST}")
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{self.schema}"'))
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
        scoped = parsed.update_query_dict({"options": f"-csearch_path={self.schema}"})
        self.url = scoped.render_as_string(hide_password=False)
        self.label = f"PostgreSQL {version} (schema {self.schema})"

    def drop(self) -> None:
        if self.admin is not None and self.schema is not None:
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            self.admin.dispose()
            self.schema = None


# ---------------------------------------------------------------------------- the run


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_token(engine: Engine) -> str:
    """A user with the admin role and an API token, both the apps accept."""
    from runtime.db import write
    from runtime.identity.directory import create_user
    from runtime.identity.tokens import create_token

    with write(engine) as conn:
        create_user(conn, "bench", None, roles=("admin",))
        return create_token(conn, "bench", "bench")


def seed(url: str, token: str, leads: int) -> None:
    """Accounts and leads through Formloom's bulk endpoints (not measured)."""
    with httpx.Client(base_url=url, headers=bearer(token), trust_env=False, timeout=120) as client:
        accounts = [{"name": f"Account {i:03d}"} for i in range(1, ACCOUNTS + 1)]
        client.post("/api/v1/bench/account/bulk", json=accounts).raise_for_status()
        for start in range(0, leads, 1000):
            batch = [lead_payload("seed", i) for i in range(start, min(leads, start + 1000))]
            client.post(f"{LEAD_URL}/bulk", json=batch).raise_for_status()


def check_same_behaviour(formloom: str, baseline: str, token: str) -> None:
    """Both apps answer the same page and refuse the same bad input and a missing token."""
    with httpx.Client(headers=bearer(token), trust_env=False, timeout=30) as client:
        pages = [client.get(f"{u}{LEAD_URL}", params={"limit": PAGE}).json() for u in (formloom, baseline)]
        shapes = [[(r["id"], r["company"], r["account"], r["budget"]) for r in p["items"]] for p in pages]
        assert shapes[0] == shapes[1] and len(shapes[0]) == PAGE, "the two apps list different pages"
        assert pages[0]["next_offset"] == pages[1]["next_offset"] == PAGE
        good = lead_payload("check", 0)
        bad = [{k: v for k, v in good.items() if k != "company"}, {**good, "email": "not-an-email"},
               {**good, "source": "carrier_pigeon"}, {**good, "budget": "-1"},
               {**good, "budget": "1.234"}, {**good, "account": 10**9}, {**good, "extra": 1}]
        for url in (formloom, baseline):
            for body in bad:
                status = client.post(f"{url}{LEAD_URL}", json=body).status_code
                assert status == 422, f"{url} answered {status} to {body}"
            for headers in ({"Authorization": ""}, bearer("flm_wrong")):
                status = client.post(f"{url}{LEAD_URL}", json=good, headers=headers).status_code
                assert status == 401, f"{url} answered {status} without a valid token"


def measure(pipe: Any, url: str, kind: str, tag: str, requests: int, clients: int,
            pages: int, token: str) -> dict[str, Any]:
    """One measurement by the client process; also the servers' CPU time per request (only
    the app under load is busy in this process while it runs)."""
    cpu = time.process_time()
    pipe.send({"url": url, "kind": kind, "tag": tag, "requests": requests, "clients": clients,
               "pages": pages, "token": token})
    result: dict[str, Any] = pipe.recv()
    result["cpu_ms"] = 1000 * (time.process_time() - cpu) / requests
    if result["error_count"]:
        print(f"  ! {tag} {kind}: {result['error_count']} failed requests, e.g. {result['errors']}",
              file=sys.stderr)
    return result


def code_version() -> str:
    """The commit of the working tree, and whether runtime/ has uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "runtime"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"{commit}" + (" with uncommitted changes in runtime/" if dirty else "")


class CpuWatch:
    """How much CPU the rest of the machine used while measuring (Linux /proc)."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.own = self._own()
        self.machine = self._machine()
        self.database = self._database()

    def others(self) -> float | None:
        """Average CPUs busy outside this process, its (waited-for) client process and the
        local PostgreSQL server processes."""
        start, end = self.machine, self._machine()
        if start is None or end is None:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        machine = (end - start) / ticks
        database = (self._database() - self.database) / ticks
        own = self._own() - self.own
        return max(0.0, (machine - own - database) / (time.monotonic() - self.wall))

    @staticmethod
    def _database() -> int:
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            name, rest = text[text.find("(") + 1:text.rfind(")")], text[text.rfind(")") + 2:].split()
            if name.startswith("postgres"):
                total += int(rest[11]) + int(rest[12])  # utime, stime
        return total

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    @staticmethod
    def _machine() -> int | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return user + nice + system + irq + softirq + steal


def report(args: argparse.Namespace, db_label: str,
           results: dict[tuple[str, str], list[dict[str, Any]]], others: float | None) -> bool:
    """Print the table and the ratios; False when any request failed."""
    rounds = args.rounds
    print()
    print("Formloom API vs hand-written FastAPI + SQLAlchemy Core (same tables, same database)")
    print(f"  database : {db_label}")
    print(f"  load     : {args.clients} client threads (httpx, keep-alive, separate process), "
          f"{args.requests} requests per measurement, {rounds} rounds, median")
    print(f"  data     : {args.leads} seeded leads, {ACCOUNTS} accounts; list = page of {PAGE} with "
          "one link field as {id, display}")
    print(f"  machine  : {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"FastAPI {fastapi.__version__}, SQLAlchemy {sa.__version__}, uvicorn {uvicorn.__version__}"
          f", {dt.date.today().isoformat()}")
    print(f"  code     : {code_version()}")
    if others is not None:
        busy = "  (the machine was busy: figures are noisy)" if others > 0.25 else ""
        print(f"  others   : {others:.2f} CPUs busy on average outside the benchmark (and the "
              f"database server) while it measured{busy}")
    print()
    head = "".join(f"  round {i + 1:<3}" for i in range(rounds))
    print(f"{'req/s':18}{head}     median   p50 ms   p95 ms  CPU ms  errors")
    medians: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, str], float] = {}
    failed = 0
    for kind in ("create", "list"):
        for app in ("formloom", "baseline"):
            runs = results[(app, kind)]
            rps = [r["rps"] for r in runs]
            medians[(app, kind)] = statistics.median(rps)
            errors = sum(r["error_count"] for r in runs)
            failed += errors
            cells = "".join(f"{v:>11.1f}" for v in rps)
            p50 = statistics.median(r["p50_ms"] for r in runs)
            p95 = statistics.median(r["p95_ms"] for r in runs)
            cpu[(app, kind)] = statistics.median(r["cpu_ms"] for r in runs)
            print(f"{kind:<7} {app:<10}{cells}  {medians[(app, kind)]:>9.1f}{p50:>9.1f}{p95:>9.1f}"
                  f"{cpu[(app, kind)]:>8.2f}{errors:>8}")
    print("(p50/p95: client-side latency; CPU ms: server process CPU time per request)")
    print()
    for kind in ("create", "list"):
        ratio = medians[("formloom", kind)] / medians[("baseline", kind)]
        verdict = "meets" if ratio >= TARGET else "BELOW"
        by_cpu = cpu[("baseline", kind)] / cpu[("formloom", kind)]
        print(f"ratio formloom/baseline  {kind:<7} {ratio:5.3f}   (target >= {TARGET:.2f}: {verdict})"
              f"   by server CPU per request: {by_cpu:5.3f}")
    if failed:
        print(f"\n{failed} requests failed: the figures above are not valid.")
    return not failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file); for "
                        "PostgreSQL a temporary schema is created and dropped")
    parser.add_argument("--requests", type=int, default=1500, help="requests per measurement")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median taken)")
    parser.add_argument("--leads", type=int, default=2000, help="leads seeded before measuring")
    parser.add_argument("--timeout", type=float, default=600, help="hard stop after these seconds")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.clients < 1 or args.rounds < 1 or args.leads < PAGE:
        parser.error(f"--requests, --clients and --rounds must be >= 1, --leads >= {PAGE}")

    from runtime.boot import start

    cleanup: list[Callable[[], None]] = []

    def watchdog() -> None:
        print(f"\nbenchmark still running after {args.timeout:.0f}s: stopping", file=sys.stderr)
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:
                print(f"cleanup failed: {exc!r}", file=sys.stderr)
        os._exit(2)

    timer = threading.Timer(args.timeout, watchdog)
    timer.daemon = True
    timer.start()

    with tempfile.TemporaryDirectory(prefix="formloom-bench-") as tmp:
        work = Path(tmp)
        database = Database(args.db, work)
        cleanup.append(database.drop)
        try:
            pack = write_pack(work / "pack")
            runtime = start([pack], database.url, work / "files")
            cleanup.append(runtime.engine.dispose)
            base_api, base_engine = baseline_app(database.url)
            cleanup.append(base_engine.dispose)
            servers = {"formloom": Served("formloom", runtime.api),
                       "baseline": Served("baseline", base_api)}
            for served in servers.values():
                served.start()
                cleanup.append(served.stop)
            token = admin_token(runtime.engine)
            seed(servers["formloom"].url, token, args.leads)
            check_same_behaviour(servers["formloom"].url, servers["baseline"].url, token)

            context = mp.get_context("spawn")
            pipe, child_end = context.Pipe()
            client = context.Process(target=client_process, args=(child_end,), daemon=True)
            client.start()
            cleanup.append(lambda: client.kill() if client.is_alive() else None)

            pages = args.leads // PAGE
            common = {"clients": args.clients, "pages": pages, "token": token}
            for name, served in servers.items():  # warm-up, not counted
                for kind in ("create", "list"):
                    measure(pipe, served.url, kind, f"warm{name[0]}", WARMUP, **common)
            watch = CpuWatch()
            results: dict[tuple[str, str], list[dict[str, Any]]] = {
                (app, kind): [] for app in servers for kind in ("create", "list")}
            for round_no in range(args.rounds):
                order = list(servers) if round_no % 2 == 0 else list(reversed(servers))
                for kind in ("create", "list"):
                    for name in order:
                        tag = f"r{round_no}{name[0]}"
                        result = measure(pipe, servers[name].url, kind, tag, args.requests, **common)
                        results[(name, kind)].append(result)
                        print(f"  round {round_no + 1} {kind:<6} {name:<8} {result['rps']:8.1f} req/s",
                              flush=True)
            pipe.send(None)
            client.join(timeout=10)
            ok = report(args, database.label, results, watch.others())
        finally:
            for step in reversed(cleanup):
                step()
            timer.cancel()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
