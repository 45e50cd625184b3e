"""List queries: filters, sorting, paging and link display values, with no query per row."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import count_queries, serve, write_pack

ACCOUNT = """\
form: account
label: Account
title_field: name
fields:
  - {key: name, type: text, required: true}
"""
LINE = """\
form: line
label: Line
child: true
fields:
  - {key: sku, type: text}
  - {key: account, type: link, to: account, on_delete: set_null}
"""
LEAD = """\
form: lead
label: Lead
fields:
  - {key: company, type: text}
  - {key: email, type: email}
  - {key: phone, type: phone}
  - {key: budget, type: money}
  - {key: visits, type: integer}
  - {key: hot, type: boolean}
  - {key: due, type: date}
  - {key: source, type: select, options: [seo, ads, referral]}
  - {key: tags, type: multi_select, options: [a, b, c]}
  - {key: account, type: link, to: account, on_delete: set_null}
  - {key: lines, type: table, form: line}
list:
  sort: [company]
"""


@pytest.fixture
def app(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    pack = write_pack(tmp_path / "pack", {"account": ACCOUNT, "line": LINE, "lead": LEAD})
    runtime, client = serve(pack, db_url, tmp_path / "files")
    accounts = client.post("/api/v1/t/account/bulk", json=[{"name": "Zeta"}, {"name": "Alpha"}]).json()
    leads = [
        {
            "company": "Beta 50%_off",
            "email": "b@x.cn",
            "phone": "13800138000",
            "budget": 500,
            "visits": 3,
            "hot": True,
            "due": "2026-01-10",
            "source": "seo",
            "tags": ["a", "b"],
            "account": accounts[0]["id"],
        },
        {
            "company": "alpha",
            "budget": 1500.5,
            "visits": 10,
            "hot": False,
            "due": "2026-03-01",
            "source": "ads",
            "tags": ["c"],
            "account": accounts[1]["id"],
        },
        {"company": "Gamma", "visits": 7, "source": "referral"},
    ]
    assert client.post("/api/v1/t/lead/bulk", json=leads).status_code == 201
    yield runtime, client
    runtime.engine.dispose()


def companies(client, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/t/lead?{query}")
    assert response.status_code == 200, response.text
    return [r["company"] for r in response.json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("source=seo", ["Beta 50%_off"]),
        ("source__ne=seo", ["alpha", "Gamma"]),
        ("visits__gt=3", ["alpha", "Gamma"]),
        ("visits__lte=7&visits__gte=7", ["Gamma"]),
        ("budget__lt=1000", ["Beta 50%_off"]),
        ("budget__isnull=true", ["Gamma"]),
        ("hot=false", ["alpha"]),
        ("due__gte=2026-02-01", ["alpha"]),
        ("source__in=seo,referral", ["Beta 50%_off", "Gamma"]),
        ("company__contains=ALP", ["alpha"]),
        ("company__contains=50%25_", ["Beta 50%_off"]),
        ("company__contains=5_", []),
        ("company__startswith=g", ["Gamma"]),
        ("tags__contains=c", ["alpha"]),
        ("email=B@X.CN", ["Beta 50%_off"]),
        ("phone=138-0013-8000", ["Beta 50%_off"]),
        ("account__isnull=false&sort=-company", ["Beta 50%_off", "alpha"]),
        ("sort=-visits", ["alpha", "Gamma", "Beta 50%_off"]),
        ("sort=budget", ["Beta 50%_off", "alpha", "Gamma"]),
        ("sort=-budget", ["alpha", "Beta 50%_off", "Gamma"]),
        ("sort=account", ["alpha", "Beta 50%_off", "Gamma"]),
        ("", ["alpha", "Beta 50%_off", "Gamma"]),
        ("company__gt=a", ["alpha"]),
        ("company__lt=a", ["Beta 50%_off", "Gamma"]),
    ],
)
def test_filters_and_sorts(app, query: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert companies(app[1], query) == expected


def test_paging_with_limit_offset_and_count(app) -> None:  # type: ignore[no-untyped-def]
    client = app[1]
    first = client.get("/api/v1/t/lead?sort=visits&limit=2&count=true").json()
    assert [r["visits"] for r in first["items"]] == [3, 7]
    assert (first["next_offset"], first["total"]) == (2, 3)
    second = client.get("/api/v1/t/lead?sort=visits&limit=2&offset=2").json()
    assert [r["visits"] for r in second["items"]] == [10]
    assert second["next_offset"] is None


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("limit=501", "query.limit", "invalid"),
        ("offset=-1", "query.offset", "invalid"),
        ("nosuch=1", "query.nosuch", "unknown_field"),
        ("visits__like=1", "query.visits__like", "unknown_operator"),
        ("hot__gt=true", "query.hot__gt", "invalid_operator"),
        ("visits=abc", "query.visits", "type"),
        ("due=yesterday", "query.due", "type"),
        ("source=nope", "query.source", "option"),
        ("sort=tags", "query.sort", "invalid"),
        ("sort=-nosuch", "query.sort", "unknown_field"),
        ("account=1;DROP TABLE t__lead", "query.account", "type"),
        ("company__isnull=maybe", "query.company__isnull", "invalid"),
    ],
)
def test_bad_queries_answer_422(app, query: str, field: str, code: str) -> None:  # type: ignore[no-untyped-def]
    response = app[1].get(f"/api/v1/t/lead?{query}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert response.json()["errors"][0]["code"] == code


def test_links_show_the_linked_title(app) -> None:  # type: ignore[no-untyped-def]
    items = app[1].get("/api/v1/t/lead?source=seo").json()["items"]
    assert items[0]["account"]["display"] == "Zeta"


def test_a_page_of_500_costs_the_same_queries_as_a_page_of_5(app) -> None:  # type: ignore[no-untyped-def]
    runtime, client = app
    account = client.get("/api/v1/t/account").json()["items"][0]["id"]
    rows = [
        {"company": f"C{i}", "account": account, "lines": [{"sku": "s", "account": account}]}
        for i in range(600)
    ]
    assert client.post("/api/v1/t/lead/bulk", json=rows[:300]).status_code == 201
    assert client.post("/api/v1/t/lead/bulk", json=rows[300:]).status_code == 201
    with count_queries(runtime.engine) as small:
        page = client.get("/api/v1/t/lead?limit=5").json()
    assert len(page["items"]) == 5
    with count_queries(runtime.engine) as large:
        page = client.get("/api/v1/t/lead?limit=500").json()
    assert len(page["items"]) == 500
    assert all(r["account"]["display"] for r in page["items"][3:])
    assert all(r["lines"][0]["account"]["display"] == "Zeta" for r in page["items"][3:])
    small = [q for q in small if "formloom_apps" not in q]  # the once-a-second publish check
    large = [q for q in large if "formloom_apps" not in q]
    assert len(small) == len(large)  # the same statements whatever the page size
    reads = [q for q in large if "FROM t__lead" in q or "FROM t__lead__lines" in q]
    assert len(reads) == 2  # the page itself, and one query for the child rows


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("visits > 3 and source != 'ads'", ["Gamma"]),
        ("source in ['seo', 'referral'] or budget >= 1000", ["alpha", "Beta 50%_off", "Gamma"]),
        ("budget == null", ["Gamma"]),
        ("account.name == 'Zeta'", ["Beta 50%_off"]),
        ("CONTAINS(tags, 'c')", ["alpha"]),
        ("YEAR(due) == 2026 and MONTH(due) >= 3", ["alpha"]),
        ("LOWER(company) == 'gamma'", ["Gamma"]),
        ("COUNT(lines) == 0", ["alpha", "Beta 50%_off", "Gamma"]),
        ("IF(hot, visits, 0) > 1", ["Beta 50%_off"]),
    ],
)
def test_where_expressions_filter_in_sql(app, where: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    response = app[1].get("/api/v1/t/lead", params={"where": where})
    assert response.status_code == 200, response.text
    assert [r["company"] for r in response.json()["items"]] == expected


@pytest.mark.parametrize(
    "where",
    [
        "1; DROP TABLE t__lead",
        "company == '' OR 1=1 --",
        "__import__('os').system('true')",
        "visits > (SELECT 1)",
        "x" * 2100,
        "(" * 60 + "1" + ")" * 60,
        "visits + 'a'",
        "visits",
    ],
)
def test_hostile_where_answers_422_and_changes_nothing(app, where: str) -> None:  # type: ignore[no-untyped-def]
    client = app[1]
    response = client.get("/api/v1/t/lead", params={"where": where})
    assert response.status_code == 422
    problem = response.json()["errors"][0]
    assert (problem["field"], problem["code"]) == ("query.where", "expression")
    assert len(client.get("/api/v1/t/lead").json()["items"]) == 3


@pytest.mark.parametrize("where", ["nosuch > 1", "company.__class__"])
def test_an_unknown_name_in_where_is_an_unknown_field(app, where: str) -> None:  # type: ignore[no-untyped-def]
    response = app[1].get("/api/v1/t/lead", params={"where": where})
    assert response.status_code == 422
    problem = response.json()["errors"][0]
    assert (problem["field"], problem["code"]) == ("query.where", "unknown_field")
    assert len(app[1].get("/api/v1/t/lead").json()["items"]) == 3
