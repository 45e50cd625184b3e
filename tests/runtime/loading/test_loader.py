"""Loader errors: each kind of mistake is reported as one exact `file:line:col: message`.

Lines and columns are 1-based. They point at the offending value, or at the key itself
for unknown and duplicate keys. Folder packs name files relative to the pack folder;
single-file packs name the file as it was given, so these tests work from `tmp_path`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runtime.loading.loader import load_pack, load_packs
from runtime.loading.problems import DefinitionError, Problem
from runtime.model import App
from tests.support import write_files, write_pack


def problems_of(path: Path | str) -> list[str]:
    """The problems `load_pack` reports for `path`, as `file:line:col: message` strings."""
    with pytest.raises(DefinitionError) as caught:
        load_pack(path)
    lines = [str(p) for p in caught.value.problems]
    assert str(caught.value) == "\n".join(lines)
    return lines


def folder(tmp_path: Path, **forms: str) -> Path:
    return write_pack(tmp_path / "pack", forms)


# --- unknown, duplicate and badly named keys ---------------------------------------------------


def test_unknown_key_is_located_at_the_key_and_suggests_the_closest(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        fields:
          - key: company
            type: text
            requird: true
        """,
    )
    assert problems_of(pack) == ["forms/lead.yaml:6:5: unknown key 'requird' (did you mean 'required'?)"]


def test_unknown_key_of_the_app_file(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        fields:
          - key: company
            type: text
        """,
    )
    (pack / "app.yaml").write_text("app: t\nlabel: Test\nversion: 1.0.0\ncurency: EUR\n", encoding="utf-8")
    assert problems_of(pack) == ["app.yaml:4:1: unknown key 'curency' (did you mean 'currency'?)"]


def test_duplicate_key_names_the_first_occurrence(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        fields:
          - key: company
            type: text
            type: email
        """,
    )
    assert problems_of(pack) == ["forms/lead.yaml:6:5: duplicate key 'type' (first at line 5)"]


def test_invalid_identifier(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        fields:
          - key: Company
            type: text
        """,
    )
    assert problems_of(pack) == [
        "forms/lead.yaml:4:10: invalid identifier 'Company': use lowercase letters, digits "
        "and single underscores, start with a letter, at most 40 characters"
    ]


def test_reserved_name_as_field_key(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        fields:
          - key: id
            type: text
        """,
    )
    assert problems_of(pack) == ["forms/lead.yaml:4:10: 'id' is a reserved name"]


# --- field types and cross references ----------------------------------------------------------


def test_unknown_field_type_suggests_text(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: {zh: 线索, en: Lead}
        title_field: company

        fields:
          - key: company
            type: text
            label: {zh: 公司名称, en: Company}
            required: true
          - key: contact_name
            label: {zh: 联系人姓名, en: Contact name}
            type: txt
        """,
    )
    assert (pack / "forms" / "lead.yaml").read_text().splitlines()[11] == "    type: txt"
    assert problems_of(pack) == ["forms/lead.yaml:12:11: unknown field type 'txt' (did you mean 'text'?)"]


def test_link_to_missing_form(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        account="""\
        form: account
        label: Account
        fields:
          - key: name
            type: text
        """,
        contact="""\
        form: contact
        label: Contact
        fields:
          - key: name
            type: text
          - key: account
            type: link
            to: acount
        """,
    )
    assert problems_of(pack) == [
        "forms/contact.yaml:8:9: link to unknown form 'acount' (did you mean 'account'?)"
    ]


def test_table_of_a_form_that_is_not_a_child(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        quote="""\
        form: quote
        label: Quote
        fields:
          - key: lines
            type: table
            form: quote_line
        """,
        quote_line="""\
        form: quote_line
        label: Quote line
        fields:
          - key: quantity
            type: integer
        """,
    )
    assert problems_of(pack) == ["forms/quote.yaml:6:11: form 'quote_line' is not declared 'child: true'"]


def test_required_link_cannot_set_null(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        account="""\
        form: account
        label: Account
        fields:
          - key: name
            type: text
        """,
        contact="""\
        form: contact
        label: Contact
        fields:
          - key: account
            type: link
            to: account
            required: true
            on_delete: set_null
        """,
    )
    assert problems_of(pack) == ["forms/contact.yaml:8:16: a required link cannot use on_delete: set_null"]


# --- defaults ----------------------------------------------------------------------------------


def test_select_default_not_among_the_options(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        fields:
          - key: status
            type: select
            options: [new, contacted]
            default: nwe
        """,
    )
    assert problems_of(pack) == ["forms/lead.yaml:7:14: default 'nwe' is not an option (did you mean 'new'?)"]


