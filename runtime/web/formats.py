"""Values as people read them: money in its currency, percentages, option labels, local times.

Numbers and money are formatted with Babel for the user's language (`¥1,234.50`,
`35%`); datetimes are shown in the app's time zone; links and users show their display
name. Every function answers plain text, which the templates escape.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.numbers import NumberPattern, parse_pattern

LOCALES = {"zh": "zh_CN", "en": "en_US"}
PATTERNS = {"percent": "#,##0.##%", "integer": "#,##0", "decimal": "#,##0.####"}


def locale_of(language: str) -> str:
    """The Babel locale of an interface language."""
    return LOCALES.get(language, "zh_CN")


def option_label(spec: Any, key: Any, language: str) -> str:
    """The label of one option of a select field (the key when it is unknown)."""
    for option in getattr(spec, "options", []):
        if option.key == key:
            return str(option.label.text(language)) if option.label else str(option.key)
    return str(key)


def display(spec: Any, value: Any, language: str, currency: str, zone: ZoneInfo) -> str:
    """A stored (API-shaped) value of a field as text for people."""
    if value is None or value == "" or value == []:
        return ""
    kind = spec.type
    if kind in ("link", "user", "department"):
        return str(value.get("display") or value.get("id")) if isinstance(value, dict) else str(value)
    if kind == "attachment":
        return str(value.get("name", "")) if isinstance(value, dict) else str(value)
    if kind == "select":
        return option_label(spec, value, language)
    if kind == "multi_select":
        return ", ".join(option_label(spec, item, language) for item in value)
    if kind == "boolean":
        return (
            {"zh": "是", "en": "Yes"}[_lang(language)] if value else {"zh": "否", "en": "No"}[_lang(language)]
        )
    if kind in ("money", "percent", "decimal", "integer"):
        return number(kind, value, language, spec_currency(spec, currency))
    if kind == "datetime":
        return local_time(value, zone)
    return str(value)


def record_title(record: dict[str, Any], title_field: str) -> str:
    """What a record is called: its title field (a link's display name), else `#id`."""
    value = record.get(title_field)
    if isinstance(value, dict):
        value = value.get("display")
    return str(value) if value not in (None, "") else f"#{record['id']}"


def number(kind: str, value: Any, language: str, currency: str) -> str:
    """A number of a field type: money with its currency sign, percent as `35%`."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    locale = _locale(language)
    if kind == "money":
        return str(locale.currency_formats["standard"].apply(amount, locale, currency=currency))
    return str(_pattern(PATTERNS.get(kind, PATTERNS["decimal"])).apply(amount, locale))


@cache
def _locale(language: str) -> Locale:
    """Babel's locale of a language, parsed once (formatting runs for every cell of a list)."""
    return Locale.parse(locale_of(language))


@cache
def _pattern(pattern: str) -> NumberPattern:
    return parse_pattern(pattern)


def spec_currency(spec: Any, app_currency: str) -> str:
    """A money field's own currency, else the app's."""
    return str(getattr(spec, "currency", None) or app_currency)


def local_time(value: Any, zone: ZoneInfo) -> str:
    """An ISO datetime (UTC) as `YYYY-MM-DD HH:MM` in the app's time zone."""
    moment = value if isinstance(value, dt.datetime) else _parse(str(value))
    if moment is None:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def input_time(value: Any, zone: ZoneInfo) -> str:
    """An ISO datetime as the value of a `datetime-local` input, in the app's time zone."""
    text = local_time(value, zone) if value else ""
    return text.replace(" ", "T")


def _parse(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _lang(language: str) -> str:
    return "en" if language == "en" else "zh"
