"""Exports of record lists as CSV and XLSX: the list's filters, scope and hidden fields apply."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity.directory import create_user
from runtime.identity.tokens import create_token
from runtime.records.export import sheet_title, table_csv, table_xlsx
from tests.support import count_queries, write_files, write_pack

APP = """\
app: t
label: Test
version: '1'
timezone: Asia/Shanghai
roles:
  - {key: rep}
  - {key: manager}
  - {key: clerk}
  - {key: analyst}
"""
ACCOUNT = """\
form: account
label: {zh: 客户, en: Account}
title_field: name
fields:
  - {key: name, type: text}
permissions:
  - {roles: [rep], can: [create, read], scope: own}
  - {roles: [manager, clerk], can: [read]}
"""
LINE = """\
form: line
label: Line
child: true
fields:
  - {key: product, type: text}
"""
DEAL = """\
form: deal
label: {zh: 交易, en: Deal}
title_field: title
owner_field: owner
fields:
  - {key: title, type: text, label: {zh: 标题, en: Title}}
  - {key: amount, type: money, label: {zh: 金额, en: Amount}, hidden_for: [rep]}
  - {key: seats, type: integer}
  - {key: close_on, type: date, label: {zh: 预计成交, en: Close on}}
  - {key: met_at, type: datetime, label: {zh: 会面时间, en: Met at}}
  - {key: won, type: boolean, default: false, label: {zh: 赢单, en: Won}}
  - {key: stage, type: select, options: [new, won, lost], default: new}
  - {key: tags, type: multi_select, options: [hot, vip]}
  - {key: account, type: link, to: account, on_delete: set_null, label: {zh: 客户, en: Account}}
  - {key: owner, type: user, label: {zh: 负责人, en: Owner}}
  - {key: lines, type: table, form: line}
list:
  columns: [title, amount, seats, close_on, met_at, won, stage, tags, account, lines]
  sort: [title]
permissions:
  - {roles: [rep], can: [create, read, update, export], scope: own}
  - {roles: [manager], can: [read, export]}
  - {roles: [clerk], can: [read]}
  - {roles: [analyst], can: [read, create]}
  - {roles: [analyst], can: [export], scope: own}
