"""Compile a checked expression into nested Python closures (no tree walk at run time).

The record is a dict of field values as stored (str, int, Decimal, bool, date,
aware datetime, list). Linked values come as `"link.field"` keys, fields of single
forms as `"@form.field"` keys, child rows as a list of dicts under the table field's key
(the records of a backlink likewise, under the backlink's key), the rows of a linked
record's table field (for LOOKUP) under `"link.table"`, and the outer record of a link
filter as `"^record.field"` / `"^parent.field"`. Null semantics follow SQL:
comparisons with null give null, `and`/`or` use three-valued logic, and a
null condition counts as false.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from runtime.expressions.checker import Checked
from runtime.expressions.python_functions import ARITHMETIC, ON_CALENDAR, STRICT
from runtime.expressions.syntax import Binary, Call, Literal, Membership, Name, Node, Unary
from runtime.expressions.types import NULL
from runtime.model.calendar import Calendar

Record = dict[str, Any]
# The user a write is made for; the records service sets it around each request.
CURRENT_USER: ContextVar[int | None] = ContextVar("formloom_current_user", default=None)
Evaluator = Callable[[Record], Any]
Clock = Callable[[], dt.datetime]


def to_python(
    checked: Checked, clock: Clock, zone: dt.tzinfo = dt.UTC, calendar: Calendar | None = None
) -> Evaluator:
    """A function from a record dict to the expression's value (`calendar`: the app's working days)."""
    return _Compiler(clock, zone, calendar or Calendar()).compile(checked.node)


class _Compiler:
    def __init__(self, clock: Clock, zone: dt.tzinfo, calendar: Calendar) -> None:
        self.clock = clock
        self.zone = zone
        self.calendar = calendar

    def compile(self, node: Node) -> Evaluator:
        if isinstance(node, Literal):
            value = node.value
            return lambda r: value
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Membership):
            return self.membership(node)
        assert isinstance(node, Call)
        return self.call(node)

    def name(self, node: Name) -> Evaluator:
        key = record_key(node)
        return lambda r: r.get(key)

    def unary(self, node: Unary) -> Evaluator:
        inner = self.compile(node.operand)
        if node.op == "+":
            return inner
        if node.op == "-":
            return lambda r: None if (v := inner(r)) is None else -v
        return lambda r: None if (v := inner(r)) is None else not v

    def binary(self, node: Binary) -> Evaluator:
        op = node.op
        if op in ("==", "!=") and NULL in (node.left.type, node.right.type):
            other = self.compile(node.right if node.left.type == NULL else node.left)
            if op == "==":
                return lambda r: other(r) is None
            return lambda r: other(r) is not None
        if op == "and" or op == "or":
            left, right = self.compile(node.left), self.compile(node.right)
            join = _and if op == "and" else _or
            return lambda r: join(left(r), right, r)
        return _strict_binary(_BINARY[op], self.operand(node.left), self.operand(node.right))

    def operand(self, node: Node) -> tuple[str, Any]:
        """How to read an operand: a constant, a field key, or a compiled function."""
        if isinstance(node, Literal):
            return "const", node.value
        if isinstance(node, Name):
            return "field", record_key(node)
        return "call", self.compile(node)

    def membership(self, node: Membership) -> Evaluator:
        operand = self.compile(node.operand)
        items = [self.compile(item) for item in node.items]
        negated = node.negated

        def apply(r: Record) -> bool | None:
            value = operand(r)
            if value is None:
                return None
            values = [item(r) for item in items]
            if value in values:
                return not negated
            if None in values:
                return None
            return negated

        return apply

    def call(self, node: Call) -> Evaluator:
        if node.aggregate:
            return self.aggregate(node)
        if node.name == "LOOKUP":
            return self.lookup(node)
        args = [self.compile(arg) for arg in node.args]
        name = node.name
        if name == "TODAY":
            clock, zone = self.clock, self.zone
            return lambda r: clock().astimezone(zone).date()
        if name == "NOW":
            clock = self.clock
            return lambda r: clock()
        if name == "CURRENT_USER":
            return lambda r: CURRENT_USER.get()
        if name in ON_CALENDAR:
            on_calendar, calendar = ON_CALENDAR[name], self.calendar
            first, second = args
            return lambda r: (
                None if (a := first(r)) is None or (b := second(r)) is None else on_calendar(a, b, calendar)
            )
        if name in _LAZY:
            constants = [_constant(arg) for arg in node.args]
            return _LAZY[name](args, constants)
        function = STRICT[name]
        if len(args) == 1:
            only = args[0]
            return lambda r: None if (v := only(r)) is None else function(v)
        if len(args) == 2:
            return _strict_binary(function, self.operand(node.args[0]), self.operand(node.args[1]))

        def apply(r: Record) -> Any:
            values = [arg(r) for arg in args]
            return None if None in values else function(*values)

        return apply

    def aggregate(self, node: Call) -> Evaluator:
        """An aggregate over the rows under `record[table]` (a table field's rows, or the
        records of a backlink), those the WHERE condition holds for when there is one."""
        arg = node.args[0]
        assert isinstance(arg, Name)
        table = arg.ref[1]
        column = arg.ref[2] if len(arg.ref) > 2 else None
        reduce = _AGGREGATES[node.name]
        keep = self.compile(node.where) if node.where is not None else None

        def rows(r: Record) -> list[Record]:
            found: list[Record] = r.get(table) or []
            return found if keep is None else [row for row in found if keep(row) is True]

        if column is None:
            return lambda r: len(rows(r))

        def apply(r: Record) -> Any:
            values = [row.get(column) for row in rows(r)]
            return reduce([v for v in values if v is not None])

        return apply

    def lookup(self, node: Call) -> Evaluator:
        """The result column of the row with the greatest key not above the value (the
        first such row in row order when keys tie); null when there is none."""
        wanted = self.compile(node.args[0])
        key_name, result_name = node.args[1], node.args[2]
        assert isinstance(key_name, Name) and isinstance(result_name, Name)
        rows_key = rows_record_key(key_name)
        key, result = key_name.ref[-1], result_name.ref[-1]

        def apply(r: Record) -> Any:
            value = wanted(r)
            if value is None:
                return None
            best: Record | None = None
            best_key: Any = None
            for row in r.get(rows_key) or []:
                found = row.get(key)
                if found is None or found > value:
                    continue
                if best is None or found > best_key:
                    best, best_key = row, found
            return None if best is None else best.get(result)

        return apply


def rows_record_key(node: Name) -> str:
    """Where the rows a LOOKUP column reads are: `table`, or `link.table` for a linked record."""
    if node.ref[0] == "link_child":
        return f"{node.ref[1]}.{node.ref[2]}"
    return str(node.ref[1])


def record_key(node: Name) -> str:
    """The key a name is read from in the record: `field`, `link.field`, `@single.field`, or
    `^record.field` for the outer record of a link filter."""
    kind = node.ref[0]
    if kind == "field":
        return node.ref[1]
    if kind in ("link", "single"):
        return f"{'@' if kind == 'single' else ''}{node.ref[1]}.{node.ref[2]}"
    if kind == "outer":
        return f"^{node.ref[1]}.{node.ref[2]}"
    raise AssertionError("child columns are read by aggregates")


def _and(a: Any, right: Evaluator, r: Record) -> bool | None:
    if a is False:
        return False
    b = right(r)
    if b is False:
        return False
    return None if a is None or b is None else True


def _or(a: Any, right: Evaluator, r: Record) -> bool | None:
    if a is True:
        return True
    b = right(r)
    if b is True:
        return True
    return None if a is None or b is None else False


def _divide(a: Any, b: Any) -> Decimal | None:
    if b == 0:
        return None
    return ARITHMETIC.divide(Decimal(a), Decimal(b))


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _strict_binary(op: Callable[[Any, Any], Any], left: tuple[str, Any], right: tuple[str, Any]) -> Evaluator:
    """`op(a, b)`, null when either side is null; specialised so each call reads its operands directly."""
    (lkind, lval), (rkind, rval) = left, right
    if (lkind == "const" and lval is None) or (rkind == "const" and rval is None):
        return lambda r: None
    if lkind == "field" and rkind == "const":
        return lambda r: None if (a := r.get(lval)) is None else op(a, rval)
    if lkind == "call" and rkind == "const":
        return lambda r: None if (a := lval(r)) is None else op(a, rval)
    if lkind == "const" and rkind == "field":
        return lambda r: None if (b := r.get(rval)) is None else op(lval, b)
    if lkind == "const" and rkind == "call":
        return lambda r: None if (b := rval(r)) is None else op(lval, b)
    if lkind == "const":
        value = op(lval, rval)
        return lambda r: value
    if lkind == "field" and rkind == "field":

        def fields(r: Record) -> Any:
            a = r.get(lval)
            if a is None:
                return None
            b = r.get(rval)
            return None if b is None else op(a, b)

        return fields
    if lkind == "field":

        def field_call(r: Record) -> Any:
            a = r.get(lval)
            if a is None:
                return None
            b = rval(r)
            return None if b is None else op(a, b)

        return field_call
    if rkind == "field":

        def call_field(r: Record) -> Any:
            a = lval(r)
            if a is None:
                return None
            b = r.get(rval)
            return None if b is None else op(a, b)

        return call_field

    def calls(r: Record) -> Any:
        a = lval(r)
        if a is None:
            return None
        b = rval(r)
        return None if b is None else op(a, b)

    return calls


class _Constant:
    """Marks an argument that is a literal, so builders can skip calling it."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _constant(node: Node) -> _Constant | None:
    return _Constant(node.value) if isinstance(node, Literal) else None