def test_integer_default_outside_min_and_max(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        fields:
          - key: urgency
            type: integer
            min: 1
            max: 5
            default: 9
          - key: visits
            type: integer
            min: 1
            default: 0
        """,
    )
    assert problems_of(pack) == [
        "forms/lead.yaml:8:14: default 9 is above max 5",
        "forms/lead.yaml:12:14: default 0 is below min 1",
    ]


# --- layout, list view and title ---------------------------------------------------------------

TWO_FIELDS = """\
form: lead
label: Lead
fields:
  - key: company
    type: text
  - key: email
    type: email
"""


def test_layout_naming_a_missing_field(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead=TWO_FIELDS
        + """\
layout:
  - section: Main
    fields: [company, emial]
""",
    )
    assert problems_of(pack) == ["forms/lead.yaml:10:23: unknown field 'emial' (did you mean 'email'?)"]


def test_field_placed_twice_in_the_layout(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead=TWO_FIELDS
        + """\
layout:
  - section: Main
    fields: [company, email]
  - section: More
    fields: [email]
""",
    )
    assert problems_of(pack) == ["forms/lead.yaml:12:14: field 'email' is placed twice in the layout"]


def test_list_columns_and_sort_naming_missing_fields(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead=TWO_FIELDS
        + """\
list:
  columns: [company, mail]
  sort: [-compny]
""",
    )
    assert problems_of(pack) == [
        "forms/lead.yaml:9:22: unknown field 'mail' (did you mean 'email'?)",
        "forms/lead.yaml:10:10: unknown field 'compny' (did you mean 'company'?)",
    ]


def test_unknown_title_field(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        title_field: compny
        fields:
          - key: company
            type: text
        """,
    )
    assert problems_of(pack) == ["forms/lead.yaml:3:14: unknown field 'compny' (did you mean 'company'?)"]


# --- files: syntax, formats, tags, emptiness ---------------------------------------------------


def test_yaml_syntax_error(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead: x
        fields:
          - key: company
            type: text
        """,
    )
    assert problems_of(pack) == ["forms/lead.yaml:2:12: syntax error: mapping values are not allowed here"]


def test_single_json_file_pack_locates_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = """\
{
  "app": "t",
  "label": {"en": "Test"},
  "version": "1.0.0",
  "forms": [
    {
      "form": "lead",
      "label": "Lead",
      "fields": [
        {"key": "company", "type": "txt"}
      ]
    }
  ]
}
"""
    json.loads(text)  # the file is plain, valid JSON
    (tmp_path / "pack.json").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert problems_of("pack.json") == ["pack.json:10:36: unknown field type 'txt' (did you mean 'text'?)"]


def test_json_with_an_escaped_emoji_loads(tmp_path: Path) -> None:
    path = tmp_path / "pack.json"
    path.write_text(json.dumps({"app": "t", "label": {"en": "Test 😀"}, "version": "1"}))
    assert "\\ud83d\\ude00" in path.read_text()
    assert load_pack(path).label.en == "Test 😀"


def test_unsupported_yaml_tag_is_refused(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: !!python/object:builtins.dict {en: Lead}
        fields:
          - key: company
            type: text
        """,
    )
    assert problems_of(pack) == [
        "forms/lead.yaml:2:8: unsupported tag 'tag:yaml.org,2002:python/object:builtins.dict'"
    ]


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n"], ids=["empty", "comment"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    pack = folder(tmp_path, lead="form: lead\n")
    (pack / "forms" / "lead.yaml").write_text(text, encoding="utf-8")
    assert problems_of(pack) == ["forms/lead.yaml:1:1: the file is empty"]


