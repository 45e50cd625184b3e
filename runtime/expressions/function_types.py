"""The types of operators' operands and of function calls, for the expression checker.

Each function of the language has a rule here that takes the call and its arguments'
types and answers the call's type, or raises `ExpressionError` at the offending argument.
"""

from __future__ import annotations

from collections.abc import Callable

from runtime.expressions.syntax import Call, ExpressionError, Literal, Node
from runtime.expressions.types import BOOLEAN, DATE, DATETIME, DECIMAL, INTEGER, NULL, REF, TEXT, Type
from runtime.loading.problems import did_you_mean

ORDERED = {"integer", "decimal", "text", "date", "datetime"}


def literal_type(value: object) -> Type:
    import datetime as dt
    from decimal import Decimal

    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, Decimal):
        return DECIMAL
    if isinstance(value, dt.datetime):
        return DATETIME
    if isinstance(value, dt.date):
        return DATE
    return TEXT


def same_family(left: Type, right: Type) -> bool:
    if left.numeric and right.numeric:
        return True
    if left.kind == "ref" and right.kind in ("ref", "integer"):
        return True
    if right.kind == "ref" and left.kind == "integer":
        return True
    return left.kind == right.kind


def check_option(field_side: Node, value_side: Node) -> None:
    options = getattr(field_side.type, "options", None)
    if not options or not isinstance(value_side, Literal) or not isinstance(value_side.value, str):
        return
    value = value_side.value
    if value not in options:
        hint = did_you_mean(value, options)
        raise ExpressionError(
            f"'{value}' is not an option{hint}; options: {', '.join(options)}", value_side.pos
        )


def expect(kind: Type, wanted: Type, node: Node, where: str) -> None:
    if kind not in (wanted, NULL) and kind.kind != wanted.kind:
        article = "an" if str(wanted)[0] in "aeiou" else "a"
        raise ExpressionError(f"{where} needs {article} {wanted} value, not {kind}", node.pos)


def expect_number(kind: Type, node: Node, where: str) -> None:
    if not kind.numeric and kind != NULL:
        raise ExpressionError(f"{where} needs a number, not {kind}", node.pos)


def _common(node: Call, args: list[Type], nodes: list[Node]) -> Type:
    """The one type several values share (numbers widen to decimal; null fits anything)."""
    result = NULL
    for kind, arg in zip(args, nodes, strict=True):
        if kind == NULL:
            continue
        if result == NULL:
            result = Type(kind.kind, item=kind.item)
        elif result.numeric and kind.numeric:
            result = DECIMAL if DECIMAL.kind in (result.kind, kind.kind) else INTEGER
        elif not same_family(result, kind):
            raise ExpressionError(f"{node.name} mixes {result} and {kind} values", arg.pos)
    return result


def _if(node: Call, args: list[Type]) -> Type:
    expect(args[0], BOOLEAN, node.args[0], "IF's condition")
    return _common(node, args[1:], node.args[1:])


def _ifs(node: Call, args: list[Type]) -> Type:
    if len(args) % 2:
        raise ExpressionError("IFS takes pairs: condition, value, condition, value …", node.pos)
    for kind, arg in zip(args[::2], node.args[::2], strict=True):
        expect(kind, BOOLEAN, arg, "IFS's condition")
    return _common(node, args[1::2], node.args[1::2])


def _numbers(node: Call, args: list[Type]) -> Type:
    for kind, arg in zip(args, node.args, strict=True):
        expect_number(kind, arg, node.name)
    return _common(node, args, node.args) if node.name != "ABS" else (args[0] if args[0] != NULL else INTEGER)


def _minmax(node: Call, args: list[Type]) -> Type:
    result = _common(node, args, node.args)
    if result.kind not in ORDERED and result != NULL:
        raise ExpressionError(f"{node.name} needs numbers, text or dates, not {result}", node.pos)
    return result


MAX_ROUND_DIGITS = 10


def _round(node: Call, args: list[Type]) -> Type:
    expect_number(args[0], node.args[0], "ROUND")
    if len(args) == 2:
        digits = node.args[1]
        if (
            not isinstance(digits, Literal)
            or not isinstance(digits.value, int)
            or isinstance(digits.value, bool)
            or not 0 <= digits.value <= MAX_ROUND_DIGITS
        ):
            raise ExpressionError(
                f"ROUND's digits must be a whole number from 0 to {MAX_ROUND_DIGITS}", digits.pos
            )
    return INTEGER if args[0] == INTEGER else DECIMAL


