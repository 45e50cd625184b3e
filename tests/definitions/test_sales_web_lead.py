"""The sales pack's web-to-lead form (definitions/sales/intakes/web_lead.yaml): a visitor's lead is
a lead like any other — channel from the page's link, scored, in the lifecycle — and a returning
person completes their lead instead of entering a second one. Both databases."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.boot import Runtime, start
from runtime.intake import tokens
from tests.support import SALES


@pytest.fixture
def sales(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = start([SALES], db_url, tmp_path / "files")
    yield runtime
    runtime.engine.dispose()


def test_a_visitor_of_a_tagged_link_leaves_a_scored_lead(sales: Runtime) -> None:
    visitor = TestClient(sales.api)
    page = visitor.get("/public/sales/web_lead?source=sem&campaign=2026-spring&lang=en")
    assert page.status_code == 200 and "Contact us" in page.text
    assert '<input type="hidden" name="source" value="sem">' in page.text
    token = re.search(r'name="_token" value="([^"]+)"', page.text)
    assert token is not None
    form = {
        "_token": token.group(1),
        "source": "sem",
        "campaign": "2026-spring",
        "homepage": "",
        "company": "宁波海曙贸易有限公司",
        "contact_name": "陈静",
        "email": "chen.jing@haishu.cn",
        "company_size": "200_999",
        "industry": "manufacturing",
        "interests": ["product", "implementation"],
        "asked_for_demo": "true",
    }
    form["_token"] = _older(
        form["_token"], seconds=10
    )  # a person takes a while (no sleep: the page came earlier)
    done = visitor.post("/public/sales/web_lead?lang=en", data=form)
    assert done.status_code == 200 and "Thank you!" in done.text, done.text
    [lead] = sales.service.list_page("sales", "lead", [])["items"]
    assert (lead["source"], lead["campaign"], lead["status"]) == ("sem", "2026-spring", "new")
    assert lead["asked_for_demo"] is True and lead["interests"] == ["product", "implementation"]
    assert lead["score_intent"] == 35 and lead["score"] is not None  # scored as any lead is
    assert lead["created_by"] is None  # the marketing pool: entered by nobody on the staff


def test_a_returning_person_completes_their_lead(sales: Runtime) -> None:
    visitor = TestClient(sales.api)
    first = {"company": "杭州云帆科技", "contact_name": "王芳", "phone": "138 0013 8000"}
    again = {
        "company": "杭州云帆",
        "contact_name": "王芳",
        "phone": "+86 138-0013-8000",
        "email": "wf@yunfan.cn",
    }
    answers = [visitor.post("/api/v1/public/sales/web_lead", json=body) for body in (first, again)]
    assert [a.status_code for a in answers] == [202, 202] and answers[0].json() == answers[1].json()
    [lead] = sales.service.list_page("sales", "lead", [])["items"]
    assert (lead["company"], lead["phone"], lead["email"], lead["source"]) == (
        "杭州云帆科技",
        "+8613800138000",
        "wf@yunfan.cn",
        "seo",
    )


def _older(token: str, seconds: int) -> str:
    """The same page's token, as if the page had been served `seconds` earlier."""
    issued = int(token.split(".")[0])
    return tokens.issue("sales", "web_lead", dt.datetime.fromtimestamp(issued - seconds, dt.UTC))
