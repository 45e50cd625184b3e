"""Field types of the definition language: one model per type, told apart by `type`."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, field_validator, model_validator
from pydantic import Field as Spec
from pydantic_core import PydanticCustomError

from runtime.model.common import Identifier, Label, Strict

OPTION_KEY = r"^[a-z0-9][a-z0-9_]*$"
# An expression: a formula, a condition, or a default that starts with "=".
Expression = Annotated[str, Spec(min_length=1, max_length=2000)]
DefaultExpression = Annotated[str, Spec(pattern=r"^\s*=", max_length=2001)]


def is_expression_default(value: object) -> bool:
    """True when a default is an expression (`"=TODAY()"`) rather than a literal value."""
    return isinstance(value, str) and value.lstrip().startswith("=")


# A department's key, as `formloom department create` was given it (60 characters at most).
DepartmentKey = Annotated[str, Spec(min_length=1, max_length=60)]
AUTO_NUMBER_TOKENS = re.compile(r"\{(YYYY|YY|MM|DD|#+)\}")


def _check_regex(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        re.compile(value)
    except re.error as exc:
        raise PydanticCustomError(
            "pattern_invalid", "invalid regular expression: {reason}", {"reason": str(exc)}
        ) from exc
    return value


class BaseField(Strict):
    """Options every field type has."""

    key: Identifier
    label: Label | None = None
    help: Label | None = None
    required: bool = False
    read_only: bool = False
    index: bool = False
    renamed_from: Identifier | None = None
    hidden_for: list[Identifier] = Spec(default_factory=list)
    read_only_for: list[Identifier] = Spec(default_factory=list)
    formula: Expression | None = None
    reveals_hidden: bool = False  # the formula or default may show what hidden fields hold, on purpose
    visible_when: Expression | None = None
    required_when: Expression | None = None
    # A value carried from the record (usually through a link): `opportunity.account`.
    fetch: Expression | None = None
    fetch_mode: Literal["follow", "default"] = "follow"

    def title(self, language: str = "en") -> str:
        """The label shown to users; the key when no label is given."""
        return self.label.text(language) if self.label else self.key.replace("_", " ")


class _TextBase(BaseField):
    unique: bool = False
    default: str | None = None
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return _check_regex(value)


class TextField(_TextBase):
    """One line of text."""

    type: Literal["text"]
    max_length: int = Spec(default=255, ge=1, le=10000)


class LongTextField(BaseField):
    """Several lines of text, no length limit unless given."""

    type: Literal["long_text"]
    default: str | None = None
    max_length: int | None = Spec(default=None, ge=1)


class EmailField(_TextBase):
    """An e-mail address, stored trimmed; checked for a valid shape."""

    type: Literal["email"]
    max_length: int = Spec(default=254, ge=6, le=254)


class PhoneField(_TextBase):
    """A phone number, stored in E.164 (`+8613800138000`)."""

    type: Literal["phone"]
    region: str | None = Spec(default=None, pattern=r"^[A-Z]{2}$")
    max_length: int = Spec(default=32, ge=8, le=32)


class UrlField(_TextBase):
    """An http or https address."""

    type: Literal["url"]
    max_length: int = Spec(default=2048, ge=10, le=2048)


class _NumberBase(BaseField):
    unique: bool = False


class IntegerField(_NumberBase):
    """A whole number (64-bit)."""

    type: Literal["integer"]
    default: int | DefaultExpression | None = None
    min: int | None = None
    max: int | None = None


class DecimalField(_NumberBase):
    """An exact decimal number with a precision (digits) and scale (after the point)."""

    type: Literal["decimal"]
    precision: int = Spec(default=18, ge=1, le=38)
    scale: int = Spec(default=4, ge=0, le=38)
    default: Decimal | DefaultExpression | None = None
    min: Decimal | None = None
    max: Decimal | None = None

    @model_validator(mode="after")
    def _scale_fits(self) -> DecimalField:
        if self.scale > self.precision:
            raise PydanticCustomError("scale", "scale must not exceed precision")
        return self


class MoneyField(_NumberBase):
    """An amount of money: 18 digits, 2 after the point, in the app's or the given currency."""

    type: Literal["money"]
    currency: str | None = Spec(default=None, pattern=r"^[A-Z]{3}$")
    default: Decimal | DefaultExpression | None = None
    min: Decimal | None = None
    max: Decimal | None = None


class PercentField(_NumberBase):
    """A percentage stored as a fraction: 0.35 means 35 %."""

    type: Literal["percent"]
    default: Decimal | DefaultExpression | None = None
    min: Decimal | None = None
    max: Decimal | None = None


class BooleanField(BaseField):
    """Yes or no."""

    type: Literal["boolean"]
    default: bool | DefaultExpression | None = None


class DateField(BaseField):
    """A calendar date."""

    type: Literal["date"]
    unique: bool = False
    default: dt.date | DefaultExpression | None = None
    min: dt.date | None = None
    max: dt.date | None = None


