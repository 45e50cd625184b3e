"""Process definitions are checked at load: each mistake is one exact `file:line:col: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.support import write_files, write_pack

DEAL = """\
form: deal
label: Deal
fields:
  - {key: title, type: text}
  - {key: amount, type: money}
  - {key: stage, type: select, options: [open, won, lost]}
  - {key: owner, type: user}
  - {key: closes, type: date}
  - {key: score, type: integer, formula: "1"}
  - {key: lines, type: table, form: line}
"""
LINE = """\
form: line
label: Line
child: true
fields:
  - {key: qty, type: integer}
"""
WORKFLOW = """\
workflow: deal_flow
form: deal
field: stage
states: [{key: open}, {key: won}, {key: lost}]
transitions:
  - {action: win, from: open, to: won}
"""


def problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    pack = write_pack(tmp_path / "pack", {"deal": DEAL, "line": LINE})
    (pack / "app.yaml").write_text("app: t\nlabel: T\nversion: 1.0.0\nroles: [{key: rep}]\n")
    write_files(pack, files)
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack)
    return [str(p) for p in caught.value.problems]


def test_a_sound_process_pack_loads(tmp_path: Path) -> None:
    pack = write_pack(tmp_path / "pack", {"deal": DEAL, "line": LINE})
    write_files(pack, {"workflows/deal.yaml": WORKFLOW})
    app = load_pack(pack)
    assert [w.workflow for w in app.workflows] == ["deal_flow"]
    assert app.workflow_of("deal") is not None


def test_states_must_be_options_of_a_select_state_field(tmp_path: Path) -> None:
    found = problems(tmp_path, {"workflows/deal.yaml": WORKFLOW.replace("{key: lost}", "{key: lsot}")})
    assert found == ["workflows/deal.yaml:4:41: state 'lsot' is not an option of stage"]
    found = problems(tmp_path, {"workflows/deal.yaml": WORKFLOW.replace("field: stage", "field: title")})
    assert found == ["workflows/deal.yaml:3:8: the state field must be a select field of deal"]


def test_transitions_name_known_states_roles_and_fields(tmp_path: Path) -> None:
    bad = WORKFLOW.replace(
        "  - {action: win, from: open, to: won}",
        "  - {action: win, from: [opn], to: wn, roles: [boss], fields: [nope]}",
    )
    assert problems(tmp_path, {"workflows/deal.yaml": bad}) == [
        "workflows/deal.yaml:6:26: unknown state 'opn' (did you mean 'open'?)",
        "workflows/deal.yaml:6:36: unknown state 'wn' (did you mean 'won'?)",
        "workflows/deal.yaml:6:48: unknown role 'boss'",
        "workflows/deal.yaml:6:64: unknown field 'nope'",
    ]


def test_a_guard_is_type_checked_inside_its_text(tmp_path: Path) -> None:
    bad = WORKFLOW.replace("to: won}", "to: won, guard: \"amount + 'x'\"}")
    assert problems(tmp_path, {"workflows/deal.yaml": bad}) == [
        "workflows/deal.yaml:6:57: '+' needs a number, not text"
    ]


def test_effects_refer_to_real_fields_forms_actions_and_approvals(tmp_path: Path) -> None:
    bad = WORKFLOW.replace(
        "to: won}",
        "to: won, effects: [{set: {score: '2'}}, {transition: loose}, {start_approval: nope},"
        " {create: {form: deal, for_each: title}}, {set: {stage: \"'won'\"}}]}",
    )
    found = problems(tmp_path, {"workflows/deal.yaml": bad})
    assert found == [
        "workflows/deal.yaml:6:64: 'score' is computed and cannot be set",
        "workflows/deal.yaml:6:84: unknown action 'loose'",
        "workflows/deal.yaml:6:109: unknown approval 'nope'",
        "workflows/deal.yaml:6:148: 'title' is not a table field of deal",
        "workflows/deal.yaml:6:171: the state field changes only through transitions",
    ]


def test_timers_need_a_date_field_and_a_known_state(tmp_path: Path) -> None:
    bad = WORKFLOW + (
        "timers:\n"
        "  - {key: soon, state: won, field: title, before: 1d, effects: [{set: {title: \"'x'\"}}]}\n"
        "  - {key: late, state: gone, after: 2x, effects: [{set: {title: \"'x'\"}}]}\n"
    )
    found = problems(tmp_path, {"workflows/deal.yaml": bad})
    assert found == [  # the timer in error is left out, the other one still checked
        "workflows/deal.yaml:8:36: 'title' is not a date or datetime field of deal",
        "workflows/deal.yaml:9:37: invalid duration '2x': use a number and a unit m, h, d, w or wd "
        "(working days), such as '20h', '1d 12h' or '2wd'",
    ]
    timer = "  - {key: soon, state: gone, field: title, before: 1d, effects: [{set: {title: \"'x'\"}}]}\n"
    bad = WORKFLOW + "timers:\n" + timer
    assert problems(tmp_path, {"workflows/deal.yaml": bad}) == [
        "workflows/deal.yaml:8:24: unknown state 'gone'",
        "workflows/deal.yaml:8:37: 'title' is not a date or datetime field of deal",
    ]


def test_approval_steps_check_routing_sources_and_reject_targets(tmp_path: Path) -> None:
    approval = """\
