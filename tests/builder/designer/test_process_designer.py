"""The workflow and approval designers: the diagram, and edits that keep the file's comments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from builder.designer.diagram import layout
from runtime.boot import Runtime
from tests.builder.designer.pack import serve_designer, write_crm
from tests.support import web_client, write_files


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Runtime:
    return serve_designer(write_crm(tmp_path / "pack"), db_url, tmp_path)


def test_the_diagram_places_states_by_distance_from_the_initial_state() -> None:
    drawn = layout(
        {
            "states": [{"key": "draft", "initial": True}, {"key": "sent"}, {"key": "paid", "final": True}],
            "transitions": [
                {"action": "send", "from": "draft", "to": "sent"},
                {"action": "pay", "from": "sent", "to": "paid"},
                {"action": "recall", "from": ["sent", "paid"], "to": "draft"},
            ],
        }
    )
    columns = {n.key: n.x for n in drawn.nodes}
    assert columns["draft"] < columns["sent"] < columns["paid"]
    assert sorted(e.action for e in drawn.edges) == ["pay", "recall", "recall", "send"]


def test_the_workflow_page_draws_the_diagram_and_saves_edits_keeping_comments(
    crm: Runtime, tmp_path: Path
) -> None:
    admin = web_client(crm, "ada", ("admin",))
    page = admin.get("/designer/crm/workflows/lead_status")
    assert page.status_code == 200 and "<svg" in page.text and ">win</text>" in page.text
    answer = admin.post_form(
        "/designer/crm/workflows/lead_status",
        [
            ("initial", "new"),
            ("states[0].key", "new"),
            ("states[1].key", "won"),
            ("states[1].final", "true"),
            ("states[2].key", "lost"),
            ("states[2].final", "true"),
            ("states[2].label_en", "Lost"),
            ("transitions[0].was", "win"),
            ("transitions[0].action", "win"),
            ("transitions[0].from", "new"),
            ("transitions[0].to", "won"),
            ("transitions[0].guard", "budget > 1000"),
            ("transitions[1].action", "lose"),
            ("transitions[1].from", "new"),
            ("transitions[1].to", "lost"),
            (
                "transitions[1].effects",
                "- notify:\n    to: {user_field: owner_user}\n    message: {en: Lost}\n",
            ),
        ],
    )
    assert answer.status_code == 200
    text = (tmp_path / "pack" / "workflows" / "lead.yaml").read_text(encoding="utf-8")
    assert "# Lead status." in text and "# a signed deal" in text
    assert (
        "guard: budget > 1000" in text or "guard: 'budget > 1000'" in text or 'guard: "budget > 1000"' in text
    )
    assert "action: lose" in text and "label: {en: Lost}" in text
    assert "workflows/lead.yaml:8:10: state &#39;lost&#39; is not an option of status" in answer.text, (
        "the draft is saved, and the loader says what to fix before it can be published"
    )


def test_bad_effects_yaml_is_refused_with_a_message_and_nothing_is_written(
    crm: Runtime, tmp_path: Path
) -> None:
    admin = web_client(crm, "ada", ("admin",))
    before = (tmp_path / "pack" / "workflows" / "lead.yaml").read_text(encoding="utf-8")
    answer = admin.post_form(
        "/designer/crm/workflows/lead_status",
        [
            ("initial", "new"),
            ("states[0].key", "new"),
            ("transitions[0].action", "x"),
            ("transitions[0].effects", "- [unclosed"),
        ],
    )
    assert answer.status_code == 422 and "not valid YAML" in answer.text
    assert (tmp_path / "pack" / "workflows" / "lead.yaml").read_text(encoding="utf-8") == before


def test_the_approval_step_editor_sets_source_mode_condition_and_reject_target(
    crm: Runtime, tmp_path: Path
) -> None:
    write_files(
        tmp_path / "pack",
        {
            "approvals/big.yaml": """\
                # Big leads need two signatures.
                approval: big_lead
                form: lead
                steps:
                  - name: boss
                    approvers: {role: rep}
                """
        },
    )
    admin = web_client(crm, "ada", ("admin",))
    assert "boss" in admin.get("/designer/crm/approvals/big_lead").text
    answer = admin.post_form(
        "/designer/crm/approvals/big_lead",
        [
            ("label_en", "Big lead"),
            ("no_self_approval", "true"),
            ("lock", "true"),
            ("steps[0].was", "boss"),
            ("steps[0].name", "boss"),
            ("steps[0].source", "manager"),
            ("steps[0].value", "1"),
            ("steps[0].of", "owner_user"),
            ("steps[0].mode", "any"),
            ("steps[0].reject_to", "start"),
            ("steps[1].name", "board"),
            ("steps[1].source", "role"),
            ("steps[1].value", "rep"),
            ("steps[1].mode", "percent"),
            ("steps[1].percent", "60"),
            ("steps[1].when", "budget > 100000"),
            ("steps[1].reject_to", "boss"),
        ],
    )
    assert answer.status_code == 200
    text = (tmp_path / "pack" / "approvals" / "big.yaml").read_text(encoding="utf-8")
    assert "# Big leads need two signatures." in text
    assert "approvers: {manager: 1, of: owner_user}" in text
    assert "mode: percent" in text and "percent: 60" in text and "reject_to: boss" in text
    assert re.search(r"when: .?budget > 100000", text)
    assert "The draft has problems" not in answer.text


def test_a_stale_workflow_page_cannot_undo_a_newer_change(crm: Runtime, tmp_path: Path) -> None:
    from tests.builder.designer.html_forms import submitted

    admin = web_client(crm, "ada", ("admin",))
    action = "/designer/crm/workflows/lead_status"
    page = admin.get(action)
    path = tmp_path / "pack" / "workflows" / "lead.yaml"
    changed = path.read_text(encoding="utf-8").replace('guard: "budget > 0"', 'guard: "budget > 10"')
    path.write_text(changed, encoding="utf-8")
    answer = admin.post_form(action, submitted(page.text, action))
    assert answer.status_code == 409 and "changed since it was opened" in answer.text
    assert path.read_text(encoding="utf-8") == changed
