"""The language reference documents everything the code accepts (fails on anything undocumented).

Each field type needs a heading ``### `type` ``; every key of every definition model
and every list-filter operator must appear in inline code somewhere in the reference.
Every key of every process model (workflows, approvals, automations, effects,
recipients) must appear in inline code in the reference's section on them, and every
effect kind, trigger and approval mode in the guide, docs/processes.md. Likewise every
key of every dashboard model (dashboards, widgets, measures, dimensions, funnel stages)
must appear in the reference's section on dashboards, and every chart kind, aggregate
and date bucket in the guide, docs/dashboards.md. Every key of a document, in the section
on documents.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from runtime.model import (
    App,
    Backlink,
    Field,
    Form,
    Labels,
    ListView,
    MakeAction,
    Option,
    RelatedList,
    Section,
)
from runtime.model.calendar import Calendar
from runtime.model.dashboard import AGGREGATES, BUCKETS, CHARTS, Dashboard, Dimension, Measure, Stage, Widget
from runtime.model.document import Document
from runtime.model.fields import FIELD_TYPES
from runtime.model.intake import Intake
from runtime.model.process import (
    EFFECT_KINDS,
    TRIGGERS,
    Approval,
    ApprovalStep,
    AssignSpec,
    Automation,
    ChildCopy,
    CreateSpec,
    DocumentSpec,
    Effect,
    EmailAddress,
    EmailSpec,
    NotifySpec,
    Recipient,
    Repeat,
    State,
    Timer,
    Transition,
    WebhookSpec,
    Workflow,
)
from runtime.records.query import OPERATORS

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "definitions.md"
GUIDE = DOCS / "processes.md"
DASHBOARD_GUIDE = DOCS / "dashboards.md"
PROCESS_SECTION = "## 7. Workflows, approvals and automations"
PROCESS_MODELS: list[type[BaseModel]] = [
    Workflow,
    State,
    Transition,
    Timer,
    Repeat,
    Approval,
    ApprovalStep,
    Automation,
    Effect,
    CreateSpec,
    ChildCopy,
    NotifySpec,
    WebhookSpec,
    AssignSpec,
    DocumentSpec,
    EmailSpec,
    EmailAddress,
    Recipient,
]
DASHBOARD_SECTION = "## 8. Dashboards"
DASHBOARD_MODELS: list[type[BaseModel]] = [Dashboard, Widget, Measure, Dimension, Stage]
DOCUMENT_SECTION = "## 9. Documents"
FENCED = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _inline_code(text: str | None = None) -> set[str]:
    """Every inline code span outside fenced blocks, so keys are explained in prose or tables."""
    return set(INLINE.findall(FENCED.sub("", _text() if text is None else text)))


def _section(heading: str) -> str:
    """The text of one `## ` section of the reference, up to the next one."""
    text = _text()
    start = text.find(f"\n{heading}\n")
    assert start >= 0, f"docs/definitions.md needs the section: {heading}"
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _headings() -> set[str]:
    return {line.rstrip() for line in _text().splitlines() if line.startswith("#")}


def field_models() -> list[type[BaseModel]]:
    """The model class of each field type, taken from the `Field` union."""
    union = typing.get_args(Field)[0]
    return list(typing.get_args(union))


def keys_of(models: list[type[BaseModel]]) -> list[tuple[str, str]]:
    """(model name, key) for every key the models accept, aliases used when set."""
    pairs = []
    for model in models:
        for name, info in model.model_fields.items():
            pairs.append((model.__name__, info.alias or name))
    return pairs


def model_keys() -> list[tuple[str, str]]:
    """(model name, key) for every key the definition models accept, aliases used when set."""
    models: list[type[BaseModel]] = [App, Calendar, Form, Section, RelatedList, MakeAction, Backlink]
    models += [ListView, Labels, Option, Intake]
    return keys_of([*models, *field_models()])


def approval_modes() -> list[str]:
    """The modes an approval step accepts, from its `mode` annotation."""
    return list(typing.get_args(ApprovalStep.model_fields["mode"].annotation))


def test_doc_exists() -> None:
    assert DOC.is_file(), f"{DOC} is missing"


def test_field_union_matches_field_types() -> None:
    tags = []
    for model in field_models():
        (tag,) = typing.get_args(model.model_fields["type"].annotation)
        tags.append(tag)
    assert sorted(tags) == sorted(FIELD_TYPES)


@pytest.mark.parametrize("kind", FIELD_TYPES)
def test_field_type_has_heading(kind: str) -> None:
    heading = f"### `{kind}`"
    assert heading in _headings(), f"docs/definitions.md needs the heading: {heading}"


@pytest.mark.parametrize(("model", "key"), model_keys(), ids=lambda v: str(v))
def test_model_key_documented(model: str, key: str) -> None:
    assert key in _inline_code(), f"key `{key}` of {model} is not mentioned in backticks"


@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_operator_documented(op: str) -> None:
    assert op in _inline_code(), f"list operator `{op}` is not mentioned in backticks"


@pytest.mark.parametrize(("model", "key"), keys_of(PROCESS_MODELS), ids=lambda v: str(v))
def test_process_key_documented(model: str, key: str) -> None:
    section = _inline_code(_section(PROCESS_SECTION))
    assert key in section, f"key `{key}` of {model} is not in backticks in '{PROCESS_SECTION}'"


@pytest.mark.parametrize("name", [*EFFECT_KINDS, *TRIGGERS, *approval_modes()], ids=lambda v: str(v))
def test_process_kind_in_guide(name: str) -> None:
    assert GUIDE.is_file(), f"{GUIDE} is missing"
    guide = _inline_code(GUIDE.read_text(encoding="utf-8"))
    assert name in guide, f"`{name}` (effect kind, trigger or approval mode) is not in docs/processes.md"


@pytest.mark.parametrize(("model", "key"), keys_of(DASHBOARD_MODELS), ids=lambda v: str(v))
def test_dashboard_key_documented(model: str, key: str) -> None:
    section = _inline_code(_section(DASHBOARD_SECTION))
    assert key in section, f"key `{key}` of {model} is not in backticks in '{DASHBOARD_SECTION}'"


@pytest.mark.parametrize(("model", "key"), keys_of([Document]), ids=lambda v: str(v))
def test_document_key_documented(model: str, key: str) -> None:
    section = _inline_code(_section(DOCUMENT_SECTION))
    assert key in section, f"key `{key}` of {model} is not in backticks in '{DOCUMENT_SECTION}'"


def test_literal_choices_match_the_model() -> None:
    """The chart kinds, aggregates and buckets the guide is checked for are the ones the models accept."""
    choices = ((Widget, "chart", CHARTS), (Measure, "agg", AGGREGATES), (Dimension, "bucket", BUCKETS))
    for model, key, names in choices:
        annotation = model.model_fields[key].annotation
        literal = next((a for a in typing.get_args(annotation) if typing.get_args(a)), annotation)
        assert sorted(typing.get_args(literal)) == sorted(names), (model.__name__, key)


@pytest.mark.parametrize("name", [*CHARTS, *AGGREGATES, *BUCKETS], ids=lambda v: str(v))
def test_dashboard_kind_in_guide(name: str) -> None:
    assert DASHBOARD_GUIDE.is_file(), f"{DASHBOARD_GUIDE} is missing"
    guide = _inline_code(DASHBOARD_GUIDE.read_text(encoding="utf-8"))
    assert name in guide, f"`{name}` (chart kind, aggregate or bucket) is not in docs/dashboards.md"