approval: sign_off
form: deal
steps:
  - {name: first, when: "amount", approvers: {user_field: title}}
  - {name: second, approvers: {role: rep, users: [a]}, reject_to: third}
  - {name: third, approvers: {role: rep}, mode: percent}
"""
    found = problems(tmp_path, {"workflows/deal.yaml": WORKFLOW, "approvals/sign_off.yaml": approval})
    assert found == [  # the steps in error are left out; the first is still checked
        "approvals/sign_off.yaml:4:26: the expression gives a decimal value; this needs a boolean value",
        "approvals/sign_off.yaml:4:59: 'title' is not a user field of deal",
        "approvals/sign_off.yaml:5:31: give exactly one of role, users, user_field, manager, expression, "
        "assignees or submitter",
        "approvals/sign_off.yaml:6:5: 'percent' goes with mode 'percent', and it needs one",
    ]
    approval = approval.replace("role: rep, users: [a]", "role: rep").replace(", mode: percent", "")
    found = problems(tmp_path, {"workflows/deal.yaml": WORKFLOW, "approvals/sign_off.yaml": approval})
    assert found == [
        "approvals/sign_off.yaml:4:26: the expression gives a decimal value; this needs a boolean value",
        "approvals/sign_off.yaml:4:59: 'title' is not a user field of deal",
        "approvals/sign_off.yaml:5:55: reject_to must be 'start' or the name of an earlier step",
    ]


def test_automations_check_their_trigger_options_cron_and_templates(tmp_path: Path) -> None:
    automation = """\
automation: nightly
form: deal
trigger: schedule
cron: "61 * * * *"
effects:
  - notify: {to: {role: rep}, message: "{{ record.title | nosuch }}"}
"""
    found = problems(tmp_path, {"automations/nightly.yaml": automation})
    assert found[0].startswith("automations/nightly.yaml:4:7: invalid cron expression")
    assert found[1].startswith("automations/nightly.yaml:6:40: template error: No filter named 'nosuch'")
    wrong = (
        "automation: a\nform: deal\ntrigger: created\nfields: [title]\neffects: [{set: {title: \"'x'\"}}]\n"
    )
    found = problems(tmp_path, {"automations/a.yaml": wrong})  # nightly.yaml is still there
    assert [p for p in found if p.startswith("automations/a.yaml")] == [
        "automations/a.yaml:1:1: 'fields' and 'becomes' go with the updated trigger"
    ]
    assert len(found) == 3


def test_a_second_workflow_on_a_form_is_refused(tmp_path: Path) -> None:
    other = WORKFLOW.replace("workflow: deal_flow", "workflow: other_flow")
    assert problems(tmp_path, {"workflows/deal.yaml": WORKFLOW, "workflows/other.yaml": other}) == [
        "workflows/other.yaml:2:7: form 'deal' already has workflow 'deal_flow'"
    ]


def test_created_records_keep_their_numbering_and_store_in_keeps_one_record(tmp_path: Path) -> None:
    numbered = "  - {key: number, type: auto_number, pattern: 'D-{#####}'}\n"
    deal = DEAL + numbered + "  - {key: copy, type: link, to: deal}\n"
    pack = write_pack(tmp_path / "pack", {"deal": deal, "line": LINE})
    bad = WORKFLOW.replace(
        "to: won}",
        "to: won, effects: [{create: {form: deal, values: {number: \"'x'\"}}},"
        " {create: {form: deal, for_each: lines, store_in: copy}}]}",
    )
    write_files(pack, {"workflows/deal.yaml": bad})
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack)
    assert [str(p) for p in caught.value.problems] == [
        "workflows/deal.yaml:6:89: 'number' is numbered automatically and cannot be set",
        "workflows/deal.yaml:6:148: store_in keeps one record: it cannot go with for_each",
    ]
