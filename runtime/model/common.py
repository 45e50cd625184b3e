"""Building blocks shared by the definition model: identifiers, labels, strict models."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

IDENTIFIER_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
MAX_IDENTIFIER = 40

# Column names Formloom adds to every table, and query parameters of the list API.
SYSTEM_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "version",
    "parent_id",
    "position",
    "merged_into",
)
QUERY_PARAMETERS = ("limit", "offset", "sort", "where", "count", "allow_duplicate", "fields")
RESERVED_NAMES = frozenset(SYSTEM_COLUMNS + QUERY_PARAMETERS)


def check_identifier(value: str) -> str:
    """Accept lowercase snake_case keys of at most 40 characters that are not reserved."""
    if len(value) > MAX_IDENTIFIER or not IDENTIFIER_RE.match(value):
        raise PydanticCustomError(
            "identifier",
            "invalid identifier '{value}': use lowercase letters, digits and single underscores, "
            "start with a letter, at most 40 characters",
            {"value": value},
        )
    if value in RESERVED_NAMES:
        raise PydanticCustomError("reserved_name", "'{value}' is a reserved name", {"value": value})
    return value


Identifier = Annotated[str, AfterValidator(check_identifier)]


class Strict(BaseModel):
    """Base of every definition model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Labels(Strict):
    """A label in Chinese and English; at least one is given, the other falls back to it."""

    zh: str | None = Field(default=None, min_length=1, max_length=200)
    en: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_language(self) -> Labels:
        if self.zh is None and self.en is None:
            raise PydanticCustomError("label_empty", "a label needs 'zh' or 'en'")
        return self

    def text(self, language: str = "en") -> str:
        """The label in `language`, falling back to the other language."""
        chosen = self.zh if language == "zh" else self.en
        return chosen or self.en or self.zh or ""


def _label_from_text(value: object) -> object:
    return {"en": value} if isinstance(value, str) else value


# A label: `{zh: 线索, en: Lead}`, or plain text used for every language.
Label = Annotated[Labels, BeforeValidator(_label_from_text, json_schema_input_type=Labels | str)]
