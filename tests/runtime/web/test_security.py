"""A strict Content-Security-Policy is possible because templates carry no inline code or style."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.boot import Runtime
from runtime.web.security import CONTENT_SECURITY_POLICY
from tests.runtime.web.pack import deal_pack
from tests.support import REPO, serve, web_client

TEMPLATES = sorted((REPO / "runtime" / "web" / "templates").glob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_inline_script_handler_or_style(template: Path) -> None:
    html = template.read_text(encoding="utf-8")
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\sstyle\s*=|<style", html), "inline style"
    assert "javascript:" not in html
    assert "| safe" not in html and "|safe" not in html, "everything is escaped"


def test_the_policy_allows_scripts_and_styles_from_this_server_only() -> None:
    parts = dict(p.split(" ", 1) for p in CONTENT_SECURITY_POLICY.split("; "))
    assert parts["script-src"] == "'self'"
    assert parts["style-src"] == "'self'"
    assert parts["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_pages_and_the_sign_in_form_send_the_policy(db_url: str, tmp_path: Path) -> None:
    runtime: Runtime
    runtime, _ = serve(deal_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    rep = web_client(runtime, "rita", ("rep",))
    for path in ("/login", "/", "/app/crm/deal", "/app/crm/deal/new"):
        answer = rep.get(path)
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert answer.headers["x-frame-options"] == "DENY"


def test_values_typed_by_users_are_escaped_on_every_page(db_url: str, tmp_path: Path) -> None:
    runtime, _ = serve(deal_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    rep = web_client(runtime, "rita", ("rep",))
    evil = '<img src=x onerror="alert(1)">'
    answer = rep.post_form("/app/crm/deal/new", {"title": evil})
    record_page = rep.get(answer.headers["location"])
    for page in (record_page.text, rep.get("/app/crm/deal").text):
        assert evil not in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
