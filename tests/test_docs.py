"""The language reference documents everything the code accepts (fails on anything undocumented).

Each field type needs a heading ``### `type` ``; every key of every definition model
and every list-filter operator must appear in inline code somewhere in the reference.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from runtime.model import App, Field, Form, Labels, ListView, Option, Section
from runtime.model.fields import FIELD_TYPES
from runtime.records.query import OPERATORS

DOC = Path(__file__).resolve().parent.parent / "docs" / "definitions.md"
FENCED = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _inline_code() -> set[str]:
    """Every inline code span outside fenced blocks, so keys are explained in prose or tables."""
    return set(INLINE.findall(FENCED.sub("", _text())))


def _headings() -> set[str]:
    return {line.rstrip() for line in _text().splitlines() if line.startswith("#")}


def field_models() -> list[type[BaseModel]]:
    """The model class of each field type, taken from the `Field` union."""
    union = typing.get_args(Field)[0]
    return list(typing.get_args(union))


def model_keys() -> list[tuple[str, str]]:
    """(model name, key) for every key the definition models accept, aliases used when set."""
    models: list[type[BaseModel]] = [App, Form, Section, ListView, Labels, Option, *field_models()]
    pairs = []
    for model in models:
        for name, info in model.model_fields.items():
            pairs.append((model.__name__, info.alias or name))
    return pairs


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
