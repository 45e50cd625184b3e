"""Reading a submitted web form into the record the records service expects."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from starlette.datastructures import FormData

from runtime.boot import start
from runtime.records.compiled import CompiledForm
from runtime.web.form_data import record_from_form, scalar
from tests.runtime.web.pack import deal_pack

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def deal(tmp_path_factory: pytest.TempPathFactory) -> CompiledForm:
    root = tmp_path_factory.mktemp("pack")
    runtime = start([deal_pack(root / "pack")], f"sqlite:///{root}/t.db", root / "files")
    return runtime.service.resolve("crm", "deal")[1]


def test_empty_inputs_are_null_and_numbers_lose_their_group_separators() -> None:
    assert scalar("text", "", SHANGHAI) is None
    assert scalar("money", "1,234.50", SHANGHAI) == "1234.50"
    assert scalar("integer", " 12 ", SHANGHAI) == "12"
    assert scalar("link", "42", SHANGHAI) == 42


def test_a_percentage_is_typed_as_people_say_it() -> None:
    assert scalar("percent", "35", SHANGHAI) == "0.35"
    assert scalar("percent", "12.5%", SHANGHAI) == "0.125"
    assert scalar("percent", "lots", SHANGHAI) == "lots", "left for the API to refuse"


def test_a_local_datetime_gets_the_app_zone() -> None:
    assert scalar("datetime", "2026-11-28T09:30", SHANGHAI) == "2026-11-28T09:30:00+08:00"


def test_markers_tell_empty_from_not_sent(deal: CompiledForm) -> None:
    editable = set(deal.writable()) | set(deal.children)
    sent = FormData([("title", "x"), ("_present", "tags"), ("_present", "lines"), ("urgent", "false")])
    record = record_from_form(deal, sent, SHANGHAI, editable)
    assert record == {"title": "x", "tags": [], "urgent": False, "lines": []}
    assert "tags" not in record_from_form(deal, FormData([("title", "x")]), SHANGHAI, editable)


def test_rows_keep_the_order_of_their_inputs_and_their_ids(deal: CompiledForm) -> None:
    editable = set(deal.children)
    sent = FormData(
        [
            ("lines[3].id", "9"),
            ("lines[3].item", "moved up"),
            ("lines[3].qty", "1"),
            ("lines[0].item", "new"),
            ("lines[0].qty", "2"),
            ("lines[0].line_total", "999"),
        ]
    )
    rows = record_from_form(deal, sent, SHANGHAI, editable)["lines"]
    assert rows == [{"id": 9, "item": "moved up", "qty": "1"}, {"item": "new", "qty": "2"}], (
        "formulas are ignored"
    )


def test_fields_the_user_may_not_write_are_not_read(deal: CompiledForm) -> None:
    record = record_from_form(deal, FormData([("title", "x"), ("secret", "7")]), SHANGHAI, {"title"})
    assert record == {"title": "x"}
