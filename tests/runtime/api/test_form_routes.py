"""The REST API of a form: every field type round-trips; errors are 4xx with field paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import serve, write_pack

COMPANY = """\
form: company
label: {zh: 公司, en: Company}
title_field: name
fields:
  - {key: name, type: text, required: true, unique: true, max_length: 50}
"""

PRODUCT = """\
form: item
label: Item
child: true
fields:
  - {key: product, type: text, required: true}
  - {key: quantity, type: decimal, precision: 10, scale: 2, min: 0}
  - {key: company, type: link, to: company, on_delete: set_null}
"""

DEAL = """\
form: deal
label: {zh: 交易, en: Deal}
title_field: title
fields:
  - {key: title, type: text, required: true, pattern: "[A-Z].*"}
  - {key: notes, type: long_text}
  - {key: contact_email, type: email}
  - {key: phone, type: phone, region: CN}
  - {key: site, type: url}
  - {key: seats, type: integer, min: 1, max: 1000, default: 5}
  - {key: ratio, type: decimal, precision: 8, scale: 3}
  - {key: amount, type: money}
  - {key: discount, type: percent, max: 1}
  - {key: won, type: boolean, default: false}
  - {key: close_on, type: date}
  - {key: met_at, type: datetime}
  - {key: stage, type: select, options: [new, won, lost], default: new}
  - {key: tags, type: multi_select, options: [hot, cold, vip]}
  - {key: company, type: link, to: company}
  - {key: items, type: table, form: item}
  - {key: owner, type: user}
  - {key: number, type: auto_number, pattern: "D-{YYYY}-{####}"}
  - {key: contract, type: attachment}
