"""The interface speaks Chinese or English, following each user's choice."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.web.i18n import LANGUAGES, catalog
from tests.runtime.web.pack import deal_pack
from tests.support import REPO, serve, web_client

TEMPLATES = REPO / "runtime" / "web" / "templates"


def test_both_catalogs_have_the_same_keys() -> None:
    assert set(catalog("zh")) == set(catalog("en"))


def test_every_interface_string_used_is_in_the_catalogs() -> None:
    used: set[str] = set()
    for path in [*TEMPLATES.glob("*.html"), *(REPO / "runtime" / "web").glob("*.py")]:
        used |= set(
            re.findall(
                r"""\bt\(\s*["']([a-z_]+\.[a-z_.0-9]*[a-z0-9])["']""", path.read_text(encoding="utf-8")
            )
        )
    for language in LANGUAGES:
        assert used - set(catalog(language)) == set(), language


def test_switching_the_language_changes_the_pages_and_is_remembered(db_url: str, tmp_path: Path) -> None:
    runtime, _ = serve(deal_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    user = web_client(runtime, "li", ("rep",), language="zh")
    assert "我的待办" in user.get("/").text and '<html lang="zh-CN">' in user.get("/").text
    answer = user.post_form("/account/language", {"language": "en", "next": "/app/crm/deal"})
    assert answer.headers["location"] == "/app/crm/deal"
    page = user.get("/app/crm/deal")
    assert "My tasks" in page.text and "Deal" in page.text
    again = web_client(runtime, "li", ("rep",))
    assert "My tasks" in again.get("/").text, "the choice is stored with the user"
