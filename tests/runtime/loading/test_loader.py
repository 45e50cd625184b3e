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
from tests.support import write_pack


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
