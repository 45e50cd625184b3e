"""docs/scenarios.md documents every step and expectation kind and every key of the format
(read from the model, so a new kind fails here until it is written up), and the committed
JSON Schema is current and accepts the shipped scenario files.

Regenerate the schema with
    formloom schema scenario > docs/schema/scenario.schema.json
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from builder.cli import definition_schema
from builder.scenarios import model
from builder.scenarios.model import EXPECT_KINDS, STEP_KINDS, STEP_MODELS
from tests.builder.test_definition_schema import read_yaml
from tests.support import REPO

GUIDE = REPO / "docs" / "scenarios.md"
SCHEMA = REPO / "docs" / "schema" / "scenario.schema.json"
MODELS: list[type[BaseModel]] = [
    model.Suite,
    model.ScenarioHead,
    model.Department,
    model.Person,
    model.Expect,
    model.TaskItem,
    model.Sent,
    model.Webhook,
    model.DashboardRows,
    *STEP_MODELS.values(),
]
FENCED = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)


def headings() -> set[str]:
    return set(re.findall(r"^### `([^`]+)`", GUIDE.read_text(encoding="utf-8"), re.MULTILINE))


def inline_code() -> set[str]:
    prose = FENCED.sub("", GUIDE.read_text(encoding="utf-8"))
    return {span.split(":")[0].strip() for span in re.findall(r"`([^`\n]+)`", prose)}


@pytest.mark.parametrize("kind", STEP_KINDS)
def test_every_step_kind_has_a_section(kind: str) -> None:
    assert kind in headings(), f"docs/scenarios.md has no section '### `{kind}`' for the step kind"


@pytest.mark.parametrize("kind", [*EXPECT_KINDS, "record"])
def test_every_expectation_kind_has_a_section(kind: str) -> None:
    assert kind in headings(), f"docs/scenarios.md has no section '### `{kind}`' for the expectation"


def test_every_key_of_the_format_is_explained() -> None:
    documented = inline_code()
    missing = sorted(
        f"{m.__name__}.{field.alias or name}"
        for m in MODELS
        for name, field in m.model_fields.items()
        if (field.alias or name) not in documented
    )
    assert not missing, f"keys not in inline code (outside examples) in docs/scenarios.md: {missing}"


def test_the_committed_schema_is_current() -> None:
    generated = json.dumps(definition_schema("scenario"), indent=2, ensure_ascii=False) + "\n"
    assert SCHEMA.read_text(encoding="utf-8") == generated, (
        "docs/schema/scenario.schema.json is out of date: "
        "run `formloom schema scenario > docs/schema/scenario.schema.json`"
    )


SCENARIO_FILES = sorted(
    [*(REPO / "definitions").glob("*/tests/*.yaml"), *(REPO / "tests").rglob("scenarios/kinds/tests/*.yaml")]
)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_schema_accepts_the_shipped_scenarios(path: Path) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    found = Draft202012Validator(schema).iter_errors(read_yaml(path))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in found] == []


def test_the_schema_refuses_a_mistake() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    mistake = {"start": "2026-12-01", "scenarios": [{"name": "x", "steps": [{"creat": "lead"}]}]}
    assert list(Draft202012Validator(schema).iter_errors(mistake))
