"""The sales dashboard: each widget against hand-written SQL on generated data (both databases).

Records are created through the records service, then dates and the process history
are spread with SQL, as years of use would leave them. Every widget must give what a
developer's own query gives; a rep's dashboard counts only the rep's records; bad
parameters answer 422; each widget's data is one statement.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity.directory import user_id_of
from runtime.seed import demo_file, seed_users
from tests.support import SALES, count_queries, user_token

NOW = dt.datetime(2026, 11, 28, 4, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 28)  # in Shanghai
CHANNELS = ["seo", "webinar", "trade_show", "partner_referral", "upsell"]
LEAD_STATES = ["new", "contacted", "mql", "sql", "converted", "disqualified"]
PATHS = {  # the transitions a lead in each state went through
    "new": [],
    "contacted": ["contacted"],
    "mql": ["mql"],
    "sql": ["mql", "sql"],
    "converted": ["mql", "sql", "converted"],
    "disqualified": ["contacted", "disqualified"],
}


@pytest.fixture
def sales(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = start([SALES], db_url, tmp_path / "files", clock=lambda: NOW)
    people = demo_file(SALES, "users.yaml")
    assert people is not None
    seed_users(runtime.service, people)
    generate(runtime)
    yield runtime
    runtime.engine.dispose()


def generate(runtime: Runtime) -> None:
    """Leads, opportunities, contracts, orders and milestones, with history and spread dates."""
    rng = random.Random(7)
    service = runtime.service
    with write(runtime.engine) as conn:
        reps = [user_id_of(conn, n) for n in ("li.rep", "zhou.rep", "qian.manager")]
    leads = []
    for n in range(60):
        state = rng.choice(LEAD_STATES)
        leads.append(
            {
                "company": f"C{n}",
                "contact_name": f"P{n}",
                "source": rng.choice(CHANNELS),
                "email": f"p{n}@c{n}.cn",
                "status": state,
                "owner": rng.choice(reps),
                **({"disqualify_reason": "no_need"} if state == "disqualified" else {}),
            }
        )
    created = service.create_many("sales", "lead", leads)
    account = service.create("sales", "account", {"name": "华信"})["id"]
    opportunities = service.create_many(
        "sales",
        "opportunity",
        [
            {
                "name": f"O{n}",
                "account": account,
                "stage": rng.choice(["needs_analysis", "solution", "won", "lost"]),
                "amount": str(rng.randrange(1000, 90000)),
                "owner": rng.choice(reps),
            }
            for n in range(30)
        ],
    )
    contracts = service.create_many(
        "sales",
        "contract",
        [
            {
                "subject": f"K{n}",
                "account": account,
                "amount": str(rng.randrange(10000, 500000)),
                "status": rng.choice(["draft", "signed", "active", "completed"]),
                "owner": rng.choice(reps),
            }
            for n in range(20)
        ],
    )
    order = service.create("sales", "sales_order", {"account": account, "owner": reps[0]})["id"]
    milestones = service.create_many(
        "sales",
        "payment_milestone",
        [
            {
                "sales_order": order,
                "name": f"M{n}",
                "amount": str(rng.randrange(1000, 50000)),
                "due_date": (TODAY - dt.timedelta(days=rng.randrange(-20, 150))).isoformat(),
                "status": rng.choice(["open", "overdue", "paid"]),
                "owner": rng.choice(reps),
            }
            for n in range(25)
        ],
    )
    with write(runtime.engine) as conn:
        for lead in created:
            when = NOW - dt.timedelta(days=rng.randrange(0, 400))
            conn.execute(
                text("UPDATE sales__lead SET created_at = :w WHERE id = :id"), {"w": when, "id": lead["id"]}
            )
            for state in PATHS[lead["status"]]:
                conn.execute(
                    text(
                        "INSERT INTO formloom_audit (app, form, record_id, action, channel, at, changes) "
                        "VALUES ('sales', 'lead', :id, 'transition', 'workflow', :at, :changes)"
                    ),
                    {"id": lead["id"], "at": when, "changes": f'{{"to": "{state}"}}'},
                )
        for contract in contracts:
            signed = None if contract["status"] == "draft" else NOW - dt.timedelta(days=rng.randrange(0, 300))
            conn.execute(
                text("UPDATE sales__contract SET signed_at = :s WHERE id = :id"),
                {"s": signed, "id": contract["id"]},
            )
        for milestone in milestones:
            paid = milestone["amount"] if milestone["status"] == "paid" else "0"
            conn.execute(
                text(
                    "UPDATE sales__payment_milestone SET paid_amount = :p, balance = amount - :p "
                    "WHERE id = :id"
                ),
                {"p": paid, "id": milestone["id"]},
            )
    assert len(opportunities) == 30


def widget(runtime: Runtime, key: str, username: str = "admin", query: str = "") -> dict[str, Any]:
    client = TestClient(
        runtime.api, headers={"Authorization": f"Bearer {user_token(runtime.engine, username, ())}"}
    )
    answer = client.get(f"/api/v1/sales/dashboards/sales/widgets/{key}/data{query}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def rows_of(data: dict[str, Any]) -> dict[Any, list[Any]]:
    """Each group's measures, by its dimension values."""
    found = {}
    for row in data["rows"]:
        key = tuple(d["value"] for d in row["dimensions"])
        found[key if len(key) != 1 else key[0]] = list(row["values"])
    return found


