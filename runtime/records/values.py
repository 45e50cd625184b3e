"""Convert one input value to what a field stores, or say precisely why not."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from runtime.model import App
from runtime.model.fields import NUMBER_TYPES
from runtime.records.text import BAD_TEXT_MESSAGE, storable
from runtime.schema.tables import MONEY, PERCENT

Converter = Callable[[Any], Any]
WIDE = Context(prec=100)
SQLITE_EXACT_DIGITS = 15


class ValueProblem(Exception):
    """A value a field cannot take: `code` names the rule, the message explains it."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def converter_for(app: App, spec: Any, exact_digits: int | None = None) -> Converter:
    """A function turning input into the stored value (None stays None).

    `exact_digits` caps the significant digits of decimals where the database keeps
    no more (SQLite stores them as 64-bit floats): a longer value is refused, not rounded.
    """
    kind = spec.type
    base: Converter
    if kind in ("text", "long_text", "auto_number"):
        base = _text
    elif kind == "email":
        base = _email
    elif kind == "phone":
        base = _phone_parser(spec.region or app.default_region)
    elif kind == "url":
        base = _url
    elif kind == "integer":
        base = _integer
    elif kind in NUMBER_TYPES:
        base = _decimal_parser(*_precision(spec), exact_digits)
    elif kind == "boolean":
        base = _boolean
    elif kind == "date":
        base = parse_date
    elif kind == "datetime":
        base = parse_datetime
    elif kind == "select":
        base = _choice_parser(spec.option_keys())
    elif kind == "multi_select":
        base = _choices_parser(spec.option_keys())
    elif kind in ("link", "user", "department"):
        base = parse_reference
    elif kind == "attachment":
        base = parse_file_reference
    else:
        raise ValueError(f"no converter for field type {kind!r}")
    return _with_limits(base, spec)


def _precision(spec: Any) -> tuple[int, int]:
    if spec.type == "decimal":
        return spec.precision, spec.scale
    return MONEY if spec.type == "money" else PERCENT


def _with_limits(base: Converter, spec: Any) -> Converter:
    checks = _limit_checks(spec)

    def convert(value: Any) -> Any:
        if value is None:
            return None
        result = base(value)
        if result is None:
            return None
        for check in checks:
            check(result)
        return result

    return convert


def _limit_checks(spec: Any) -> list[Callable[[Any], None]]:
    checks: list[Callable[[Any], None]] = []
    low, high = getattr(spec, "min", None), getattr(spec, "max", None)
    if low is not None:
        checks.append(_at_least(low))
    if high is not None:
        checks.append(_at_most(high))
    limit = getattr(spec, "max_length", None)
    if limit is not None:
        checks.append(_shorter_than(limit))
    pattern = getattr(spec, "pattern", None)
    if pattern is not None:
        checks.append(_matching(re.compile(pattern)))
    return checks


def _at_least(low: Any) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value < low:
            raise ValueProblem("min", f"must be at least {low}")

    return check


def _at_most(high: Any) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value > high:
            raise ValueProblem("max", f"must be at most {high}")

    return check


def _shorter_than(limit: int) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if len(value) > limit:
            raise ValueProblem("max_length", f"must be at most {limit} characters")

    return check


def _matching(regex: re.Pattern[str]) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not regex.fullmatch(value):
            raise ValueProblem("pattern", f"must match the pattern {regex.pattern}")

    return check


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        raise ValueProblem("type", "must be text")
    if not storable(value):
        raise ValueProblem("invalid", BAD_TEXT_MESSAGE)
    stripped = value.strip()
    return stripped or None


def _email(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueProblem("invalid", f"is not a valid e-mail address: {exc}") from exc
    return str(checked.normalized).lower()


def _phone_parser(region: str) -> Converter:
    def parse(value: Any) -> str | None:
        text = _text(value)
        if text is None:
            return None
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as exc:
            raise ValueProblem("invalid", f"is not a phone number: {exc}") from exc
        if not phonenumbers.is_valid_number(number):
            raise ValueProblem("invalid", f"is not a valid phone number for region {region}")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    return parse


def _url(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
        raise ValueProblem("invalid", "must be an http or https address")
    return text


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        raise ValueProblem("type", "must be a whole number")
    if isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]{1,19}\s*", value)
    ):
        number = int(value)
    elif isinstance(value, str) and not value.strip():
        return None
    else:
        raise ValueProblem("type", "must be a whole number")
    if not -(2**63) <= number < 2**63:
        raise ValueProblem("max", "is out of range for a 64-bit integer")
    return number


