"""The sales pack's lead scoring, duplicate rules and entry rules, end to end through the service."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.boot import start
from runtime.records.errors import Conflict, InvalidRecord
from tests.support import SALES

WEBINAR_LEAD = {
    "company": "杭州云帆科技有限公司",
    "contact_name": "王芳",
    "source": "webinar",
    "email": "wang.fang@yunfan.example.cn",
    "phone": "13812345678",
    "company_size": "50_199",
    "industry": "manufacturing",
    "region": "north_china",
    "budget": 600000,
    "site_visits": 4,
    "downloads": 2,
    "email_opens": 10,
    "interest_level": 3,
    "urgency": 3,
    "asked_for_price": True,
    "asked_for_demo": True,
    "purchase_timeline": "none",
}


@pytest.fixture
def sales(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runtime = start([SALES], db_url, tmp_path / "files")  # the settings record comes with the app
    yield runtime.service
    runtime.engine.dispose()


def test_the_webinar_lead_scores_72_and_reaches_mql(sales) -> None:  # type: ignore[no-untyped-def]
    lead = sales.create("sales", "lead", WEBINAR_LEAD)
    dimensions = [lead[k] for k in ("score_demographics", "score_behaviour", "score_needs", "score_intent")]
    assert dimensions == [75, 80, 60, 70]
    assert lead["score"] == 72
    assert lead["reached_mql_score"] is True


def test_changing_weights_recomputes_every_score_like_a_write_would(sales) -> None:  # type: ignore[no-untyped-def]
    first = sales.create("sales", "lead", WEBINAR_LEAD)
    second = sales.create(
        "sales",
        "lead",
        {
            "company": "B",
            "contact_name": "Li",
            "source": "seo",
            "email": "li@b.cn",
            "site_visits": 3,
            "urgency": 5,
        },
    )
    settings = sales.list_page("sales", "scoring_settings", [])["items"][0]
    sales.update(
        "sales",
        "scoring_settings",
        settings["id"],
        {"weight_intent": 70, "mql_threshold": 75, "target_industries": ["finance"]},
    )
    bulk = {
        r["id"]: (r["score"], r["reached_mql_score"]) for r in sales.list_page("sales", "lead", [])["items"]
    }
    for lead in (first, second):
        recomputed = sales.update("sales", "lead", lead["id"], {})  # recomputed in Python on write
        assert bulk[lead["id"]] == (recomputed["score"], recomputed["reached_mql_score"])
    assert bulk[first["id"]] != (first["score"], first["reached_mql_score"])


def test_settings_are_one_record_with_sane_weights(sales) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Conflict):
        sales.create("sales", "scoring_settings", {})
    settings = sales.list_page("sales", "scoring_settings", [])["items"][0]
    with pytest.raises(InvalidRecord) as caught:
        sales.update(
            "sales",
            "scoring_settings",
            settings["id"],
            {"weight_demographics": 0, "weight_behaviour": 0, "weight_needs": 0, "weight_intent": 0},
        )
    assert {p.code for p in caught.value.problems} == {"rule"}


def test_a_second_entry_of_the_same_person_is_a_duplicate(sales) -> None:  # type: ignore[no-untyped-def]
    first = sales.create("sales", "lead", WEBINAR_LEAD)
    again = {
        "company": "杭州云帆科技",
        "contact_name": "王芳",
        "source": "trade_show",
        "phone": "138 1234 5678",
    }
    with pytest.raises(Conflict) as caught:
        sales.create("sales", "lead", again)
    assert caught.value.problems[0].candidates == (first["id"],)


def test_entry_rules_of_the_lead_form(sales) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRecord) as caught:
        sales.create(
            "sales", "lead", {"company": "C", "contact_name": "Z", "source": "seo", "status": "disqualified"}
        )
    found = {(p.field, p.code) for p in caught.value.problems}
    assert found == {("phone", "rule"), ("email", "rule"), ("disqualify_reason", "required")}


def test_lowering_the_mql_threshold_makes_open_leads_that_reach_it_mqls(sales) -> None:  # type: ignore[no-untyped-def]
    from runtime.process.engine import engine_for
    from runtime.process.worker import Worker

    lead = sales.create("sales", "lead", {**WEBINAR_LEAD, "asked_for_price": False, "asked_for_demo": False})
    assert lead["status"] == "new" and lead["score"] < 60
    settings = sales.list_page("sales", "scoring_settings", [])["items"][0]
    sales.update("sales", "scoring_settings", settings["id"], {"mql_threshold": lead["score"]})
    Worker(engine_for(sales), "test").run_until_idle()
    assert sales.get("sales", "lead", lead["id"])["status"] == "mql"
