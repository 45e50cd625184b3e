"""Widgets on a tiny app: top N with other, pivots, buckets, linked fields, expressions, parameters."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity.directory import create_department, create_user
from tests.support import user_token, write_files, write_pack

NOW = dt.datetime(2026, 11, 28, 4, 0, tzinfo=dt.UTC)
REGION = """
form: region
label: Region
fields:
  - {key: name, type: text}
  - {key: zone, type: select, options: [north, south]}
permissions:
  - {roles: [seller, boss], can: [read], scope: all}
"""
SALE = """
form: sale
label: Sale
fields:
  - {key: item, type: text}
  - {key: price, type: money}
  - {key: units, type: integer}
  - {key: region, type: link, to: region}
  - {key: seller, type: user}
  - {key: sold_on, type: date}
  - {key: cost, type: money, hidden_for: [seller]}
owner_field: seller
permissions:
  - {roles: [seller], can: [read, export], scope: own}
  - {roles: [boss], can: [read], scope: all}
"""
DASHBOARD = """
dashboard: shop
label: Shop
widgets:
  - key: top_items
    label: Top items
    chart: bar
    source: sale
    dimensions: [{key: item, field: item}]
    measures:
      - {key: units, agg: sum, field: units}
      - {key: avg_price, agg: avg, field: price}
      - {key: sellers, agg: count_distinct, field: seller}
    sort: -units
    top: 2
  - key: top_units
    label: Top units
    chart: bar
    source: sale
    dimensions: [{key: item, field: item}]
    measures:
      - {key: units, agg: sum, field: units}
      - {key: sales, agg: count}
      - {key: big, agg: count, where: "units >= 5"}
      - {key: share, agg: ratio, numerator: big, denominator: sales}
    sort: -units
    top: 2
  - key: top_seller
    label: Top seller
    chart: bar
    source: sale
    dimensions: [{key: seller, field: seller}]
    measures: [{key: units, agg: sum, field: units}]
    sort: -units
    top: 1
  - key: by_zone_and_quarter
    label: Pivot
    chart: pivot
    source: sale
    date_field: sold_on
    dimensions: [{key: zone, field: region.zone}, {key: quarter, field: sold_on, bucket: quarter}]
    measures: [{key: sales, agg: count}, {key: big, agg: count, where: "units >= 5"}]
  - key: by_week
    label: Weeks
    chart: line
    source: sale
    dimensions: [{key: week, field: sold_on, bucket: week}]
    measures: [{key: sales, agg: count}]
  - key: by_region
    label: Regions
    chart: pie
    source: sale
    dimensions: [{key: region, field: region}]
    measures: [{key: sales, agg: count}]
  - key: size
    label: Sizes
    chart: bar
    source: sale
    dimensions: [{key: size, expression: "IF(units >= 5, 'big', 'small')"}]
    measures: [{key: sales, agg: count}]
  - key: costs
    label: Costs
    chart: bar
    source: sale
    dimensions: [{key: item, field: item}]
    measures: [{key: cost, agg: avg, field: cost}]
  - key: teams
    label: Teams
    chart: table
    source: sale
    dimensions: [{key: team, field: seller, department: true}]
    measures: [{key: sales, agg: count}]