def test_folder_without_app_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pack" / "forms").mkdir(parents=True)
    (tmp_path / "pack" / "forms" / "lead.yaml").write_text(TWO_FIELDS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert problems_of("pack") == ["pack:1:1: the folder has no app.yaml"]


def test_missing_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert problems_of("nowhere") == ["nowhere:1:1: no such file or folder"]


# --- forms and packs defined twice -------------------------------------------------------------


def test_two_form_files_with_the_same_key(tmp_path: Path) -> None:
    pack = folder(tmp_path, a=TWO_FIELDS, b=TWO_FIELDS)
    assert problems_of(pack) == ["forms/b.yaml:1:7: form 'lead' is defined twice"]


def test_two_inline_forms_with_the_same_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pack.yaml").write_text(
        textwrap.dedent("""\
        app: t
        label: Test
        version: 1.0.0
        forms:
          - form: lead
            label: Lead
            fields: [{key: company, type: text}]
          - form: lead
            label: Lead again
            fields: [{key: email, type: email}]
        """),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    assert problems_of("pack.yaml") == ["pack.yaml:8:11: form 'lead' is defined twice"]


def test_the_same_app_loaded_twice(tmp_path: Path) -> None:
    first = write_pack(tmp_path / "one", {"lead": TWO_FIELDS})
    second = write_pack(tmp_path / "two", {"lead": TWO_FIELDS})
    with pytest.raises(DefinitionError) as caught:
        load_packs([first, second])
    assert caught.value.problems == [Problem(str(second), 1, 1, "app 't' is loaded twice")]


# --- many problems at once ---------------------------------------------------------------------


def test_every_problem_of_every_file_is_reported_sorted(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        # 'fields' comes first in the file, so the model reports it after 'label':
        # the result must still be in line order.
        b="""\
        fields:
          - key: Company
            type: text
        form: b
        label: {}
        """,
        a="""\
        form: a
        label: A
        fields:
          - key: name
            type: txt
          - key: owner
            type: user
            defualt: current_user
        """,
    )
    (pack / "app.yaml").write_text("app: t\nlabel: Test\nversion: one\n", encoding="utf-8")
    assert problems_of(pack) == [
        "app.yaml:3:10: version: string should match pattern '^\\d+(\\.\\d+){0,2}([-+][0-9A-Za-z.-]+)?$'",
        "forms/a.yaml:5:11: unknown field type 'txt' (did you mean 'text'?)",
        "forms/a.yaml:8:5: unknown key 'defualt' (did you mean 'default'?)",
        "forms/b.yaml:2:10: invalid identifier 'Company': use lowercase letters, digits "
        "and single underscores, start with a letter, at most 40 characters",
        "forms/b.yaml:5:8: label: a label needs 'zh' or 'en'",
    ]


# --- the same pack in one file and in a folder -------------------------------------------------

ACCOUNT = """\
form: account
label: {zh: 客户, en: Account}
title_field: name
fields:
  - key: name
    type: text
    required: true
    max_length: 200
  - key: tier
    type: select
    options: [gold, silver]
    default: silver
  - key: employees
    type: integer
    min: 0
    default: 0
list:
  columns: [name, tier]
  sort: [name]
"""

CONTACT = """\
form: contact
label: Contact
fields:
  - key: name
    type: text
  - key: account
    type: link
    to: account
    required: true
  - key: since
    type: date
    min: 2000-01-01
layout:
  - section: Main
    columns: 2
    fields: [name, account, since]
"""


def test_single_file_and_folder_packs_load_the_same(tmp_path: Path) -> None:
    in_folder = write_pack(tmp_path / "pack", {"account": ACCOUNT, "contact": CONTACT})
    forms = "".join("  - " + textwrap.indent(body, "    ")[4:] for body in (ACCOUNT, CONTACT))
    single = tmp_path / "pack.yaml"
    single.write_text(
        (in_folder / "app.yaml").read_text(encoding="utf-8") + "forms:\n" + forms,
        encoding="utf-8",
    )
    from_folder, from_file = load_pack(in_folder), load_pack(single)
    assert isinstance(from_folder, App)
    assert [f.form for f in from_folder.forms] == ["account", "contact"]
    assert from_file.model_dump() == from_folder.model_dump()

    as_json = tmp_path / "pack.json"
    as_json.write_text(json.dumps(from_file.model_dump(mode="json", by_alias=True)))
    assert load_pack(as_json).model_dump() == from_folder.model_dump()


# --- every problem in one run: forms, workflows, approvals and dashboards ----------------------

MISTAKES = {
    "app.yaml": """\
        app: shop
        label: Shop
        version: one
        roles:
          - {key: rep}
          - {key: Manager}
        """,
    "forms/lead.yaml": """\
        form: lead
        label: Lead
        title_field: company
        fields:
          - {key: company, type: txt}
          - {key: email, type: email}
          - {key: score, type: integer, formula: "LEN(company) + 1"}
        layout:
          - {section: Main, fields: [company, emial]}
        rules:
          - {check: "company != null or email != null", message: Give one}
        """,
    "forms/deal.yaml": """\
        form: deal
        label: Deal
        fields:
          - {key: title, type: text, requird: true}
          - {key: amount, type: money}
          - {key: status, type: select, options: [open, won, lost]}
          - {key: lead, type: link, to: lead}
          - {key: margin, type: percent, formula: "amount * "}
        """,
    "forms/ticket.yaml": """\
        form: ticket
        label: Ticket
        fields: oops
        """,
    "workflows/deal.yaml": """\
        workflow: deal_flow
        form: deal
        field: status
        states: [{key: open}, {key: won}, {key: lost}]
        transitions:
          - {action: win, from: open, to: wom}
          - {action: lose, from: open, to: lost, gaurd: "amount > 0"}
          - {action: reopen, from: [won, lost], to: open, guard: "lead.company != null"}
        """,
    "approvals/deal.yaml": """\
        approval: deal_ok
        form: deal
        steps:
          - {name: first, approvers: {role: boss}, when: "amount > 100"}
          - {name: second, approvers: {role: manager}, reject_to: first}
        on_approved:
          - transition: win
        """,
    "approvals/ticket.yaml": """\
        approval: ticket_ok
        form: ticket
        steps:
          - {name: first, approvers: {role: chief}, when: "urgent == true"}
          - {name: second, approvers: {role: rep}, reject_to: frist}
        """,
    "dashboards/sales.yaml": """\
        dashboard: sales
        label: Sales
        widgets:
          - key: by_company
            label: By company
            chart: bar
            source: lead
            dimensions: [{key: company, field: company}]
            measures: [{key: n, agg: sum, field: company}]
          - key: by_stage
            label: By stage
            chart: bar
            source: deal
            dimensions: [{key: stage, field: stage}]
            measures: [{key: total, agg: sum, field: amount}]
          - {key: pie, label: Pie, chart: pie, source: deal, measures: [{key: n, agg: count}]}
          - {key: tickets, label: Tickets, chart: number, source: ticket, measures: [{key: n, agg: count}]}
        """,
}
# Each mistake once, where it is written. Not reported, as follow-ups of these: the stub
# `company` (title field, formula, rule, dashboard dimension and sum, a workflow guard through
# the `lead` link), the role `manager` refused for its capital, the form `ticket` that did not
# load (its approval's condition and its widget), the workflow transition `lose` kept without
# its bad key, and the approval's transition `win` whose target state is wrong.
EVERY_MISTAKE = [
    "app.yaml:3:10: version: string should match pattern '^\\d+(\\.\\d+){0,2}([-+][0-9A-Za-z.-]+)?$'",
    "app.yaml:6:11: invalid identifier 'Manager': use lowercase letters, digits and single "
    "underscores, start with a letter, at most 40 characters",
    "approvals/deal.yaml:4:37: unknown role 'boss'",
    "approvals/ticket.yaml:4:37: unknown role 'chief'",
    "approvals/ticket.yaml:5:55: reject_to must be 'start' or the name of an earlier step",
    "dashboards/sales.yaml:14:38: unknown field 'stage'",
    "dashboards/sales.yaml:16:5: a pie chart has one dimension",
    "forms/deal.yaml:4:30: unknown key 'requird' (did you mean 'required'?)",
    "forms/deal.yaml:8:53: unexpected end of the expression",
    "forms/lead.yaml:5:26: unknown field type 'txt' (did you mean 'text'?)",
    "forms/lead.yaml:9:39: unknown field 'emial' (did you mean 'email'?)",
    "forms/ticket.yaml:3:9: fields: input should be a valid list",
    "workflows/deal.yaml:6:35: unknown state 'wom' (did you mean 'won'?)",
    "workflows/deal.yaml:7:42: unknown key 'gaurd' (did you mean 'guard'?)",
]


def test_every_mistake_of_a_pack_is_reported_in_one_run_without_follow_ups(tmp_path: Path) -> None:
    pack = write_files(tmp_path / "pack", MISTAKES)
    found = problems_of(pack)
    assert found == EVERY_MISTAKE
    assert len(set(found)) == len(found)
    # fixing them leaves a pack that loads; only what read the field in error (`company`, a sum
    # of it once it is text) could not be judged before, and is fixed here too
    fixed = {
        name: text.replace("version: one", "version: '1'")
        .replace("Manager", "manager")
        .replace("txt", "text")
        .replace("emial", "email")
        .replace("requird", "required")
        .replace('"amount * "', '"amount * 0.1"')
        .replace("fields: oops", "fields: [{key: urgent, type: boolean}]")
        .replace("to: wom", "to: won")
        .replace("gaurd", "guard")
        .replace("role: boss", "role: rep")
        .replace("role: chief", "role: rep")
        .replace("frist", "first")
        .replace("field: stage", "field: status")
        .replace("chart: pie,", "chart: number,")
        for name, text in MISTAKES.items()
    }
    fixed["dashboards/sales.yaml"] = fixed["dashboards/sales.yaml"].replace(
        "agg: sum, field: company", "agg: count"
    )
    app = load_pack(write_files(tmp_path / "fixed", fixed))
    assert [f.form for f in app.forms] == ["deal", "lead", "ticket"]


def test_a_single_file_pack_reports_every_mistake_in_one_run_too(tmp_path: Path) -> None:
    lines = [textwrap.dedent(MISTAKES["app.yaml"])]
    for kind in ("forms", "workflows", "approvals", "dashboards"):
        entries = [textwrap.dedent(text) for name, text in sorted(MISTAKES.items()) if name.startswith(kind)]
        lines.append(f"{kind}:\n" + "".join("  - " + textwrap.indent(e, "    ")[4:] for e in entries))
    single = tmp_path / "pack.yaml"
    single.write_text("".join(lines), encoding="utf-8")
    found = problems_of(single)

    def messages(lines: list[str]) -> list[str]:
        return sorted(line.split(": ", 1)[1] for line in lines)

    assert messages(found) == messages(EVERY_MISTAKE)  # the same mistakes, at their places in one file


def test_problems_after_a_part_left_out_point_at_their_own_place(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        lead="""\
        form: lead
        label: Lead
        fields:
          - {key: Company, type: text}
          - {key: account, type: link, to: acount}
        """,
        account="""\
        form: account
        label: Account
        fields: [{key: name, type: text}]
        """,
    )
    write_files(
        pack,
        {
            "workflows/lead.yaml": """\
            workflow: lead_flow
            form: lead
            field: account
            states: [{key: new}]
            transitions:
              - {action: Bad, from: new, to: new}
              - {action: ok, from: new, to: gone}
            """
        },
    )
    assert problems_of(pack) == [
        "forms/lead.yaml:4:11: invalid identifier 'Company': use lowercase letters, digits and single "
        "underscores, start with a letter, at most 40 characters",
        "forms/lead.yaml:5:36: link to unknown form 'acount' (did you mean 'account'?)",
        "workflows/lead.yaml:3:8: the state field must be a select field of lead",
        "workflows/lead.yaml:6:14: invalid identifier 'Bad': use lowercase letters, digits and single "
        "underscores, start with a letter, at most 40 characters",
        "workflows/lead.yaml:7:33: unknown state 'gone'",
    ]


def test_department_fields_and_limited_user_fields_are_checked_at_load(tmp_path: Path) -> None:
    pack = folder(
        tmp_path,
        ticket="""\
        form: ticket
        label: Ticket
        department_field: owner
        fields:
          - {key: owner, type: user, roles: [rep, boss], within: [no_such_department]}
          - {key: unit, type: department, default: current_user}
          - {key: lines, type: table, form: line}
        """,
        line="""\
        form: line
        label: Line
        child: true
        fields:
          - {key: unit, type: department, default: current_user_department}
        """,
    )
    (pack / "app.yaml").write_text("app: t\nlabel: T\nversion: '1'\nroles: [{key: rep}]\n", encoding="utf-8")
    assert problems_of(pack) == [
        "forms/line.yaml:5:44: child rows have no current_user_department default",
        "forms/ticket.yaml:3:19: the department field must be a department field of ticket",
        "forms/ticket.yaml:5:43: unknown role 'boss'; declare it in app.yaml",
        "forms/ticket.yaml:6:44: invalid default 'current_user': expected 'current_user_department'",
    ]
    # department keys are data: `within` names any key, looked up when a value is written
    fixed = (pack / "forms" / "ticket.yaml").read_text(encoding="utf-8")
    fixed = (
        fixed.replace("owner\nfields", "unit\nfields").replace(", boss", "").replace("current_user}", "null}")
    )
    (pack / "forms" / "ticket.yaml").write_text(fixed, encoding="utf-8")
    (pack / "forms" / "line.yaml").write_text(
        "form: line\nlabel: Line\nchild: true\nfields: [{key: unit, type: department}]\n", encoding="utf-8"
    )
    app = load_pack(pack)
    ticket = app.form("ticket")
    assert ticket is not None and ticket.department_field == "unit"
    assert getattr(ticket.field("owner"), "within", None) == ["no_such_department"]
