"""The designer in a real browser: an admin drags a new "industry" select field into the lead form,
publishes it through the plan, and a rep fills it in on the generated form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from runtime.db import write
from runtime.identity.actor import SYSTEM
from runtime.identity.directory import create_user
from tests.builder.designer.pack import serve_designer, write_crm
from tests.support import WEB_PASSWORD
from tests.web.browser import signed_in
from tests.web.conftest import LiveServer, serving


@pytest.fixture
def crm_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    runtime = serve_designer(write_crm(tmp_path / "pack"), db_url, tmp_path)
    with write(runtime.engine) as conn:
        create_user(conn, "ada", WEB_PASSWORD, roles=("admin",), language="en")
        create_user(conn, "rita", WEB_PASSWORD, roles=("rep",), language="en")
    with serving(runtime) as server:
        yield server


def drag(page: Any, source: Any, target: Any) -> None:
    """Drag with the mouse, the way SortableJS follows a pointer, onto the top half of `target`."""
    target.scroll_into_view_if_needed()
    start, end = source.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + 20, start["y"] + 20, steps=5)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] * 0.3, steps=15)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] * 0.25, steps=5)
    page.mouse.up()


def test_an_admin_adds_a_select_field_by_drag_and_drop_and_a_rep_fills_it(
    chromium: Any, crm_server: LiveServer, tmp_path: Path
) -> None:
    pack = tmp_path / "pack" / "forms" / "lead.yaml"
    with signed_in(chromium, crm_server, "ada", WEB_PASSWORD) as admin:
        page = admin.page
        page.click("#site-nav >> text=Designer")
        page.click("a[href='/designer/crm/forms/lead']")
        cards = page.locator("[data-list='0'] [data-key]")
        expect(cards).to_have_count(3)
        admin.shot("designer-form")
        drag(
            page,
            page.locator("#palette [data-type='select']"),
            page.locator("[data-list='0'] [data-key='contact_name']"),
        )
        expect(cards).to_have_count(4)
        keys = cards.evaluate_all("cards => cards.map(c => c.dataset.key)")
        assert keys[0] == "company" and keys[2] == "contact_name", keys
        page.click("[data-undo]")
        expect(cards).to_have_count(3)
        page.click("[data-redo]")
        expect(cards).to_have_count(4)
        page.click(f"[data-list='0'] [data-key='{keys[1]}'] [data-select]")
        page.fill("[data-prop='label_en']", "Industry")
        page.press("[data-prop='label_en']", "Tab")
        page.fill("[data-prop='label_zh']", "行业")
        page.press("[data-prop='label_zh']", "Tab")
        expect(page.locator("[data-prop='key']")).to_have_value("industry")
        page.fill("[data-option-key='0']", "manufacturing")
        page.press("[data-option-key='0']", "Tab")
        page.fill("[data-option-label='0_en']", "Manufacturing")
        page.press("[data-option-label='0_en']", "Tab")
        page.click("[data-add-option]")
        page.fill("[data-option-key='1']", "finance")
        page.press("[data-option-key='1']", "Tab")
        page.fill("[data-option-label='1_en']", "Finance")
        page.press("[data-option-label='1_en']", "Tab")
        expect(page.locator("[data-preview] [data-field='industry'] select option")).to_have_count(3)
        admin.shot("designer-field-added")
        page.click("[data-save]")
        expect(page.locator("[data-status]")).to_contain_text("Draft saved")
        text = pack.read_text(encoding="utf-8")
        assert text.index("key: company") < text.index("key: industry") < text.index("key: contact_name")
        assert "# the name on the business licence" in text and "# --- How big" in text
        assert "fields: [company, industry, contact_name, email]" in text
        page.click("[data-plan-link]")
        expect(page.locator("#plan")).to_contain_text("add column industry")
        admin.shot("designer-plan")
        page.click("[data-publish]")
        page.wait_for_url(re.compile(r"/designer/crm/history\?published="))
        expect(page.locator(".history li").first).to_contain_text("ada")
        expect(page.locator(".history li").first).to_contain_text("add column industry")
        admin.shot("designer-history")
    with signed_in(chromium, crm_server, "rita", WEB_PASSWORD) as rep:
        rep.go("/app/crm/lead/new")
        rep.page.fill('[id="in-company"]', "Designed Co")
        rep.page.select_option('[id="in-industry"]', "finance")
        rep.shot("designer-new-field-in-form")
        rep.page.click("button[type=submit]:has-text('Save')")
        rep.page.wait_for_url(re.compile(r"/app/crm/lead/\d+\?saved=1"))
        expect(rep.page.locator("[data-show='industry'] dd")).to_have_text("Finance")
    [lead] = crm_server.runtime.service.list_page("crm", "lead", [("company", "Designed Co")], SYSTEM)[
        "items"
    ]
    assert lead["industry"] == "finance"


def test_the_designer_is_for_admins_only(chromium: Any, crm_server: LiveServer) -> None:
    with signed_in(chromium, crm_server, "rita", WEB_PASSWORD) as rep:
        answer = rep.page.goto(crm_server.url + "/designer/crm/forms/lead")
        assert answer is not None and answer.status == 403
        assert rep.page.locator("#site-nav >> text=Designer").count() == 0


def test_renaming_a_published_field_keeps_its_data_through_renamed_from(
    chromium: Any, crm_server: LiveServer, tmp_path: Path
) -> None:
    crm_server.runtime.service.create("crm", "lead", {"company": "Kept Co", "contact_name": "Zoe"}, SYSTEM)
    with signed_in(chromium, crm_server, "ada", WEB_PASSWORD) as admin:
        page = admin.page
        admin.go("/designer/crm/forms/lead")
        page.click("[data-list='0'] [data-key='contact_name'] [data-select]")
        expect(page.locator("[data-prop='key']")).to_have_value("contact_name")
        page.fill("[data-prop='key']", "contact_person")
        page.press("[data-prop='key']", "Tab")
        expect(page.locator("[data-list='0'] [data-key='contact_person']")).to_have_count(1)
        page.click("[data-save]")
        expect(page.locator("[data-status]")).to_contain_text("Draft saved")
        text = (tmp_path / "pack" / "forms" / "lead.yaml").read_text(encoding="utf-8")
        assert re.search(r"- key: contact_person\n(    [^\n]*\n)*?    renamed_from: contact_name\n", text)
        page.click("[data-plan-link]")
        expect(page.locator("#plan")).to_contain_text("rename column contact_name to contact_person")
        page.click("[data-publish]")
        page.wait_for_url(re.compile(r"/designer/crm/history"))
    [lead] = crm_server.runtime.service.list_page("crm", "lead", [("company", "Kept Co")], SYSTEM)["items"]
    assert lead["contact_person"] == "Zoe"
