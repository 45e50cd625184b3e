"""The home page, the dashboards page and the language switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.boot import Runtime
from tests.runtime.web.pack import deal_pack
from tests.support import serve, web_client


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    runtime, _ = serve(deal_pack(tmp_path / "pack"), db_url, tmp_path / "files")
    return runtime


def test_the_dashboard_page_frames_each_widget_with_its_data_url_and_the_date_range(crm: Runtime) -> None:
    boss = web_client(crm, "bea", ("boss",))
    assert 'href="/app/crm/dashboards/deals"' in boss.get("/").text
    page = boss.get("/app/crm/dashboards/deals?from=2026-01-01&to=2026-03-31&other=ignored")
    assert page.status_code == 200
    url = "/api/v1/crm/dashboards/deals/widgets/by_status/data?from=2026-01-01&amp;to=2026-03-31"
    assert f'data-widget="{url}"' in page.text and 'data-chart="bar"' in page.text
    data = boss.get(url.replace("&amp;", "&"))
    assert data.status_code == 200 and data.json()["widget"] == "by_status", "the session reads the data"


def test_a_dashboard_is_shown_only_to_its_roles(crm: Runtime) -> None:
    rep = web_client(crm, "rita", ("rep",))
    assert 'href="/app/crm/dashboards/deals"' not in rep.get("/").text
    answer = rep.get("/app/crm/dashboards/deals")
    assert answer.status_code == 403 and answer.headers["content-type"].startswith("text/html")


def test_the_language_switch_only_redirects_within_the_site(crm: Runtime) -> None:
    user = web_client(crm, "li", ("rep",))
    answer = user.post_form("/account/language", {"language": "en", "next": "//evil.example/"})
    assert answer.headers["location"] == "/"
