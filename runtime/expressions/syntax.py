"""Tokens and the syntax tree of expressions such as `IF(budget > 100000, 30, 10)`.

Expressions are parsed by a small hand-written Pratt parser into the node classes
below. Nothing is ever evaluated as Python: the compilers walk these nodes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MAX_LENGTH = 2000
MAX_DEPTH = 40
MAX_NODES = 400


class ExpressionError(Exception):
    """A problem in an expression, at a 0-based character offset inside it.

    `code` names the kind of problem for API answers: `unknown_field` for a name the
    expression may not use (unknown, or hidden from the reader), else `expression`.
    """

    def __init__(self, message: str, offset: int = 0, code: str = "expression") -> None:
        self.message = message
        self.offset = offset
        self.code = code
        super().__init__(f"{message} (at character {offset + 1})")


@dataclass
class Node:
    """Base of every syntax node; `pos` is its offset, `type` is filled by the checker."""

    pos: int
    type: Any = field(default=None, init=False, compare=False, repr=False)


@dataclass
class Literal(Node):
    """A number, text, boolean, null or date literal."""

    value: Any


@dataclass
class Name(Node):
    """A field (`budget`), a linked field (`account.industry`) or a child column (`lines.amount`)."""

    parts: tuple[str, ...]
    # Filled by the checker: ("field", key), ("link", link, key), ("child", table, key | None),
    # ("backlink", key, column | None), ("single", form, key) or ("outer", name, key)
    ref: tuple[str, ...] = field(default=(), init=False, compare=False, repr=False)


@dataclass
class Unary(Node):
    """`-x` or `not x`."""

    op: str
    operand: Node


@dataclass
class Binary(Node):
    """Arithmetic, comparison and boolean operators."""

    op: str
    left: Node
    right: Node


@dataclass
class Membership(Node):
    """`x in [a, b]` (or `not in`)."""

    operand: Node
    items: list[Node]
    negated: bool


@dataclass
class Call(Node):
    """A function call such as `ROUND(x, 2)`; names are upper-cased.

    An aggregate may filter its rows: `SUM(payments.amount WHERE status == 'confirmed')`
    keeps the condition in `where`, checked and computed on each aggregated row.
    """

    name: str
    args: list[Node]
    where: Node | None = None
    aggregate: bool = field(default=False, init=False, compare=False, repr=False)


TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<date>\#[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.]+(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\#)
  | (?P<number>[0-9]+(?:\.[0-9]+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<>|<=|>=|&&|\|\||[-+*/(),.\[\]<>=!])
    """,
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


@dataclass
class Token:
    """One lexical token: its kind, text and offset."""

    kind: str
    text: str
    pos: int


def tokenize(source: str) -> list[Token]:
    """Split an expression into tokens; unknown characters are errors."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = TOKEN.match(source, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {source[pos]!r}", pos)
        kind = match.lastgroup or ""
        if kind != "space":
            text = match.group()
            if kind == "name" and text.lower() in KEYWORDS:
                kind, text = "keyword", text.lower()
            tokens.append(Token(kind, text, pos))
        pos = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


def string_value(text: str, pos: int) -> str:
    """The value of a quoted string token, with backslash escapes resolved."""
    body = text[1:-1]
    for index, char in enumerate(body):
        if char == "\x00" or "\ud800" <= char <= "\udfff":
            raise ExpressionError("text may not hold NUL or unpaired surrogate characters", pos + index + 1)
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1]
            if nxt not in ESCAPES:
                raise ExpressionError(f"unknown escape \\{nxt}", pos + i + 1)
            out.append(ESCAPES[nxt])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def date_value(text: str, pos: int) -> dt.date | dt.datetime:
    """The value of a `#2026-01-31#` or `#2026-01-31T09:00:00Z#` literal."""
    body = text[1:-1]
    try:
        if len(body) == 10:
            return dt.date.fromisoformat(body)
        moment = dt.datetime.fromisoformat(body.replace(" ", "T"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise ExpressionError(f"invalid date {body!r}: {exc}", pos) from exc


MAX_DIGITS = 38
MAX_DAYS = 3_650_000  # ADD_DAYS beyond this many days gives null (past the calendar anyway)


def number_value(text: str, pos: int = 0) -> int | Decimal:
    """An integer, or a decimal when the literal has a point; at most 38 digits, and
    integers within 64 bits, so every database can hold them."""
    if len(text.replace(".", "")) > MAX_DIGITS:
        raise ExpressionError(f"the number has more than {MAX_DIGITS} digits", pos)
    if "." in text:
        return Decimal(text)
    value = int(text)
    if value >= 2**63:
        raise ExpressionError("the number is too large (integers stop below 2^63)", pos)
    return value