class DateTimeField(BaseField):
    """A moment in time, stored in UTC."""

    type: Literal["datetime"]
    default: dt.datetime | DefaultExpression | None = None
    min: dt.datetime | None = None
    max: dt.datetime | None = None

    @field_validator("default", "min", "max")
    @classmethod
    def _in_utc(cls, value: dt.datetime | str | None) -> dt.datetime | str | None:
        """A moment without an offset is taken as UTC, as the API does."""
        if value is None or isinstance(value, str):
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Option(Strict):
    """One choice of a select field."""

    key: str = Spec(pattern=OPTION_KEY, max_length=64)
    label: Label | None = None
    group: str | None = Spec(default=None, pattern=OPTION_KEY, max_length=64)


def _options_from_text(value: Any) -> Any:
    if isinstance(value, list):
        return [{"key": item} if isinstance(item, str) else item for item in value]
    return value


# Options: a list of `{key, label, group}`, or of plain keys.
Options = Annotated[
    list[Option],
    BeforeValidator(_options_from_text, json_schema_input_type=list[Option | str]),
    Spec(min_length=1),
]


class _ChoiceBase(BaseField):
    options: Options

    @field_validator("options")
    @classmethod
    def _distinct_keys(cls, value: list[Option]) -> list[Option]:
        keys = [option.key for option in value]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise PydanticCustomError(
                "option_repeated", "option '{key}' is listed twice", {"key": repeated[0]}
            )
        return value

    def option_keys(self) -> list[str]:
        """The stored values this field accepts, in order."""
        return [option.key for option in self.options]


class SelectField(_ChoiceBase):
    """One value from a fixed list of options."""

    type: Literal["select"]
    default: str | None = None


class MultiSelectField(_ChoiceBase):
    """Any number of values from a fixed list of options."""

    type: Literal["multi_select"]
    default: list[str] | None = None


class LinkField(BaseField):
    """A reference to a record of another form (a foreign key)."""

    type: Literal["link"]
    to: Identifier
    on_delete: Literal["restrict", "set_null"] = "restrict"
    unique: bool = False
    # A condition on the linked form's records: which ones the link accepts and offers.
    filter: Expression | None = None


class TableField(BaseField):
    """Child rows, each shaped by a child form; kept in order."""

    type: Literal["table"]
    form: Identifier


class UserField(BaseField):
    """A reference to a Formloom user, optionally limited to users of some roles or departments.

    `roles`: the user must hold one of them; `within`: the user must belong to one of these
    departments (by key) or a department below it. Both given: both must hold.
    """

    type: Literal["user"]
    default: Literal["current_user"] | None = None
    roles: list[Identifier] = Spec(default_factory=list)
    within: list[DepartmentKey] = Spec(default_factory=list)


class DepartmentField(BaseField):
    """A reference to a department of the org chart (`formloom_departments`)."""

    type: Literal["department"]
    default: Literal["current_user_department"] | None = None


class AutoNumberField(BaseField):
    """A number given on insert from a pattern such as `QT-{YYYY}-{#####}`; unique, gap-free."""

    type: Literal["auto_number"]
    pattern: str = Spec(max_length=60)

    @field_validator("pattern")
    @classmethod
    def _has_counter(cls, value: str) -> str:
        counters = [t for t in AUTO_NUMBER_TOKENS.findall(value) if t.startswith("#")]
        if len(counters) != 1:
            raise PydanticCustomError(
                "auto_number_pattern", "the pattern needs exactly one counter such as {#####}"
            )
        leftover = AUTO_NUMBER_TOKENS.sub("", value)
        if "{" in leftover or "}" in leftover:
            raise PydanticCustomError(
                "auto_number_pattern",
                "unknown token in pattern; use {YYYY}, {YY}, {MM}, {DD} and one {###…}",
            )
        return value


class AttachmentField(BaseField):
    """A file kept in Formloom's file store, with name, size, type and checksum."""

    type: Literal["attachment"]
    max_size: int | None = Spec(default=None, ge=1)
    accept: list[str] = Spec(default_factory=list)


Field = Annotated[
    TextField
    | LongTextField
    | EmailField
    | PhoneField
    | UrlField
    | IntegerField
    | DecimalField
    | MoneyField
    | PercentField
    | BooleanField
    | DateField
    | DateTimeField
    | SelectField
    | MultiSelectField
    | LinkField
    | TableField
    | UserField
    | DepartmentField
    | AutoNumberField
    | AttachmentField,
    Spec(discriminator="type"),
]

# The types of plain values: no reference to another record, user or file, nothing the system fills in.
VALUE_TYPES: tuple[str, ...] = (
    "text",
    "long_text",
    "email",
    "phone",
    "url",
    "integer",
    "decimal",
    "money",
    "percent",
    "boolean",
    "date",
    "datetime",
    "select",
    "multi_select",
)
FIELD_TYPES: tuple[str, ...] = (
    *VALUE_TYPES,
    "link",
    "table",
    "user",
    "department",
    "auto_number",
    "attachment",
)
NUMBER_TYPES = frozenset({"integer", "decimal", "money", "percent"})
# Types whose value can stand for a record (its title, shown for links).
TITLE_TYPES = frozenset(
    {"text", "long_text", "email", "phone", "url", "auto_number", "date", "datetime", "select"} | NUMBER_TYPES
)
