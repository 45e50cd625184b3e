"""Files: unguessable ids, read only through a record (or by the uploader before), safe to open."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from runtime.api.file_routes import content_disposition
from runtime.boot import Runtime, start
from runtime.db import make_engine
from runtime.schema.migrate import alembic_config
from tests.support import admin_token, user_token, web_client, write_files, write_pack

APP = """\
app: t
label: Test
version: '1'
roles:
  - {key: rep}
  - {key: manager}
  - {key: clerk}
"""
CONTRACT = """\
form: contract
label: Contract
title_field: title
owner_field: owner
fields:
  - {key: title, type: text}
  - {key: owner, type: user}
  - {key: signed, type: attachment, hidden_for: [clerk]}
  - {key: scan, type: attachment}
  - {key: pages, type: table, form: page, hidden_for: [clerk]}
  - {key: status, type: select, options: [draft, done]}
permissions:
  - {roles: [rep], can: [create, read, update], scope: own}
  - {roles: [manager, clerk], can: [read], scope: all}
"""
PAGE = """\
form: page
label: Page
child: true
fields:
  - {key: note, type: text}
  - {key: file, type: attachment}
"""
WORKFLOW = """\
workflow: contract_flow
form: contract
field: status
states:
  - {key: draft, initial: true}
  - {key: done, final: true}
transitions:
  - {action: sign, from: draft, to: done, fields: [signed], require: [signed]}
"""
PDF = b"%PDF-1.4 signed"


class Office:
    """Two reps (ann, bob), a manager who reads every contract, a clerk who may not see
    `signed` nor `pages`, and an admin."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(root / "pack", {"contract": CONTRACT, "page": PAGE})
        (pack / "app.yaml").write_text(APP, encoding="utf-8")
        write_files(pack, {"workflows/contract_flow.yaml": WORKFLOW})
        self.runtime: Runtime = start([pack], db_url, root / "files")
        engine = self.runtime.engine
        self.tokens = {name: user_token(engine, name, (name_role,)) for name, name_role in ROLES.items()}
        self.tokens["root"] = admin_token(engine, "root")

    def client(self, name: str) -> TestClient:
        return TestClient(self.runtime.api, headers={"Authorization": f"Bearer {self.tokens[name]}"})

    def upload(
        self, name: str, filename: str = "c.pdf", body: bytes = PDF, kind: str = "application/pdf"
    ) -> str:
        answer = self.client(name).post("/api/v1/files", files={"file": (filename, body, kind)})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def contract(self, name: str, **values: object) -> dict[str, object]:
        answer = self.client(name).post("/api/v1/t/contract", json={"title": name, **values})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def reads(self, name: str, file_id: str) -> bool:
        """Whether `name` may describe and download the file (both answer alike)."""
        client = self.client(name)
        described = client.get(f"/api/v1/files/{file_id}")
        content = client.get(f"/api/v1/files/{file_id}/content")
        assert described.status_code == content.status_code, (described.text, content.text)
        assert described.status_code in (200, 404), described.text
        if described.status_code == 404:
            assert described.json()["errors"][0]["code"] == "not_found"
            assert content.json()["errors"][0]["message"] == f"no file with id {file_id}"
            return False
        assert described.json()["id"] == file_id
        return True


ROLES = {"ann": "rep", "bob": "rep", "meg": "manager", "cleo": "clerk"}


