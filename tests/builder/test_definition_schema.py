"""The JSON Schema of the definition language: committed in docs/schema, strict, and in step.

Regenerate the committed files with
    formloom schema app > docs/schema/app.schema.json
    formloom schema form > docs/schema/form.schema.json
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from builder.cli import definition_schema
from runtime.loading.loader import load_pack
from tests.support import REPO, SALES

SCHEMA_DIR = REPO / "docs" / "schema"
SALES_FORMS = sorted((SALES / "forms").glob("*.yaml"))


def read_yaml(path: Path) -> Any:
    """The file's data; timestamps stay text, as the loader keeps them (JSON has no dates)."""
    return _dates_as_text(YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")))


def _dates_as_text(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _dates_as_text(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_dates_as_text(item) for item in node]
    if isinstance(node, dt.date):
        return node.isoformat()
    return node


def validator(kind: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def messages(kind: str, data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(kind).iter_errors(data)]


@pytest.mark.parametrize("kind", ["app", "form"])
def test_committed_schema_is_current(kind: str) -> None:
    committed = (SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8")
    generated = json.dumps(definition_schema(kind), indent=2, ensure_ascii=False) + "\n"
    assert committed == generated, (
        f"docs/schema/{kind}.schema.json is out of date: "
        f"run `formloom schema {kind} > docs/schema/{kind}.schema.json`"
    )


def test_the_sales_app_file_validates() -> None:
    assert messages("app", read_yaml(SALES / "app.yaml")) == []


@pytest.mark.parametrize("path", SALES_FORMS, ids=[p.stem for p in SALES_FORMS])
def test_each_sales_form_validates(path: Path) -> None:
    assert messages("form", read_yaml(path)) == []


def test_the_sales_pack_as_one_file_validates_against_the_app_schema() -> None:
    whole = read_yaml(SALES / "app.yaml")
    whole["forms"] = [read_yaml(p) for p in SALES_FORMS]
    assert messages("app", whole) == []


def test_the_schema_is_strict_about_unknown_keys() -> None:
    form = read_yaml(SALES / "forms" / "account.yaml")
    assert messages("form", form) == []

    top = {**form, "colour": "blue"}
    assert messages("form", top) != []

    in_a_field = copy.deepcopy(form)
    in_a_field["fields"][0]["requird"] = True
    assert messages("form", in_a_field) != []

    in_the_list = copy.deepcopy(form)
    in_the_list["list"]["colums"] = ["name"]
    assert messages("form", in_the_list) != []

    app = read_yaml(SALES / "app.yaml")
    assert messages("app", {**app, "curency": "EUR"}) != []


def test_the_schema_refuses_an_unknown_field_type() -> None:
    form = read_yaml(SALES / "forms" / "account.yaml")
    form["fields"][0]["type"] = "txt"
    assert messages("form", form) != []


SHORTHAND_FORM = """\
form: lead
label: Lead
fields:
  - key: status
    type: select
    label: Status
    options: [new, done]
"""


def test_shorthands_the_loader_accepts_are_valid_in_the_schema(tmp_path: Path) -> None:
    """A plain string label and plain string options: the loader and the schema agree."""
    pack = tmp_path / "pack"
    (pack / "forms").mkdir(parents=True)
    (pack / "app.yaml").write_text("app: t\nlabel: Test\nversion: '1'\n", encoding="utf-8")
    (pack / "forms" / "lead.yaml").write_text(SHORTHAND_FORM, encoding="utf-8")
    load_pack(pack)
    assert messages("app", read_yaml(pack / "app.yaml")) == []
    assert messages("form", read_yaml(pack / "forms" / "lead.yaml")) == []