Constants = list[_Constant | None]


def _if(args: list[Evaluator], constants: Constants) -> Evaluator:
    condition, yes, no = args
    fixed_yes, fixed_no = constants[1], constants[2]
    if fixed_yes is not None and fixed_no is not None:
        a, b = fixed_yes.value, fixed_no.value
        return lambda r: a if condition(r) is True else b
    if fixed_yes is not None:
        a = fixed_yes.value
        return lambda r: a if condition(r) is True else no(r)
    if fixed_no is not None:
        b = fixed_no.value
        return lambda r: yes(r) if condition(r) is True else b
    return lambda r: yes(r) if condition(r) is True else no(r)


def _ifs(args: list[Evaluator], constants: Constants) -> Evaluator:
    if all(c is not None for c in constants[1::2]):
        fixed = [(cond, c.value) for cond, c in zip(args[::2], constants[1::2], strict=True) if c]
        otherwise = None
        last = constants[-2]
        if last is not None and last.value is True:  # IFS(…, true, x): x is the "else" value
            otherwise = fixed.pop()[1]

        def apply_fixed(r: Record) -> Any:
            for condition, value in fixed:
                if condition(r) is True:
                    return value
            return otherwise

        return apply_fixed
    pairs = list(zip(args[::2], args[1::2], strict=True))

    def apply(r: Record) -> Any:
        for condition, value in pairs:
            if condition(r) is True:
                return value(r)
        return None

    return apply