@pytest.fixture
def office(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    built = Office(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


def refused(answer: object, path: str, file_id: object) -> None:
    assert getattr(answer, "status_code", None) == 422, getattr(answer, "text", answer)
    errors = answer.json()["errors"]  # type: ignore[attr-defined]
    assert {"field": path, "code": "not_found", "message": f"no file with id {file_id}"} in errors


def test_a_rep_cannot_read_another_reps_contract_file(office: Office) -> None:
    signed = office.upload("ann")
    office.contract("ann", signed=signed)
    assert office.reads("ann", signed)
    assert not office.reads("bob", signed)
    assert office.reads("meg", signed)  # reads every contract
    assert office.reads("root", signed)


def test_an_unattached_upload_is_readable_by_its_uploader_only(office: Office) -> None:
    upload = office.upload("ann")
    assert office.reads("ann", upload)
    assert not office.reads("bob", upload)
    assert not office.reads("meg", upload)
    assert office.reads("root", upload)


def test_a_reader_of_the_record_reads_its_files_unless_the_field_is_hidden(office: Office) -> None:
    signed, scan, page = office.upload("ann"), office.upload("ann"), office.upload("ann")
    record = office.contract("ann", signed=signed, scan=scan, pages=[{"note": "p1", "file": page}])
    assert office.reads("cleo", scan)
    assert not office.reads("cleo", signed)  # signed is hidden from clerks
    assert not office.reads("cleo", page)  # so are the pages
    assert office.reads("meg", page)  # a child row's file follows its parent record
    assert not office.reads("bob", page)
    seen = office.client("cleo").get(f"/api/v1/t/contract/{record['id']}").json()
    assert "signed" not in seen and seen["scan"]["id"] == scan


def test_attaching_a_file_one_cannot_read_is_refused_like_a_missing_file(office: Office) -> None:
    loose = office.upload("ann")  # ann's, not attached
    held = office.upload("ann")
    office.contract("ann", signed=held)  # ann's contract, which bob cannot read
    bob = office.client("bob")
    refused(bob.post("/api/v1/t/contract", json={"title": "x", "signed": loose}), "signed", loose)
    refused(bob.post("/api/v1/t/contract", json={"title": "x", "scan": held}), "scan", held)
    refused(
        bob.post("/api/v1/t/contract", json={"title": "x", "pages": [{"file": held}]}), "pages[0].file", held
    )
    refused(
        bob.post("/api/v1/t/contract/bulk", json=[{"title": "a"}, {"title": "b", "scan": {"id": held}}]),
        "[1].scan",
        held,
    )
    unknown = "A" * 22
    refused(bob.post("/api/v1/t/contract", json={"title": "x", "scan": unknown}), "scan", unknown)
    own = office.contract("bob")
    patched = bob.patch(f"/api/v1/t/contract/{own['id']}", json={"scan": held})
    refused(patched, "scan", held)
    assert not office.reads("bob", held) and not office.reads("bob", loose)
    # the sequential id is no way in either
    refused(bob.post("/api/v1/t/contract", json={"title": "x", "scan": 1}), "scan", 1)
    root = office.client("root")
    refused(root.post("/api/v1/t/contract", json={"title": "x", "scan": 1}), "scan", 1)


def test_a_workflow_action_attaches_only_files_its_caller_may_read(office: Office) -> None:
    held = office.upload("ann")
    office.contract("ann", signed=held)
    own = office.contract("bob")
    bob = office.client("bob")
    sign = f"/api/v1/t/contract/{own['id']}/transitions/sign"
    for given in (held, 1):  # the engine writes the values, but on bob's rights
        refused(bob.post(sign, json={"values": {"signed": given}}), "values.signed", given)
    mine = office.upload("bob")
    taken = bob.post(sign, json={"values": {"signed": mine}})
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "done" and taken.json()["signed"]["id"] == mine


def test_one_may_attach_own_uploads_and_files_of_records_one_reads(office: Office) -> None:
    signed, page = office.upload("ann"), office.upload("ann")
    first = office.contract("ann", signed=signed, pages=[{"note": "p", "file": page}])
    second = office.contract("ann", scan=signed)  # on a record ann reads
    assert second["scan"]["id"] == signed  # type: ignore[index]
    # resending a record's rows keeps their files
    rows = first["pages"]
    answer = office.client("ann").patch(
        f"/api/v1/t/contract/{first['id']}", json={"title": "again", "pages": rows}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["pages"][0]["file"]["id"] == page
    # an admin attaches any file, by its public id
    assert office.contract("root", scan=page)["scan"]["id"] == page  # type: ignore[index]


def test_file_ids_are_random_strings_not_sequential_numbers(office: Office) -> None:
    first, second = office.upload("ann"), office.upload("ann")
    for file_id in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", file_id) and not file_id.isdigit()
    assert first != second
    described = office.client("ann").get(f"/api/v1/files/{first}").json()
    assert described["url"] == f"/api/v1/files/{first}/content"
    root = office.client("root")
    for probe in ("1", "2", "0", "-1", "x" * 65):
        assert root.get(f"/api/v1/files/{probe}").status_code in (404, 422)
        assert root.get(f"/api/v1/files/{probe}/content").status_code in (404, 422)
    record = office.contract("ann", scan=first)
    assert record["scan"] == {**described, "id": first}


@pytest.mark.parametrize(
    ("name", "kind", "disposition"),
    [
        ("scan.png", "image/png", "inline"),
        ("offer.pdf", "application/pdf", "inline"),
        ("logo.svg", "image/svg+xml", "attachment"),
        ("page.html", "text/html", "attachment"),
        ("run.js", "application/javascript", "attachment"),
        ("odd.bin", "nonsense", "attachment"),
    ],
)
def test_file_content_cannot_run_in_the_browser(
    office: Office, name: str, kind: str, disposition: str
) -> None:
    file_id = office.upload("ann", name, b"<script>alert(1)</script>", kind)
    answer = office.client("ann").get(f"/api/v1/files/{file_id}/content")
    assert answer.status_code == 200
    assert answer.content == b"<script>alert(1)</script>"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"] == "sandbox"
    assert answer.headers["content-disposition"] == f'{disposition}; filename="{name}"'
    served = answer.headers["content-type"].split(";")[0]
    assert served == (kind if "/" in kind else "application/octet-stream")


def test_file_names_in_any_language_download_with_rfc_5987(office: Office) -> None:
    name = "销售合同 终版.pdf"
    file_id = office.upload("ann", name)
    answer = office.client("ann").get(f"/api/v1/files/{file_id}/content")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == (
        f"inline; filename=\"____ __.pdf\"; filename*=UTF-8''{quote(name, safe='')}"
    )
    # quotes, backslashes and line breaks never reach the plain `filename`
    assert content_disposition("attachment", 'a"b\\c\r\n.txt') == (
        "attachment; filename=\"a_b_c__.txt\"; filename*=UTF-8''a%22b%5Cc%0D%0A.txt"
    )


def test_the_web_record_page_links_to_its_file(office: Office) -> None:
    rep = web_client(office.runtime, "wendy", ("rep",))
    answer = rep.post(
        "/app/t/contract/new",
        data={"csrf_token": rep.csrf, "title": "From the web"},
        files={"scan": ("scan.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = rep.get(answer.headers["location"])
    link = re.search(r'href="(/api/v1/files/([A-Za-z0-9_-]{22})/content)"', page.text)
    assert link is not None, page.text
    assert rep.get(link.group(1)).content == PDF
    assert not office.reads("bob", link.group(2))


def test_the_migration_gives_existing_files_public_ids(db_url: str) -> None:
    engine = make_engine(db_url)
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        stored = sa.table(
            "formloom_files",
            *(sa.column(c) for c in ("name", "size", "content_type", "checksum", "created_at")),
        )
        when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for i in range(3):
            row = {"name": f"f{i}", "size": 1, "content_type": "text/plain", "checksum": "0" * 64}
            conn.execute(sa.insert(stored).values(**row, created_at=when))
        command.upgrade(config, "head")
        found = list(conn.execute(sa.text("SELECT public_id FROM formloom_files")).scalars())
    engine.dispose()
    assert len(found) == 3 and len(set(found)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", f) for f in found)