def _text_args(node: Call, args: list[Type], result: Type, allow_integer: bool = False) -> Type:
    for kind, arg in zip(args, node.args, strict=True):
        if kind.kind == "integer" and allow_integer:
            continue
        expect(kind, TEXT, arg, node.name)
    return result


def _contains(node: Call, args: list[Type]) -> Type:
    if args[0].kind == "list":
        expect(args[1], TEXT, node.args[1], "CONTAINS")
        options = args[0].item.options if args[0].item else None
        if options and isinstance(node.args[1], Literal) and node.args[1].value not in options:
            raise ExpressionError(f"'{node.args[1].value}' is not an option", node.args[1].pos)
        return BOOLEAN
    return _text_args(node, args, BOOLEAN)


def _dates(node: Call, args: list[Type], result: Type) -> Type:
    for kind, arg in zip(args, node.args, strict=True):
        if kind not in (DATE, DATETIME, NULL):
            raise ExpressionError(f"{node.name} needs a date, not {kind}", arg.pos)
    return result


def _add_days(node: Call, args: list[Type]) -> Type:
    if args[0] not in (DATE, NULL):
        raise ExpressionError(f"ADD_DAYS needs a date, not {args[0]}", node.args[0].pos)
    expect(args[1], INTEGER, node.args[1], "ADD_DAYS's days")
    return DATE


def _moments(node: Call, args: list[Type], result: Type) -> Type:
    for kind, arg in zip(args, node.args, strict=False):
        if kind not in (DATETIME, NULL):
            raise ExpressionError(f"{node.name} needs a datetime, not {kind}", arg.pos)
    return result


def _days_only(node: Call, args: list[Type], result: Type) -> Type:
    for kind, arg in zip(args, node.args, strict=False):
        if kind not in (DATE, NULL):
            raise ExpressionError(f"{node.name} needs a date, not {kind}", arg.pos)
    return result


def _add_hours(node: Call, args: list[Type]) -> Type:
    _moments(node, args[:1], DATETIME)
    expect(args[1], INTEGER, node.args[1], "ADD_HOURS's hours")
    return DATETIME


def _add_workdays(node: Call, args: list[Type]) -> Type:
    _days_only(node, args[:1], DATE)
    expect(args[1], INTEGER, node.args[1], "ADD_WORKDAYS's days")
    return DATE


def _coalesce(node: Call, args: list[Type]) -> Type:
    return _common(node, args, node.args)


FUNCTIONS: dict[str, Callable[[Call, list[Type]], Type]] = {
    "IF": _if,
    "IFS": _ifs,
    "COALESCE": _coalesce,
    "IS_EMPTY": lambda node, args: BOOLEAN,
    "ROUND": _round,
    "ABS": _numbers,
    "MIN": _minmax,
    "MAX": _minmax,
    "LEN": lambda node, args: _text_args(node, args, INTEGER),
    "CONCAT": lambda node, args: _text_args(node, args, TEXT, allow_integer=True),
    "LOWER": lambda node, args: _text_args(node, args, TEXT),
    "UPPER": lambda node, args: _text_args(node, args, TEXT),
    "CONTAINS": _contains,
    "STARTS_WITH": lambda node, args: _text_args(node, args, BOOLEAN),
    "TODAY": lambda node, args: DATE,
    "NOW": lambda node, args: DATETIME,
    "CURRENT_USER": lambda node, args: REF,
    "DAYS_BETWEEN": lambda node, args: _dates(node, args, INTEGER),
    "ADD_DAYS": _add_days,
    "HOURS_BETWEEN": lambda node, args: _moments(node, args, INTEGER),
    "MINUTES_BETWEEN": lambda node, args: _moments(node, args, INTEGER),
    "ADD_HOURS": _add_hours,
    "WORKDAYS_BETWEEN": lambda node, args: _days_only(node, args, INTEGER),
    "ADD_WORKDAYS": _add_workdays,
    "YEAR": lambda node, args: _dates(node, args, INTEGER),
    "MONTH": lambda node, args: _dates(node, args, INTEGER),
}
