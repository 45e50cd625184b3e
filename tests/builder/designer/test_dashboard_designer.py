"""The dashboard designer: a widget picked from source, measure, dimension and chart, previewed live."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.boot import Runtime
from runtime.identity.actor import SYSTEM
from tests.builder.designer.pack import serve_designer, write_crm
from tests.support import web_client, write_files

BOARD = """\
    # The sales manager's board.
    dashboard: pipeline
    label: {en: Pipeline}
    widgets:
      - key: leads
        label: {en: Leads}
        chart: number
        source: lead
        measures: [{key: n, agg: count}]
    """


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    pack = write_crm(tmp_path / "pack")
    write_files(pack, {"dashboards/pipeline.yaml": BOARD})
    return serve_designer(pack, db_url, tmp_path)


def test_a_draft_widget_is_previewed_with_live_data(crm: Runtime) -> None:
    for company, budget in (("A", 100), ("B", 250), ("C", 250)):
        crm.service.create("crm", "lead", {"company": company, "budget": budget}, SYSTEM)
    admin = web_client(crm, "ada", ("admin",))
    query = "label_en=By+company&chart=bar&source=lead&agg=sum&measure_field=budget&dimension_field=company"
    data = admin.get(f"/designer/crm/dashboards/pipeline/preview?{query}").json()
    assert [c["key"] for c in data["columns"]] == ["company", "sum_budget"]
    shown = sorted((r["dimensions"][0]["display"], r["values"][0]) for r in data["rows"])
    assert shown == [("A", 100.0), ("B", 250.0), ("C", 250.0)]
    bad = admin.get("/designer/crm/dashboards/pipeline/preview?chart=bar&source=lead&agg=sum").json()
    assert bad["problems"] and "needs a field" in bad["problems"][0]


def test_adding_a_widget_writes_the_file_and_keeps_its_comment(crm: Runtime, tmp_path: Path) -> None:
    admin = web_client(crm, "ada", ("admin",))
    answer = admin.post_form(
        "/designer/crm/dashboards/pipeline",
        {
            "action": "add",
            "label_en": "Budget by company",
            "chart": "bar",
            "source": "lead",
            "agg": "sum",
            "measure_field": "budget",
            "dimension_field": "company",
            "top": "10",
        },
    )
    assert answer.status_code == 200
    text = (tmp_path / "pack" / "dashboards" / "pipeline.yaml").read_text(encoding="utf-8")
    assert "# The sales manager's board." in text
    assert "key: budget_by_company" in text and "top: 10" in text
    removed = admin.post_form("/designer/crm/dashboards/pipeline", {"action": "remove", "widget": "leads"})
    assert removed.status_code == 200
    assert "key: leads" not in (tmp_path / "pack" / "dashboards" / "pipeline.yaml").read_text(
        encoding="utf-8"
    )
