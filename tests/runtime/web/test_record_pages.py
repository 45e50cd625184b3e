"""Entering and editing records on the generated form: saving, inline errors, duplicates, live preview."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runtime.boot import Runtime
from runtime.identity.actor import SYSTEM
from tests.runtime.web.pack import deal_pack
from tests.support import WebClient, serve, web_client


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    runtime, _ = serve(deal_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    return runtime


def stored(runtime: Runtime, title: str) -> dict:
    page = runtime.service.list_page("crm", "deal", [("title", title)], SYSTEM)
    assert len(page["items"]) == 1
    return page["items"][0]


def errors_on(html: str) -> dict[str, str]:
    """Inline error messages by the input they belong to."""
    return dict(re.findall(r'<p class="error" id="err-([^"]+)" role="alert">([^<]*)</p>', html))


def live(client: WebClient, form: dict) -> dict:
    answer = client.post_form("/app/crm/deal/_live", form, headers={"X-CSRF-Token": client.csrf})
    assert answer.status_code == 204
    return json.loads(answer.headers["HX-Trigger"])["formloom:live"]


def test_a_saved_form_stores_every_field_type_as_typed(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    answer = rep.post_form(
        "/app/crm/deal/new",
        [
            ("title", "Expo deal"),
            ("email", "zoe@example.com"),
            ("kind", "new"),
            ("tags", "hot"),
            ("tags", "cold"),
            ("amount", "12,500.50"),
            ("discount", "35"),
            ("urgent", "false"),
            ("urgent", "true"),
            ("due", "2026-12-31"),
            ("met_at", "2026-11-28T09:30"),
            ("_present", "lines"),
            ("lines[0].item", "Chairs"),
            ("lines[0].qty", "3"),
            ("lines[0].price", "100"),
            ("lines[1].item", "Desks"),
            ("lines[1].qty", "2"),
            ("lines[1].price", "250"),
        ],
    )
    assert answer.status_code == 303
    deal = stored(crm, "Expo deal")
    assert answer.headers["location"] == f"/app/crm/deal/{deal['id']}?saved=1"
    assert deal["tags"] == ["hot", "cold"]
    assert deal["amount"] == "12500.50"
    assert deal["discount"] == "0.350000", "35 typed in a percent field is 35 %"
    assert deal["net"] == "8125.33"
    assert deal["urgent"] is True
    assert deal["met_at"] == "2026-11-28T01:30:00Z", "typed in the app's zone (Asia/Shanghai)"
    assert [line["item"] for line in deal["lines"]] == ["Chairs", "Desks"]
    assert deal["lines_total"] == "800.00"
    assert deal["owner"]["display"] == "rita", "the default current_user"


def test_a_refused_save_shows_each_error_beside_its_input_and_keeps_the_input(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    answer = rep.post_form(
        "/app/crm/deal/new",
        {
            "title": "",
            "email": "zoe@@example",
            "kind": "renewal",
            "amount": "lots",
            "_present": "lines",
            "lines[0].item": "Chairs",
            "lines[0].qty": "0",
        },
    )
    assert answer.status_code == 422
    found = errors_on(answer.text)
    assert set(found) == {"title", "email", "amount", "reason", "lines[0].qty"}
    assert "e-mail" in found["email"]
    assert 'id="in-email" name="email" value="zoe@@example"' in answer.text
    assert 'aria-invalid="true" aria-describedby="err-email"' in answer.text
    assert crm.service.list_page("crm", "deal", [], SYSTEM)["items"] == []


def test_errors_are_in_chinese_for_a_chinese_user(crm: Runtime) -> None:
    rep = web_client(crm, "li", ("rep",), language="zh")
    answer = rep.post_form("/app/crm/deal/new", {"title": "", "email": "nope"})
    assert errors_on(answer.text) == {"title": "必填", "email": "邮箱地址格式不正确"}
    assert "新建交易" in answer.text
    assert 'role="tab"' in answer.text and ">明细</button>" in answer.text, "sections with a tab sit under it"


def test_a_possible_duplicate_is_shown_with_a_link_and_can_be_saved_anyway(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    rep.post_form("/app/crm/deal/new", {"title": "First", "email": "dup@example.com"})
    first = stored(crm, "First")
    answer = rep.post_form("/app/crm/deal/new", {"title": "Second", "email": "dup@example.com"})
    assert answer.status_code == 409
    assert f'href="/app/crm/deal/{first["id"]}"' in answer.text
    assert 'name="allow_duplicate"' in answer.text
    again = rep.post_form(
        "/app/crm/deal/new", {"title": "Second", "email": "dup@example.com", "allow_duplicate": "true"}
    )
    assert again.status_code == 303
    assert stored(crm, "Second")["email"] == "dup@example.com"


def test_editing_keeps_child_rows_by_id_in_the_order_left(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    rep.post_form(
        "/app/crm/deal/new",
        {
            "title": "Edit me",
            "_present": "lines",
            "lines[0].item": "A",
            "lines[0].qty": "1",
            "lines[1].item": "B",
            "lines[1].qty": "2",
        },
    )
    deal = stored(crm, "Edit me")
    a, b = deal["lines"]
    page = rep.get(f"/app/crm/deal/{deal['id']}/edit")
    assert f'name="lines[0].id" value="{a["id"]}"' in page.text
    answer = rep.post_form(
        f"/app/crm/deal/{deal['id']}/edit",
        {
            "version": str(deal["version"]),
            "title": "Edited",
            "_present": "lines",
            "lines[0].id": str(b["id"]),
            "lines[0].item": "B",
            "lines[0].qty": "5",
            "lines[1].item": "C",
            "lines[1].qty": "1",
        },
    )
    assert answer.status_code == 303
    after = stored(crm, "Edited")
    first = after["lines"][0]
    assert (first["id"], first["item"], first["qty"]) == (b["id"], "B", 5)
    assert [line["item"] for line in after["lines"]] == ["B", "C"], "A was removed, C added"


def test_a_stale_edit_is_refused_with_an_explanation_and_nothing_changes(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    rep.post_form("/app/crm/deal/new", {"title": "Race"})
    deal = stored(crm, "Race")
    crm.service.update("crm", "deal", deal["id"], {"amount": 5}, None, SYSTEM)
    answer = rep.post_form(
        f"/app/crm/deal/{deal['id']}/edit", {"version": str(deal["version"]), "title": "Mine"}
    )
    assert answer.status_code == 409
    assert "Someone else changed this record" in answer.text
    assert stored(crm, "Race")["amount"] == "5.00"


def test_the_live_preview_computes_formulas_visibility_and_required_like_a_save(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    form = {
        "title": "Live",
        "kind": "renewal",
        "amount": "1000",
        "discount": "10",
        "_present": "lines",
        "lines[0].item": "A",
        "lines[0].qty": "3",
        "lines[0].price": "2.5",
    }
    found = live(rep, form)
    assert found["record"]["values"]["net"] == "$900.00" or found["record"]["values"]["net"].endswith(
        "900.00"
    )
    assert found["record"]["values"]["lines_total"].endswith("7.50")
    assert found["record"]["visible"] == {"reason": True}
    assert "reason" in found["record"]["required"]
    assert found["rows"][0]["values"]["lines[0].line_total"].endswith("7.50")
    rep.post_form("/app/crm/deal/new", {**form, "reason": "renewal"})
    saved = stored(crm, "Live")
    assert saved["net"] == "900.00" and saved["lines_total"] == "7.50"
    hidden = live(rep, {"title": "Live", "kind": "new"})
    assert hidden["record"]["visible"] == {"reason": False}
    assert "reason" in hidden["record"]["optional"]


def test_the_live_preview_hides_what_the_user_may_not_see(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    page = rep.get("/app/crm/deal/new")
    assert 'data-field="secret"' not in page.text
    boss = web_client(crm, "bea", ("boss",))
    assert 'data-field="secret"' in boss.get("/app/crm/deal/new").text


def test_an_attachment_is_uploaded_with_the_form_and_kept_on_later_edits(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    answer = rep.post(
        "/app/crm/deal/new",
        data={"csrf_token": rep.csrf, "title": "With file"},
        files={"contract": ("contract.pdf", b"%PDF-1.4 test", "application/pdf")},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    deal = stored(crm, "With file")
    assert deal["contract"]["name"] == "contract.pdf"
    rep.post_form(
        f"/app/crm/deal/{deal['id']}/edit", {"version": str(deal["version"]), "title": "With file 2"}
    )
    assert stored(crm, "With file 2")["contract"]["name"] == "contract.pdf"


def test_another_users_record_cannot_be_opened_or_edited(crm: Runtime) -> None:
    owner = web_client(crm, "rita", ("rep",))
    owner.post_form("/app/crm/deal/new", {"title": "Private"})
    deal = stored(crm, "Private")
    other = web_client(crm, "otto", ("rep",))
    assert other.get(f"/app/crm/deal/{deal['id']}").status_code == 404
    assert other.get(f"/app/crm/deal/{deal['id']}/edit").status_code == 404
    answer = other.post_form(f"/app/crm/deal/{deal['id']}/edit", {"title": "Stolen"})
    assert answer.status_code == 404
    assert stored(crm, "Private")["title"] == "Private"
