"""The generated web pages against the JSON API they are built on, in one process.

The sales pack with its demo users and N generated leads (default 2,000) is served
in-process; a manager (team scope) is signed in through the real sign-in form for
the pages and holds a token for the API. Three pairs are timed, alternating which
goes first, over several rounds:

* list:    `GET /app/sales/lead` (HTML: 50 rows formatted, navigation, saved views,
           counts) against `GET /api/v1/sales/lead?count=true` (the same 50 rows as JSON);
* record:  `GET /app/sales/quote/1` (values, actions, approvals, timeline) against
           `GET /api/v1/sales/quote/1` plus its `/transitions`, `/approvals` and `/history`;
* preview: `POST /app/sales/quote/_live` (two lines, every formula) against
           `GET /api/v1/sales/quote/1`.

It prints the median milliseconds of each side and the ratio page/API. Statements
per request are counted as well: a page must cost the same for 5 rows as for 50.

    .venv/bin/python bench/web_pages.py
    .venv/bin/python bench/web_pages.py --db postgresql://postgres@127.0.0.1:5432/test --leads 20000
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.boot import start
from runtime.db import write
from runtime.identity.actor import SYSTEM
from runtime.identity.tokens import create_token
from runtime.seed import demo_file, seed_demo, seed_users
from tests.support import SALES, count_queries

SOURCES = ["seo", "webinar", "trade_show", "partner_referral", "sem"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=10, help="requests per side per round")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    url, schema = _database(args.db, folder)
    runtime = start([SALES], url, folder / "files")
    try:
        seed_users(runtime.service, demo_file(SALES, "users.yaml"))  # type: ignore[arg-type]
        seed_demo(runtime.service, "sales", demo_file(SALES))  # type: ignore[arg-type]
        _leads(runtime, args.leads)
        page, api = _clients(runtime)
        pairs = _pairs(page, api)
        print(f"Formloom web pages vs the JSON API, {runtime.engine.dialect.name}, {args.leads:,} leads")
        for name, (web_call, api_call) in pairs.items():
            web_ms, api_ms = _race(web_call, api_call, args.rounds, args.repeat)
            with count_queries(runtime.engine) as statements:
                web_call()
            print(
                f"  {name:<8} page {web_ms:7.2f} ms   API {api_ms:7.2f} ms   "
                f"ratio {web_ms / api_ms:5.2f}   page statements {len(statements)}"
            )
    finally:
        runtime.engine.dispose()
        if schema:
            _drop(args.db, schema)
    return 0


def _database(given: str | None, folder: Path) -> tuple[str, str | None]:
    if not given:
        return f"sqlite:///{folder}/bench.db", None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with create_engine(given).begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{given}?options=-csearch_path%3D{schema}", schema


def _drop(url: str, schema: str) -> None:
    with create_engine(url).begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _leads(runtime: Any, count: int) -> None:
    owner = runtime.service.list_page("sales", "lead", [("limit", "1")], SYSTEM)["items"][0]["owner"]["id"]
    batch = [
        {
            "company": f"Bench company {n:06d}",
            "contact_name": f"Contact {n}",
            "email": f"c{n}@bench.example.com",
            "source": SOURCES[n % len(SOURCES)],
            "budget": n * 10,
            "owner": owner,
            "interest_level": 1 + n % 5,
        }
        for n in range(count)
    ]
    for start_at in range(0, count, 500):
        runtime.service.create_many(
            "sales", "lead", batch[start_at : start_at + 500], SYSTEM, allow_duplicate=True
        )


def _clients(runtime: Any) -> tuple[TestClient, TestClient]:
    page = TestClient(runtime.api)
    login = page.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token is not None
    form = {
        "username": "qian.manager",
        "password": "formloom-demo",
        "csrf_token": token.group(1),
        "next": "/",
    }
    page.post("/login", data=form, follow_redirects=False)
    with write(runtime.engine) as conn:
        bearer = create_token(conn, "qian.manager", "bench")
    return page, TestClient(runtime.api, headers={"Authorization": f"Bearer {bearer}"})


def _pairs(page: TestClient, api: TestClient) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get("/").text)
    assert csrf is not None
    quote = {
        "csrf_token": csrf.group(1),
        "opportunity": "1",
        "account": "1",
        "_present": "lines",
        "lines[0].product": "1",
        "lines[0].quantity": "100",
        "lines[0].unit_price": "1200",
        "lines[0].discount_pct": "35",
        "lines[1].product": "2",
        "lines[1].quantity": "10",
        "lines[1].unit_price": "3000",
    }

    def record_api() -> None:
        for suffix in ("", "/transitions", "/approvals", "/history"):
            _ok(api.get(f"/api/v1/sales/quote/1{suffix}"))

    return {
        "list": (
            lambda: _ok(page.get("/app/sales/lead")),
            lambda: _ok(api.get("/api/v1/sales/lead?count=true")),
        ),
        "record": (lambda: _ok(page.get("/app/sales/quote/1")), record_api),
        "preview": (
            lambda: _ok(
                page.post("/app/sales/quote/_live", data=quote, headers={"X-CSRF-Token": quote["csrf_token"]})
            ),
            lambda: _ok(api.get("/api/v1/sales/quote/1")),
        ),
    }


def _ok(answer: Any) -> None:
    if answer.status_code >= 300:
        raise SystemExit(
            f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text[:300]}"
        )


def _race(
    first: Callable[[], Any], second: Callable[[], Any], rounds: int, repeat: int
) -> tuple[float, float]:
    """Median milliseconds per call of each, alternating which goes first."""
    times: dict[int, list[float]] = {0: [], 1: []}
    calls = [first, second]
    first(), second()  # warm up
    for round_number in range(rounds):
        order = (0, 1) if round_number % 2 == 0 else (1, 0)
        for index in order:
            began = time.perf_counter()
            for _ in range(repeat):
                calls[index]()
            times[index].append((time.perf_counter() - began) * 1000 / repeat)
    return statistics.median(times[0]), statistics.median(times[1])


if __name__ == "__main__":
    raise SystemExit(main())