def _coalesce(args: list[Evaluator], constants: Constants) -> Evaluator:
    if len(args) == 2 and constants[1] is not None:
        first, fallback = args[0], constants[1].value
        return lambda r: value if (value := first(r)) is not None else fallback

    def apply(r: Record) -> Any:
        for arg in args:
            value = arg(r)
            if value is not None:
                return value
        return None

    return apply


def _is_empty(args: list[Evaluator], constants: Constants) -> Evaluator:
    only = args[0]
    return lambda r: (v := only(r)) is None or v == "" or v == []


def _extreme(pick: Callable[..., Any]) -> Callable[[list[Evaluator], Constants], Evaluator]:
    def build(args: list[Evaluator], constants: Constants) -> Evaluator:
        if len(args) == 2 and constants[0] is not None and constants[0].value is not None:
            fixed, other = constants[0].value, args[1]
            return lambda r: fixed if (v := other(r)) is None else pick(fixed, v)

        def apply(r: Record) -> Any:
            values = [v for arg in args if (v := arg(r)) is not None]
            return pick(values) if values else None

        return apply

    return build


def _concat(args: list[Evaluator], constants: Constants) -> Evaluator:
    return lambda r: "".join(str(v) for arg in args if (v := arg(r)) is not None)


_LAZY: dict[str, Callable[[list[Evaluator], Constants], Evaluator]] = {
    "IF": _if,
    "IFS": _ifs,
    "COALESCE": _coalesce,
    "IS_EMPTY": _is_empty,
    "MIN": _extreme(min),
    "MAX": _extreme(max),
    "CONCAT": _concat,
}


def _average(values: list[Any]) -> Decimal | None:
    if not values:
        return None
    return ARITHMETIC.divide(Decimal(sum(values)), Decimal(len(values)))


_AGGREGATES: dict[str, Callable[[list[Any]], Any]] = {
    "SUM": lambda values: sum(values) if values else 0,
    "COUNT": len,
    "AVG": _average,
    "MIN": lambda values: min(values) if values else None,
    "MAX": lambda values: max(values) if values else None,
}