"""
ZH_HEADER = ["标题", "金额", "seats", "预计成交", "会面时间", "赢单", "stage", "tags", "客户"]
CSV_URL = "/api/v1/t/deal/export.csv"
XLSX_URL = "/api/v1/t/deal/export.xlsx"


class Shop:
    """A pack with deals, an admin (Chinese), a manager (English), a rep and a clerk."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(root / "pack", {"account": ACCOUNT, "line": LINE, "deal": DEAL})
        write_files(pack, {"app.yaml": APP})
        self.runtime: Runtime = start([pack], db_url, root / "files")
        self.tokens: dict[str, str] = {}
        with write(self.runtime.engine) as conn:
            for name, role, language in [
                ("root", "admin", "zh"),
                ("meg", "manager", "en"),
                ("ann", "rep", "zh"),
                ("bob", "rep", "zh"),
                ("cat", "clerk", "zh"),
                ("ida", "analyst", "en"),
            ]:
                create_user(conn, name, None, display_name=name.title(), roles=(role,), language=language)
                self.tokens[name] = create_token(conn, name)
        self.anonymous = TestClient(self.runtime.api)

    def client(self, name: str) -> TestClient:
        return TestClient(self.runtime.api, headers={"Authorization": f"Bearer {self.tokens[name]}"})

    def deal(self, name: str, **values: Any) -> dict[str, Any]:
        answer = self.client(name).post("/api/v1/t/deal", json=values)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[Shop]:
    built = Shop(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def csv_rows(client: TestClient, query: str = "") -> list[list[str]]:
    answer = client.get(f"{CSV_URL}{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="deal.csv"'
    assert answer.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def xlsx_rows(client: TestClient, query: str = "") -> tuple[Any, list[list[Any]]]:
    answer = client.get(f"{XLSX_URL}{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    return sheet, [[cell.value for cell in row] for row in sheet.iter_rows()]


def big_deal(shop: Shop) -> dict[str, Any]:
    acme = shop.client("root").post("/api/v1/t/account", json={"name": "华信精密"}).json()
    return shop.deal(
        "root",
        title="Big deal",
        amount="1234.5",
        seats=12,
        close_on="2026-12-31",
        met_at="2026-11-28T09:30:00Z",
        won=True,
        stage="won",
        tags=["vip", "hot"],
        account=acme["id"],
        lines=[{"product": "A"}],
    )


def test_csv_has_the_list_columns_labelled_in_the_callers_language(shop: Shop) -> None:
    big_deal(shop)
    shop.deal("root", title="Empty one")
    rows = csv_rows(shop.client("root"))
    assert rows == [
        ZH_HEADER,  # table fields are no columns
        [
            "Big deal",
            "1234.50",
            "12",
            "2026-12-31",
            "2026-11-28 17:30:00+08:00",
            "true",
            "won",
            "hot, vip",
            "华信精密",
        ],
        ["Empty one", "", "", "", "", "false", "new", "", ""],
    ]
    english = csv_rows(shop.client("meg"))[0]
    assert english == ["Title", "Amount", "seats", "Close on", "Met at", "Won", "stage", "tags", "Account"]


def test_xlsx_keeps_numbers_dates_and_booleans(shop: Shop) -> None:
    big_deal(shop)
    sheet, rows = xlsx_rows(shop.client("root"))
    assert sheet.title == "交易"
    assert rows[0] == ZH_HEADER
    assert all(cell.font.b for cell in sheet[1])
    assert rows[1] == [
        "Big deal",
        1234.5,
        12,
        dt.datetime(2026, 12, 31),
        dt.datetime(2026, 11, 28, 17, 30),  # the app's time zone, as Excel has none
        True,
        "won",
        "hot, vip",
        "华信精密",
    ]
    assert sheet["D2"].is_date and sheet["E2"].is_date


def test_filters_where_sort_and_fields_apply(shop: Shop) -> None:
    for title, seats, stage in [("a", 1, "won"), ("b", 5, "won"), ("c", 9, "won"), ("d", 9, "lost")]:
        shop.deal("root", title=title, seats=seats, stage=stage)
    query = "?stage=won&where=seats > 2&sort=-seats&fields=seats,title,id&limit=1&offset=7&count=true"
    rows = csv_rows(shop.client("root"), query)
    assert rows[0] == ["seats", "标题", "编号"]
    assert [r[:2] for r in rows[1:]] == [["9", "c"], ["5", "b"]]  # paging parameters are ignored
    _, cells = xlsx_rows(shop.client("meg"), "?title__in=a,d&fields=title,created_by,created_at")
    assert cells[0] == ["Title", "Created by", "Created at"]
    assert [r[:2] for r in cells[1:]] == [["a", "Root"], ["d", "Root"]]
    assert isinstance(cells[1][2], dt.datetime)


def test_a_rep_exports_own_rows_without_hidden_fields(shop: Shop) -> None:
    account = shop.client("root").post("/api/v1/t/account", json={"name": "Not yours"}).json()
    mine = shop.deal("ann", title="ann's")  # a link to an account ann cannot read is set by an admin
    shop.client("root").patch(f"/api/v1/t/deal/{mine['id']}", json={"account": account["id"]})
    shop.deal("bob", title="bob's")
    shop.deal("root", title="root's", amount="5")
    rows = csv_rows(shop.client("ann"))
    header = ["标题", "seats", "预计成交", "会面时间", "赢单", "stage", "tags", "客户"]
    assert rows == [header, ["ann's", "", "", "", "false", "new", "", f"#{account['id']}"]]
    _, cells = xlsx_rows(shop.client("ann"))
    assert cells == [header, ["ann's", None, None, None, False, "new", None, f"#{account['id']}"]]
    refused = shop.client("ann").get(f"{CSV_URL}?fields=title,amount&amount__gt=1&sort=-amount")
    assert refused.status_code == 422
    assert {(p["field"], p["code"]) for p in refused.json()["errors"]} == {
        ("query.fields", "unknown_field"),
        ("query.amount__gt", "unknown_field"),
        ("query.sort", "unknown_field"),
    }
    assert [r[0] for r in csv_rows(shop.client("meg"))[1:]] == ["ann's", "bob's", "root's"]


def test_rows_are_in_both_the_read_and_the_export_scope(shop: Shop) -> None:
    shop.deal("root", title="root's")
    shop.deal("ida", title="ida's")
    assert len(shop.client("ida").get("/api/v1/t/deal").json()["items"]) == 2  # reads every deal
    assert [r[0] for r in csv_rows(shop.client("ida"), "?fields=title")] == ["Title", "ida's"]


def test_export_needs_the_export_operation_and_a_signed_in_caller(shop: Shop) -> None:
    shop.deal("root", title="x")
    assert shop.client("cat").get("/api/v1/t/deal").status_code == 200  # the clerk reads ...
    for url in (CSV_URL, XLSX_URL):
        forbidden = shop.client("cat").get(url)  # ... but may not export
        assert forbidden.status_code == 403
        assert forbidden.json()["errors"][0]["code"] == "forbidden"
        assert shop.anonymous.get(url).status_code == 401
        assert shop.client("meg").get(url.replace("deal", "account")).status_code == 403
    assert shop.client("root").get("/api/v1/t/nosuch/export.csv").status_code == 404


def test_bad_parameters_are_422_all_at_once(shop: Shop) -> None:
    answer = shop.client("root").get(f"{CSV_URL}?fields=title,lines,nosuch&seats__gt=x&where=seats +")
    assert answer.status_code == 422
    assert sorted((p["field"], p["code"]) for p in answer.json()["errors"]) == [
        ("query.fields", "invalid"),
        ("query.fields", "unknown_field"),
        ("query.seats__gt", "type"),
        ("query.where", "expression"),
    ]
    assert shop.client("root").get(f"{CSV_URL}?fields=").status_code == 422


def test_text_never_becomes_a_formula(shop: Shop) -> None:
    shop.deal("root", title='=HYPERLINK("http://x","y")', seats=1)
    shop.deal("root", title="+86 138 0013 8000", seats=2)
    shop.deal("root", title="#N/A", seats=3)
    shop.deal("root", title="bell\x07", seats=4)
    rows = csv_rows(shop.client("root"), "?fields=title&sort=seats")
    assert rows[1:] == [['\'=HYPERLINK("http://x","y")'], ["+86 138 0013 8000"], ["#N/A"], ["bell\x07"]]
    sheet, cells = xlsx_rows(shop.client("root"), "?fields=title&sort=seats")
    assert [r[0] for r in cells[1:]] == [
        '=HYPERLINK("http://x","y")',
        "+86 138 0013 8000",
        "#N/A",
        "bell\ufffd",  # XML has no place for control characters
    ]
    assert [c.data_type for c in sheet["A"][1:]] == ["s", "s", "s", "s"]


def test_the_writers_take_any_table() -> None:
    columns = [("who", "Who"), ("tags", "Tags"), ("at", "At"), ("n", "N"), ("file", "File")]
    at = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    rows = [
        [{"id": 3, "display": "Li"}, ["a", "b"], at, Decimal("0.350000"), {"id": 9, "name": "c.pdf"}],
        [{"id": 4, "display": None}, (), None, -2, None],
    ]
    text = table_csv(columns, rows).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [
        ["Who", "Tags", "At", "N", "File"],
        ["Li", "a, b", "2026-01-02 03:04:00+08:00", "0.350000", "c.pdf"],
        ["#4", "", "", "-2", ""],
    ]
    book = load_workbook(io.BytesIO(table_xlsx(columns, iter(rows), "Q3: [east]/west?")))
    sheet = book.active
    assert sheet is not None and sheet.title == "Q3 east west"
    assert [[c.value for c in r] for r in sheet.iter_rows(min_row=2)] == [
        ["Li", "a, b", dt.datetime(2026, 1, 2, 3, 4), 0.35, "c.pdf"],
        ["#4", None, None, -2, None],
    ]
    assert sheet_title("x" * 40) == "x" * 31 and sheet_title("[]") == "Sheet1"


def test_the_number_of_queries_does_not_grow_with_the_rows(shop: Shop) -> None:
    ann, engine = shop.client("ann"), shop.runtime.engine
    account = ann.post("/api/v1/t/account", json={"name": "Acme"}).json()  # links checked against scope
    statements: dict[str, list[str]] = {}

    def queries(url: str) -> int:
        with count_queries(engine) as statements[url]:
            assert ann.get(url).status_code == 200
        return len(statements[url])

    shop.deal("ann", title="first", account=account["id"])
    few = queries(CSV_URL), queries(XLSX_URL)
    ann.post("/api/v1/t/deal/bulk", json=[{"title": f"d{i}", "account": account["id"]} for i in range(40)])
    assert (queries(CSV_URL), queries(XLSX_URL)) == few
    export = [s for s in statements[CSV_URL] if "t__deal" in s]
    assert len(export) == 2, export  # the count, then one SELECT of the rows with their display values
    assert sum("t__account" in s for s in statements[CSV_URL]) == 2  # that SELECT, and one scope check
    assert len(csv_rows(ann)) == 42


def test_rows_are_read_in_batches_and_the_size_is_capped(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    shop.client("root").post("/api/v1/t/deal/bulk", json=[{"title": f"d{i:02}"} for i in range(7)])
    monkeypatch.setattr("runtime.records.service.EXPORT_BATCH", 2)
    assert [r[0] for r in csv_rows(shop.client("root"), "?fields=title&sort=-title")[1:]] == [
        f"d{i:02}" for i in reversed(range(7))
    ]
    monkeypatch.setattr("runtime.records.service.MAX_EXPORT_ROWS", 6)
    answer = shop.client("root").get(XLSX_URL)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["code"] == "max_rows"
    assert shop.client("root").get(f"{XLSX_URL}?title__ne=d00").status_code == 200


def test_export_routes_leave_record_routes_alone_and_are_in_the_spec(shop: Shop) -> None:
    created = shop.deal("root", title="x")
    root = shop.client("root")
    assert root.get(f"/api/v1/t/deal/{created['id']}").json()["title"] == "x"
    assert root.get("/api/v1/t/deal/export.pdf").status_code == 422  # not a record id
    paths = root.get("/openapi.json").json()["paths"]
    csv_op, xlsx_op = paths[CSV_URL]["get"], paths[XLSX_URL]["get"]
    assert list(csv_op["responses"]["200"]["content"]) == ["text/csv"]
    assert list(xlsx_op["responses"]["200"]["content"]) == [
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ]
    names = {p["name"] for p in csv_op["parameters"]}
    assert {"fields", "where", "sort", "title", "seats"} <= names
    assert not names & {"limit", "offset", "count"}
