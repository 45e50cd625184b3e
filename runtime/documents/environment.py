"""The sandboxed Jinja2 environment documents are rendered in, with its filters.

Templates come from the pack (`documents/*.j2`, held in the app's `document_templates`)
and from Formloom (`formloom/base.html.j2`, the page frame with the default stylesheet).
The environment is a `SandboxedEnvironment` with autoescaping on: a template reads the
values it is given and calls the filters below, nothing else, and every value a record
holds is escaped. The loader compiles every template in the same environment, so a
syntax error or an unknown filter is reported at load as `file:line:col`.

Filters (they follow the document's language, set in the context as `language`):
`money(currency=None)`, `number`, `percent`, `date`, `datetime`, `paragraphs` (text
with line breaks as escaped paragraphs) and `chinese_amount` (an amount in capital
Chinese numerals, 人民币大写, as contracts and invoices write it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from jinja2 import BaseLoader, ChainableUndefined, ChoiceLoader, DictLoader, FileSystemLoader, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from runtime.web.formats import local_time, locale_of, number

BUILT_IN = Path(__file__).resolve().parent / "templates"
BASE_TEMPLATE = "formloom/base.html.j2"
BUILT_IN_TEMPLATES = (BASE_TEMPLATE,)
BLANK_LINES = re.compile(r"\n[ \t]*\n")


def environment(templates: Mapping[str, str]) -> SandboxedEnvironment:
    """An environment whose templates are the pack's (by file name) and Formloom's own."""
    loaders: list[BaseLoader] = [DictLoader(dict(templates)), FileSystemLoader(BUILT_IN)]
    env = SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=ChainableUndefined,  # a hidden field, or a link not set, renders as nothing
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def _language(context: Context) -> str:
    found = context.get("language")
    return found if found in ("zh", "en") else "zh"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@pass_context
def money(context: Context, value: Any, currency: str | None = None) -> str:
    """An amount with its currency sign in the document's language: `¥1,234.50`."""
    amount = _decimal(value)
    if amount is None:
        return "" if value is None else str(value)
    app = context.get("app")
    code = currency or (app.get("currency") if isinstance(app, Mapping) else None) or "CNY"
    return number("money", amount, _language(context), str(code))


@pass_context
def plain_number(context: Context, value: Any) -> str:
    """A number with grouped thousands: `12,000.5`."""
    amount = _decimal(value)
    return number("decimal", amount, _language(context), "CNY") if amount is not None else ""


@pass_context
def percent(context: Context, value: Any) -> str:
    """A fraction as a percentage: `0.35` → `35%`."""
    amount = _decimal(value)
    return number("percent", amount, _language(context), "CNY") if amount is not None else ""


@pass_context
def long_date(context: Context, value: Any) -> str:
    """A date (or ISO text) written out: `2026年12月1日`, `December 1, 2026`."""
    day = _as_date(value)
    if day is None:
        return "" if value is None else str(value)
    return str(format_date(day, "long", locale=locale_of(_language(context))))


@pass_context
def local_datetime(context: Context, value: Any) -> str:
    """A datetime (ISO text, UTC) at the app's local time: `2026-12-01 09:00`."""
    if value is None or value == "":
        return ""
    app = context.get("app")
    zone = app.get("timezone") if isinstance(app, Mapping) else None
    return local_time(value, ZoneInfo(str(zone or "UTC")))


def paragraphs(value: Any) -> Markup:
    """Text as escaped paragraphs, one per block of lines, with line breaks kept."""
    if value is None or value == "":
        return Markup("")
    blocks = [b.strip("\n") for b in BLANK_LINES.split(str(value).replace("\r\n", "\n")) if b.strip()]
    shown = (Markup("<p>{}</p>").format(Markup("<br>").join(map(escape, b.split("\n")))) for b in blocks)
    return Markup("").join(shown)


DIGITS = "零壹贰叁肆伍陆柒捌玖"
SMALL_UNITS = ("", "拾", "佰", "仟")
BIG_UNITS = ("", "万", "亿", "万亿")


def chinese_amount(value: Any) -> str:
    """An amount in capital Chinese numerals: `12345.6` → `壹万贰仟叁佰肆拾伍元陆角`."""
    amount = _decimal(value)
    if amount is None:
        return ""
    sign = "负" if amount < 0 else ""
    cents = int((abs(amount) * 100).quantize(Decimal("1"), rounding="ROUND_HALF_UP"))
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    if yuan >= 10**16:
        return str(value)
    text = _integer_words(yuan) + "元" if yuan else ""
    if not jiao and not fen:
        return sign + (text or "零元") + "整"
    if jiao:
        text += DIGITS[jiao] + "角"
    elif yuan:
        text += "零"
    if fen:
        text += DIGITS[fen] + "分"
    return sign + text


def _integer_words(value: int) -> str:
    groups: list[int] = []
    while value:
        groups.append(value % 10000)
        value //= 10000
    words = ""
    zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero = bool(words)
            continue
        if words and (zero or group < 1000):
            words += "零"
        words += _group_words(group) + BIG_UNITS[index]
        zero = False
    return words


def _group_words(group: int) -> str:
    words = ""
    zero = False
    for position in range(3, -1, -1):
        digit = group // 10**position % 10
        if digit == 0:
            zero = bool(words)
            continue
        if zero:
            words += "零"
            zero = False
        words += DIGITS[digit] + SMALL_UNITS[position]
    return words


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


FILTERS: dict[str, Any] = {
    "money": money,
    "number": plain_number,
    "percent": percent,
    "date": long_date,
    "datetime": local_datetime,
    "paragraphs": paragraphs,
    "chinese_amount": chinese_amount,
}


@cache
def checking_environment() -> SandboxedEnvironment:
    """An environment to compile templates in when a pack loads (no pack templates in it)."""
    return environment({})