"""
ITEMS = ["apple", "pear", "plum", "fig"]


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    pack = write_pack(tmp_path / "pack", {"region": REGION, "sale": SALE})
    (pack / "app.yaml").write_text("app: t\nlabel: T\nversion: 1.0.0\nroles: [{key: seller}, {key: boss}]\n")
    write_files(pack, {"dashboards/shop.yaml": DASHBOARD})
    runtime = start([pack], db_url, tmp_path / "files", clock=lambda: NOW)
    with write(runtime.engine) as conn:
        create_user(conn, "boss", None, roles=("boss",))
        create_department(conn, "east", "East")
        create_department(conn, "west", "West")
        ann = create_user(conn, "ann", None, roles=("seller",), department="east")
        bob = create_user(conn, "bob", None, roles=("seller",), department="west")
    north = runtime.service.create("t", "region", {"name": "N", "zone": "north"})["id"]
    south = runtime.service.create("t", "region", {"name": "S", "zone": "south"})["id"]
    rows = []
    for n in range(40):
        rows.append(
            {
                "item": ITEMS[n % 4] if n % 7 else "apple",
                "price": str(10 + n),
                "units": n % 9,
                "region": north if n % 3 else south,
                "seller": ann if n % 2 else bob,
                "sold_on": (dt.date(2026, 1, 5) + dt.timedelta(days=9 * n)).isoformat(),
            }
        )
    runtime.service.create_many("t", "sale", rows)
    yield runtime
    runtime.engine.dispose()


def data(runtime: Runtime, key: str, who: str = "boss", query: str = "") -> dict[str, Any]:
    client = TestClient(
        runtime.api, headers={"Authorization": f"Bearer {user_token(runtime.engine, who, ())}"}
    )
    answer = client.get(f"/api/v1/t/dashboards/shop/widgets/{key}/data{query}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def sales(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM t__sale")).mappings()]


def test_top_groups_then_one_other_group_aggregated_from_its_rows(shop: Runtime) -> None:
    rows = sales(shop)
    units: dict[str, int] = defaultdict(int)
    for row in rows:
        units[row["item"]] += row["units"]
    top = sorted(units, key=lambda k: (-units[k], k))[:2]
    rest = [r for r in rows if r["item"] not in top]
    result = data(shop, "top_items")["rows"]
    assert [r["dimensions"][0]["value"] for r in result[:2]] == top
    other = result[2]
    assert (
        other["dimensions"][0] == {"value": None, "display": "其他", "other": True} and other["drill"] is None
    )
    assert other["values"][0] == sum(r["units"] for r in rest)
    assert other["values"][1] == pytest.approx(sum(float(r["price"]) for r in rest) / len(rest))
    assert other["values"][2] == len({r["seller"] for r in rest})
    assert len(result) == 3


def test_a_pivot_groups_by_a_linked_field_and_a_quarter(shop: Runtime) -> None:
    with shop.engine.connect() as conn:
        zones = dict(conn.execute(text("SELECT id, zone FROM t__region")).all())
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in sales(shop):
        day = dt.date.fromisoformat(str(row["sold_on"])[:10])
        key = (zones[row["region"]], f"{day.year}-Q{(day.month - 1) // 3 + 1}")
        expected[key][0] += 1
        expected[key][1] += row["units"] >= 5
    found = {
        (r["dimensions"][0]["value"], r["dimensions"][1]["value"]): r["values"]
        for r in data(shop, "by_zone_and_quarter")["rows"]
    }
    assert found == dict(expected)


def test_weeks_start_on_monday_and_their_drill_down_lists_the_same_records(shop: Runtime) -> None:
    result = data(shop, "by_week")["rows"]
    assert all(dt.date.fromisoformat(r["dimensions"][0]["value"]).weekday() == 0 for r in result)
    client = TestClient(shop.api, headers={"Authorization": f"Bearer {user_token(shop.engine, 'boss', ())}"})
    for row in result[:5]:
        assert client.get(row["drill"] + "&count=true").json()["total"] == row["values"][0]


def test_link_and_expression_dimensions_show_names_and_drill_down(shop: Runtime) -> None:
    regions = data(shop, "by_region")["rows"]
    assert {r["dimensions"][0]["display"] for r in regions} == {"N", "S"}
    client = TestClient(shop.api, headers={"Authorization": f"Bearer {user_token(shop.engine, 'boss', ())}"})
    for row in regions + data(shop, "size")["rows"]:
        assert client.get(row["drill"] + "&count=true").json()["total"] == row["values"][0]


def test_department_parameter_and_department_dimension(shop: Runtime) -> None:
    teams = {r["dimensions"][0]["display"]: r["values"][0] for r in data(shop, "teams")["rows"]}
    assert teams == {"East": 20, "West": 20}
    with shop.engine.connect() as conn:
        east = conn.execute(text("SELECT id FROM formloom_departments WHERE key = 'east'")).scalar()
    only_east = data(shop, "teams", query=f"?department={east}")["rows"]
    assert [(r["dimensions"][0]["display"], r["values"][0], r["drill"]) for r in only_east] == [
        ("East", 20, None)
    ]


def test_a_seller_sees_their_own_sales_only_and_the_date_range_narrows_them(shop: Runtime) -> None:
    mine = data(shop, "size", who="ann")["rows"]
    assert sum(r["values"][0] for r in mine) == 20
    spring = data(shop, "by_zone_and_quarter", query="?from=2026-03-01&to=2026-05-31")["rows"]
    expected = sum(1 for r in sales(shop) if "2026-03-01" <= str(r["sold_on"])[:10] <= "2026-05-31")
    assert 0 < sum(r["values"][0] for r in spring) == expected  # on the widget's date_field, sold_on
    assert data(shop, "size", query="?from=2026-03-01&to=2026-05-31")["rows"] == []  # created_at: all today


def test_widget_data_exports_as_csv_and_xlsx_with_the_export_permission(shop: Runtime) -> None:
    import csv
    import io

    import openpyxl

    seller = TestClient(shop.api, headers={"Authorization": f"Bearer {user_token(shop.engine, 'ann', ())}"})
    answer = seller.get("/api/v1/t/dashboards/shop/widgets/size/data.csv")
    assert answer.status_code == 200
    table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert table[0] == ["size", "sales"] and sum(int(r[1]) for r in table[1:]) == 20
    sheet = seller.get("/api/v1/t/dashboards/shop/widgets/size/data.xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(sheet.content))
    assert [c.value for c in next(workbook.active.iter_rows())] == ["size", "sales"]
    boss = TestClient(shop.api, headers={"Authorization": f"Bearer {user_token(shop.engine, 'boss', ())}"})
    assert boss.get("/api/v1/t/dashboards/shop/widgets/size/data.csv").status_code == 403


def test_a_widget_reading_a_field_hidden_from_the_viewer_is_refused(shop: Runtime) -> None:
    seller = TestClient(shop.api, headers={"Authorization": f"Bearer {user_token(shop.engine, 'ann', ())}"})
    refused = seller.get("/api/v1/t/dashboards/shop/widgets/costs/data")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["message"] == "the widget 'costs' reads fields hidden from you: cost"
    assert data(shop, "costs")["rows"]  # the boss sees them


def test_an_other_group_of_adding_measures_is_summed_from_the_groups(shop: Runtime) -> None:
    rows = sales(shop)
    units: dict[str, int] = defaultdict(int)
    for row in rows:
        units[row["item"]] += row["units"]
    top = sorted(units, key=lambda k: (-units[k], k))[:2]
    rest = [r for r in rows if r["item"] not in top]
    big = sum(1 for r in rest if r["units"] >= 5)
    other = data(shop, "top_units")["rows"][2]
    assert other["values"] == [sum(r["units"] for r in rest), len(rest), big, round(big / len(rest), 4)]


def test_a_top_user_is_named_and_the_others_summed(shop: Runtime) -> None:
    with shop.engine.connect() as conn:
        per_user = dict(
            conn.execute(
                text(
                    "SELECT u.username, SUM(s.units) FROM t__sale s JOIN formloom_users u ON u.id = s.seller "
                    "GROUP BY u.username"
                )
            ).all()
        )
    best = max(per_user, key=lambda k: per_user[k])
    first, other = data(shop, "top_seller")["rows"]
    assert (first["dimensions"][0]["display"], first["values"]) == (best, [per_user[best]])
    assert other["dimensions"][0]["other"] and other["values"] == [sum(per_user.values()) - per_user[best]]