def query(runtime: Runtime, sql: str, **params: Any) -> list[Any]:
    with runtime.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def money(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def test_leads_and_conversion_by_channel(sales: Runtime) -> None:
    expected = {
        source: [leads, converted, round(converted / leads, 4)]
        for source, leads, converted in query(
            sales,
            "SELECT source, COUNT(*), SUM(CASE WHEN status = 'converted' THEN 1 ELSE 0 END) "
            "FROM sales__lead WHERE _merged_into IS NULL GROUP BY source",
        )
    }
    data = widget(sales, "leads_by_channel")
    assert rows_of(data) == expected
    counts = [r["values"][0] for r in data["rows"]]
    assert counts == sorted(counts, reverse=True)  # sort: -leads


def test_pipeline_value_by_stage(sales: Runtime) -> None:
    expected = {
        stage: [n, money(total)]
        for stage, n, total in query(
            sales,
            "SELECT stage, COUNT(*), SUM(amount) FROM sales__opportunity "
            "WHERE stage <> 'lost' GROUP BY stage",
        )
    }
    assert rows_of(widget(sales, "pipeline_by_stage")) == expected


def test_won_revenue_by_month_in_the_app_time_zone(sales: Runtime, db_url: str) -> None:
    month = (
        "to_char(signed_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"
        if db_url.startswith("postgresql")
        else "strftime('%Y-%m', signed_at, '+480 minutes')"
    )
    expected = {
        m: [money(total), n]
        for m, total, n in query(
            sales,
            f"SELECT {month}, SUM(amount), COUNT(*) FROM sales__contract "
            "WHERE signed_at IS NOT NULL AND status IN ('signed', 'active', 'completed') GROUP BY 1",
        )
    }
    data = widget(sales, "won_revenue_by_month")
    assert rows_of(data) == expected
    assert [r["dimensions"][0]["value"] for r in data["rows"]] == sorted(expected)


def test_receivables_aging_buckets(sales: Runtime, db_url: str) -> None:
    days = (
        "(CAST(:today AS date) - due_date)"
        if db_url.startswith("postgresql")
        else "(julianday(:today) - julianday(due_date))"
    )
    bucket = (
        f"CASE WHEN {days} <= 0 THEN 'not_due' WHEN {days} <= 30 THEN '1-30' WHEN {days} <= 60 THEN '31-60' "
        f"WHEN {days} <= 90 THEN '61-90' ELSE '90+' END"
    )
    expected = {
        b: [money(total), n]
        for b, total, n in query(
            sales,
            f"SELECT {bucket}, SUM(balance), COUNT(*) FROM sales__payment_milestone "
            "WHERE balance > 0 GROUP BY 1",
            today=TODAY.isoformat(),
        )
    }
    assert rows_of(widget(sales, "ar_aging")) == expected


def test_the_overdue_list(sales: Runtime) -> None:
    expected = {
        (order, name): [money(total), str(due)[:10]]
        for order, name, total, due in query(
            sales,
            "SELECT sales_order, name, SUM(balance), MIN(due_date) FROM sales__payment_milestone "
            "WHERE status = 'overdue' GROUP BY sales_order, name",
        )
    }
    data = widget(sales, "overdue")
    assert rows_of(data) == expected
    dues = [r["values"][1] for r in data["rows"]]
    assert dues == sorted(dues)


def test_performance_by_rep_and_by_team(sales: Runtime) -> None:
    expected = {
        owner: [n, won, money(amount), round(won / n, 4)]
        for owner, n, won, amount in query(
            sales,
            "SELECT owner, COUNT(*), SUM(CASE WHEN stage = 'won' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN stage = 'won' THEN amount END) FROM sales__opportunity GROUP BY owner",
        )
    }
    reps = widget(sales, "rep_performance")
    assert rows_of(reps) == expected
    assert {r["dimensions"][0]["display"] for r in reps["rows"]} == {"李销售", "周销售", "钱经理"}
    teams = {
        team: [n, money(amount)]
        for team, n, amount in query(
            sales,
            "SELECT u.department_id, COUNT(*), SUM(CASE WHEN o.stage = 'won' THEN o.amount END) "
            "FROM sales__opportunity o LEFT JOIN formloom_users u ON u.id = o.owner GROUP BY u.department_id",
        )
    }
    assert rows_of(widget(sales, "team_performance")) == teams


def test_the_funnel_counts_what_reached_each_stage_from_the_history(sales: Runtime, db_url: str) -> None:
    to = "a.changes ->> 'to'" if db_url.startswith("postgresql") else "json_extract(a.changes, '$.to')"

    def reached(state: str) -> int:
        return query(
            sales,
            "SELECT COUNT(*) FROM sales__lead l WHERE l._merged_into IS NULL AND (l.status = :s OR EXISTS ("
            "SELECT 1 FROM formloom_audit a WHERE a.app = 'sales' AND a.form = 'lead' AND a.record_id = l.id "
            f"AND a.action = 'transition' AND {to} = :s))",
            s=state,
        )[0][0]

    leads = query(sales, "SELECT COUNT(*) FROM sales__lead")[0][0]
    data = widget(sales, "funnel")
    counts = [r["values"][0] for r in data["rows"]]
    assert counts[:3] == [leads, reached("mql"), reached("sql")]
    assert reached("sql") > query(sales, "SELECT COUNT(*) FROM sales__lead WHERE status = 'sql'")[0][0]
    # deals: the opportunities that came from a lead (none of the spread data's)
    assert counts[3] == query(sales, "SELECT COUNT(*) FROM sales__opportunity WHERE lead IS NOT NULL")[0][0]
    assert all(later <= earlier for earlier, later in itertools.pairwise(counts))
    assert data["rows"][1]["values"][1] == round(counts[1] / counts[0], 4)


def test_a_reps_dashboard_counts_only_the_reps_records(sales: Runtime) -> None:
    with write(sales.engine) as conn:
        rep = user_id_of(conn, "li.rep")
    mine = query(sales, "SELECT COUNT(*) FROM sales__lead WHERE owner = :o OR created_by = :o", o=rep)[0][0]
    assert widget(sales, "leads_this_period", "li.rep")["rows"][0]["values"] == [mine]
    assert widget(sales, "leads_this_period")["rows"][0]["values"] == [60]
    assert widget(sales, "leads_this_period", query=f"?owner={rep}")["rows"][0]["values"] == [mine]


def test_the_date_range_and_the_drill_down_agree_with_the_list(sales: Runtime) -> None:
    data = widget(sales, "leads_by_channel", query="?from=2026-06-01&to=2026-11-28")
    admin = TestClient(
        sales.api, headers={"Authorization": f"Bearer {user_token(sales.engine, 'admin', ())}"}
    )
    for row in data["rows"]:
        listed = admin.get(row["drill"] + "&count=true&limit=1").json()
        assert listed["total"] == row["values"][0], row["drill"]


def test_bad_parameters_answer_422_naming_each(sales: Runtime) -> None:
    client = TestClient(
        sales.api, headers={"Authorization": f"Bearer {user_token(sales.engine, 'admin', ())}"}
    )
    answer = client.get(
        "/api/v1/sales/dashboards/sales/widgets/funnel/data?from=2026-13-01&owner=999999&colour=red"
    )
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"from", "owner", "colour"}
    assert client.get("/api/v1/sales/dashboards/sales/widgets/nope/data").status_code == 404
    assert TestClient(sales.api).get("/api/v1/sales/dashboards/sales").status_code == 401


@pytest.mark.parametrize(
    "key",
    [
        "funnel",
        "leads_by_channel",
        "ar_aging",
        "rep_performance",
        "team_performance",
        "sla_compliance",
        "leads_by_channel_group",
    ],
)
def test_each_widget_is_one_statement(sales: Runtime, key: str) -> None:
    from runtime.identity.actor import SYSTEM
    from runtime.reports.service import ReportsService

    reports = ReportsService(sales.service)
    with count_queries(sales.engine) as statements:
        reports.data("sales", "sales", key, [], SYSTEM)
    assert len(statements) == 1, statements