def _decimal_parser(precision: int, scale: int, exact_digits: int | None = None) -> Converter:
    limit = Decimal(10) ** (precision - scale)
    step = Decimal(1).scaleb(-scale)

    def parse(value: Any) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValueProblem("type", "must be a number")
        if isinstance(value, str) and not value.strip():
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueProblem("type", "must be a number") from exc
        if not number.is_finite():
            raise ValueProblem("type", "must be a finite number")
        if abs(number) >= limit:
            raise ValueProblem("max", f"must have at most {precision - scale} digits before the point")
        with localcontext(WIDE):
            rounded = number.quantize(step)
        if rounded != number:
            raise ValueProblem("scale", f"must have at most {scale} digits after the point")
        if exact_digits is not None and len(rounded.normalize().as_tuple().digits) > exact_digits:
            raise ValueProblem(
                "precision", f"this database keeps at most {exact_digits} significant digits exactly"
            )
        return rounded

    return parse


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueProblem("type", "must be true or false")
    return value


def parse_date(value: Any) -> dt.date | None:
    """An ISO date (`2026-11-28`)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
        raise ValueProblem("type", "must be a date written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueProblem("invalid", f"is not a valid date: {exc}") from exc


# A moment every time zone can show: a day inside the calendar's ends (exports and pages
# show datetimes in the app's zone, up to 14 hours off UTC).
EARLIEST_MOMENT = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
LATEST_MOMENT = dt.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)


def parse_datetime(value: Any) -> dt.datetime | None:
    """An ISO 8601 date and time; without an offset it is taken as UTC. Returned in UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and re.fullmatch(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.+\-Z]+", value.strip()
    ):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueProblem("invalid", f"is not a valid date and time: {exc}") from exc
    else:
        raise ValueProblem("type", "must be a date and time such as 2026-11-28T09:30:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is in the year 0 in UTC
        moment = EARLIEST_MOMENT - dt.timedelta(days=1)
    if not EARLIEST_MOMENT <= moment <= LATEST_MOMENT:
        raise ValueProblem(
            "invalid", "must be from 0001-01-02 to 9999-12-30 (UTC), to be shown in any time zone"
        )
    return moment


def _choice_parser(keys: list[str]) -> Converter:
    allowed = set(keys)

    def parse(value: Any) -> str | None:
        if not isinstance(value, str):
            raise ValueProblem("type", "must be one of the options")
        if value == "":
            return None
        if value not in allowed:
            raise ValueProblem("option", f"'{value[:64]}' is not an option; choose from {keys}")
        return value

    return parse


def _choices_parser(keys: list[str]) -> Converter:
    allowed = set(keys)

    def parse(value: Any) -> list[str] | None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueProblem("type", "must be a list of options")
        if not value:
            return None
        wrong = [v for v in value if v not in allowed]
        if wrong:
            raise ValueProblem("option", f"{wrong[:5]} are not options; choose from {keys}")
        chosen = set(value)
        return [k for k in keys if k in chosen]

    return parse


def parse_reference(value: Any) -> int:
    """A record id, given as a number or as `{"id": n}` (the shape the API returns)."""
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ValueProblem("type", "must be a record id (a positive whole number)")
    return value


FILE_ID = re.compile(r"[A-Za-z0-9_-]{16,32}")


def parse_file_reference(value: Any) -> str | int:
    """A file, named by the public id an upload answered (`"id"` or `{"id": "…"}`).

    A whole number is the file's internal id: only the process engine and system callers
    (imports, demo data) may use it, which the records service checks
    (`runtime.records.file_access`); it also turns public ids into internal ones.
    """
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    if isinstance(value, str) and FILE_ID.fullmatch(value):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    raise ValueProblem("type", "must be a file id (the id an upload answered)")