"""

FULL_DEAL = {
    "title": "Big deal",
    "notes": "line one\nline two",
    "contact_email": " Li.Lei@Example.COM ",
    "phone": "138 0013 8000",
    "site": "https://example.com/a?b=c",
    "seats": 12,
    "ratio": "3.125",
    "amount": 1234.5,
    "discount": "0.35",
    "won": True,
    "close_on": "2026-12-31",
    "met_at": "2026-11-28T17:30:00+08:00",
    "stage": "won",
    "tags": ["vip", "hot"],
}


@pytest.fixture
def client(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    pack = write_pack(tmp_path / "pack", {"company": COMPANY, "item": PRODUCT, "deal": DEAL})
    runtime, test_client = serve(pack, db_url, tmp_path / "files")
    yield test_client
    runtime.engine.dispose()


def test_every_field_type_round_trips(client) -> None:  # type: ignore[no-untyped-def]
    company = client.post("/api/v1/t/company", json={"name": "Acme"}).json()
    upload = client.post("/api/v1/files", files={"file": ("c.pdf", b"%PDF-1.4 x", "application/pdf")})
    assert upload.status_code == 201
    body = {
        **FULL_DEAL,
        "company": company["id"],
        "contract": upload.json()["id"],
        "items": [{"product": "A", "quantity": 2, "company": company["id"]}, {"product": "B"}],
    }
    created = client.post("/api/v1/t/deal", json=body)
    assert created.status_code == 201, created.text
    record = client.get(f"/api/v1/t/deal/{created.json()['id']}").json()
    assert record == created.json()
    year = record["created_at"][:4]
    assert record["number"] == f"D-{year}-0001"
    assert record["contact_email"] == "li.lei@example.com"
    assert record["phone"] == "+8613800138000"
    assert record["site"] == "https://example.com/a?b=c"
    assert (record["seats"], record["ratio"], record["amount"]) == (12, "3.125", "1234.50")
    assert record["discount"] == "0.350000"
    assert record["won"] is True
    assert record["close_on"] == "2026-12-31"
    assert record["met_at"] == "2026-11-28T09:30:00Z"
    assert record["stage"] == "won"
    assert record["tags"] == ["hot", "vip"]
    assert record["company"] == {"id": company["id"], "display": "Acme"}
    assert record["contract"]["name"] == "c.pdf"
    assert record["contract"]["size"] == len(b"%PDF-1.4 x")
    assert record["contract"]["type"] == "application/pdf"
    assert len(record["contract"]["checksum"]) == 64
    assert [(r["position"], r["product"], r["quantity"]) for r in record["items"]] == [
        (0, "A", "2.00"),
        (1, "B", None),
    ]
    assert record["items"][0]["company"] == {"id": company["id"], "display": "Acme"}
    assert record["owner"] is None and record["version"] == 1


def test_defaults_fill_missing_values(client) -> None:  # type: ignore[no-untyped-def]
    record = client.post("/api/v1/t/deal", json={"title": "Small"}).json()
    assert (record["seats"], record["won"], record["stage"]) == (5, False, "new")


def test_validation_errors_name_every_field(client) -> None:  # type: ignore[no-untyped-def]
    bad = {
        "title": "lowercase",
        "contact_email": "nope",
        "phone": "12",
        "site": "ftp://x",
        "seats": 0,
        "ratio": "1.0001",
        "won": "yes",
        "close_on": "2026-02-30",
        "stage": "maybe",
        "tags": ["warm"],
        "company": 999,
        "nosuch": 1,
        "number": "X",
    }
    response = client.post("/api/v1/t/deal", json=bad)
    assert response.status_code == 422
    codes = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert codes == {
        "title": "pattern",
        "contact_email": "invalid",
        "phone": "invalid",
        "site": "invalid",
        "seats": "min",
        "ratio": "scale",
        "won": "type",
        "close_on": "invalid",
        "stage": "option",
        "tags": "option",
        "nosuch": "unknown_field",
        "number": "read_only",
        "company": "not_found",
    }
    missing_link = client.post("/api/v1/t/deal", json={"title": "Ok", "company": 999})
    assert missing_link.status_code == 422
    assert missing_link.json()["errors"] == [
        {"field": "company", "code": "not_found", "message": "no record with id 999"}
    ]


def test_child_row_errors_carry_their_path(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/t/deal", json={"title": "X", "items": [{"product": "A"}, {"quantity": -1}]}
    )
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["items[1].product", "items[1].quantity"]


def test_unique_and_required(client) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/api/v1/t/company", json={"name": "Acme"}).status_code == 201
    again = client.post("/api/v1/t/company", json={"name": "Acme"})
    assert again.status_code == 422
    assert again.json()["errors"][0]["code"] == "unique"
    empty = client.post("/api/v1/t/company", json={"name": "   "})
    assert empty.json()["errors"] == [{"field": "name", "code": "required", "message": "is required"}]


def test_patch_changes_fields_and_checks_version(client) -> None:  # type: ignore[no-untyped-def]
    record = client.post("/api/v1/t/deal", json={"title": "A", "items": [{"product": "x"}]}).json()
    url = f"/api/v1/t/deal/{record['id']}"
    row_id = record["items"][0]["id"]
    changed = client.patch(
        url,
        json={"seats": 7, "items": [{"product": "new"}, {"id": row_id, "product": "x2"}]},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"2"'
    body = changed.json()
    assert body["seats"] == 7 and body["version"] == 2 and body["title"] == "A"
    assert [(r["product"], r["position"]) for r in body["items"]] == [("new", 0), ("x2", 1)]
    assert body["items"][1]["id"] == row_id
    stale = client.patch(url, json={"seats": 8}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.json()["errors"][0]["code"] == "version_conflict"
    assert client.get(url).json()["seats"] == 7
    cleared = client.patch(url, json={"title": None})
    assert cleared.status_code == 422


def test_delete_is_refused_while_restrict_links_point_at_the_record(client) -> None:  # type: ignore[no-untyped-def]
    company = client.post("/api/v1/t/company", json={"name": "Acme"}).json()
    deal = client.post(
        "/api/v1/t/deal",
        json={"title": "A", "company": company["id"], "items": [{"product": "p", "company": company["id"]}]},
    )
    refused = client.delete(f"/api/v1/t/company/{company['id']}")
    assert refused.status_code == 409
    assert "refer to it" in refused.json()["errors"][0]["message"]
    assert client.delete(f"/api/v1/t/deal/{deal.json()['id']}").status_code == 204
    assert client.get(f"/api/v1/t/deal/{deal.json()['id']}").status_code == 404
    assert client.delete(f"/api/v1/t/company/{company['id']}").status_code == 204


def test_bulk_create_is_all_or_nothing(client) -> None:  # type: ignore[no-untyped-def]
    bad = client.post("/api/v1/t/company/bulk", json=[{"name": "A"}, {"name": "A"}, {"nam": "C"}])
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"[1].name", "[2].nam", "[2].name"}
    assert client.get("/api/v1/t/company").json()["items"] == []
    good = client.post("/api/v1/t/company/bulk", json=[{"name": "A"}, {"name": "B"}])
    assert good.status_code == 201
    assert [r["name"] for r in good.json()] == ["A", "B"]


def test_auto_numbers_follow_each_other(client) -> None:  # type: ignore[no-untyped-def]
    numbers = [client.post("/api/v1/t/deal", json={"title": f"T{i}"}).json()["number"] for i in range(3)]
    assert [n[-4:] for n in numbers] == ["0001", "0002", "0003"]
    refused = client.post("/api/v1/t/deal", json={"title": "bad"})
    assert refused.status_code == 422
    after = client.post("/api/v1/t/deal", json={"title": "T4"}).json()["number"]
    assert after.endswith("0004")


def test_bad_requests_answer_4xx_in_the_error_shape(client) -> None:  # type: ignore[no-untyped-def]
    not_json = client.post("/api/v1/t/deal", content=b"{oops", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and "errors" in not_json.json()
    assert client.post("/api/v1/t/deal", json=[1, 2]).status_code == 422
    assert client.get("/api/v1/t/deal/abc").status_code == 422
    assert client.get("/api/v1/t/deal/99999999999999999999").status_code == 422
    assert client.get("/api/v1/t/deal/5").status_code == 404
    assert client.get("/api/v1/t/nosuch").json()["errors"][0]["code"] == "not_found"
    assert client.patch("/api/v1/t/deal/1", json={}, headers={"If-Match": "x"}).status_code == 422


def test_attachments_respect_max_size_and_accept(db_url: str, tmp_path: Path) -> None:
    form = """\
    form: doc
    label: Doc
    fields:
      - {key: scan, type: attachment, max_size: 10, accept: ["image/*", application/pdf]}
    """
    runtime, client = serve(write_pack(tmp_path / "p", {"doc": form}), db_url, tmp_path / "f")
    small_png = client.post("/api/v1/files", files={"file": ("a.png", b"png", "image/png")}).json()
    big_pdf = client.post("/api/v1/files", files={"file": ("b.pdf", b"x" * 11, "application/pdf")}).json()
    text = client.post("/api/v1/files", files={"file": ("c.txt", b"hi", "text/plain")}).json()
    assert client.post("/api/v1/t/doc", json={"scan": small_png["id"]}).status_code == 201
    too_big = client.post("/api/v1/t/doc", json={"scan": big_pdf["id"]})
    assert [e["code"] for e in too_big.json()["errors"]] == ["max_size"]
    wrong_type = client.post("/api/v1/t/doc", json={"scan": text["id"]})
    assert [e["code"] for e in wrong_type.json()["errors"]] == ["file_type"]
    download = client.get(small_png["url"])
    assert download.status_code == 200 and download.content == b"png"
    runtime.engine.dispose()


def test_sqlite_refuses_decimals_it_cannot_keep_exactly(tmp_path: Path) -> None:
    form = """\
    form: sum
    label: Sum
    fields:
      - {key: total, type: decimal, precision: 38, scale: 10}
    """
    runtime, client = serve(
        write_pack(tmp_path / "p", {"sum": form}), f"sqlite:///{tmp_path}/d.db", tmp_path / "f"
    )
    kept = client.post("/api/v1/t/sum", json={"total": "12345678901.2345"})
    assert kept.json()["total"] == "12345678901.2345000000"
    refused = client.post("/api/v1/t/sum", json={"total": "123456789012345678901234.0123"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "precision"
    runtime.engine.dispose()


def test_wide_decimals_keep_every_digit_on_postgresql(pg_schema_url: str, tmp_path: Path) -> None:
    form = """\
    form: sum
    label: Sum
    fields:
      - {key: total, type: decimal, precision: 38, scale: 10}
    """
    runtime, client = serve(write_pack(tmp_path / "p", {"sum": form}), pg_schema_url, tmp_path / "f")
    kept = client.post("/api/v1/t/sum", json={"total": "1234567890123456789012345678.0123456789"})
    assert kept.status_code == 201, kept.text
    assert kept.json()["total"] == "1234567890123456789012345678.0123456789"
    runtime.engine.dispose()


def test_kept_child_rows_change_only_what_is_sent(client) -> None:  # type: ignore[no-untyped-def]
    record = client.post("/api/v1/t/deal", json={"title": "A", "items": [{"product": "x", "quantity": 7}]})
    row = record.json()["items"][0]
    changed = client.patch(
        f"/api/v1/t/deal/{record.json()['id']}", json={"items": [{"id": row["id"], "product": "y"}]}
    ).json()
    assert (changed["items"][0]["product"], changed["items"][0]["quantity"]) == ("y", "7.00")
