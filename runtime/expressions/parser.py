"""A Pratt parser from tokens to syntax nodes, with limits on length, depth and size."""

from __future__ import annotations

from runtime.expressions.limits import check_sql_limits
from runtime.expressions.syntax import (
    MAX_DEPTH,
    MAX_NODES,
    Binary,
    Call,
    ExpressionError,
    Literal,
    Membership,
    Name,
    Node,
    Token,
    Unary,
    date_value,
    number_value,
    string_value,
    tokenize,
)

SPELLINGS = {"=": "==", "<>": "!=", "&&": "and", "||": "or", "!": "not"}
BINDING = {
    "or": 1,
    "and": 2,
    "==": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "in": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
}
COMPARISON = 4
NOT_BINDING = 3
UNARY_BINDING = 7


def parse(source: str) -> Node:
    """Parse a whole expression; raises `ExpressionError` with the offset of the problem."""
    if not source.strip():
        raise ExpressionError("the expression is empty", 0)
    node = _Parser(tokenize(source)).parse_all()
    check_sql_limits(node)  # what SQLite and PostgreSQL can run (runtime/expressions/limits.py)
    return node


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        self.nodes = 0

    def parse_all(self) -> Node:
        node = self.expression(0)
        token = self.peek()
        if token.kind != "end":
            raise ExpressionError(f"unexpected {_describe(token)}", token.pos)
        return node

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.advance()
        if token.text != text:
            raise ExpressionError(f"expected '{text}' but found {_describe(token)}", token.pos)
        return token

    def operator(self, token: Token) -> str | None:
        if token.kind in ("op", "keyword"):
            text = SPELLINGS.get(token.text, token.text)
            if text == "not" and self._next_is_in():
                return "not in"
            return text if text in BINDING else None
        return None

    def _next_is_in(self) -> bool:
        following = self.tokens[self.index + 1]
        return following.kind == "keyword" and following.text == "in"

    def expression(self, min_binding: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"the expression nests deeper than {MAX_DEPTH} levels", self.peek().pos)
        left = self.prefix()
        while True:
            token = self.peek()
            op = self.operator(token)
            if op is None:
                break
            binding = BINDING["in" if op == "not in" else op]
            if binding <= min_binding:
                break
            self.advance()
            if op == "not in":
                self.advance()
            left = self.infix(op, token, left, binding)
        self.depth -= 1
        return left

    def infix(self, op: str, token: Token, left: Node, binding: int) -> Node:
        if op in ("in", "not in"):
            return self.count(Membership(token.pos, left, self.items(), op == "not in"))
        right = self.expression(binding)
        node = self.count(Binary(token.pos, op, left, right))
        if binding == COMPARISON and self.operator(self.peek()) in _COMPARISONS:
            nxt = self.peek()
            raise ExpressionError("comparisons cannot be chained; join them with 'and'", nxt.pos)
        return node

    def items(self) -> list[Node]:
        self.expect("[")
        items: list[Node] = []
        if self.peek().text != "]":
            items.append(self.expression(0))
            while self.peek().text == ",":
                self.advance()
                items.append(self.expression(0))
        self.expect("]")
        if not items:
            raise ExpressionError("the list after 'in' is empty", self.tokens[self.index - 1].pos)
        return items

    def prefix(self) -> Node:
        token = self.advance()
        text = SPELLINGS.get(token.text, token.text) if token.kind in ("op", "keyword") else None
        if text == "-":
            return self.count(Unary(token.pos, "-", self.expression(UNARY_BINDING)))
        if text == "+":
            return self.count(Unary(token.pos, "+", self.expression(UNARY_BINDING)))
        if text == "not":
            return self.count(Unary(token.pos, "not", self.expression(NOT_BINDING)))
        if text == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        return self.count(self.atom(token))

    def atom(self, token: Token) -> Node:
        if token.kind == "number":
            return Literal(token.pos, number_value(token.text, token.pos))
        if token.kind == "string":
            return Literal(token.pos, string_value(token.text, token.pos))
        if token.kind == "date":
            return Literal(token.pos, date_value(token.text, token.pos))
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return Literal(token.pos, {"true": True, "false": False, "null": None}[token.text])
        if token.kind == "name":
            if self.peek().text == "(":
                return self.call(token)
            return self.name(token)
        raise ExpressionError(f"unexpected {_describe(token)}", token.pos)

    def call(self, token: Token) -> Node:
        self.expect("(")
        args: list[Node] = []
        where: Node | None = None
        if self.peek().text != ")":
            args.append(self.expression(0))
            while self.peek().text == ",":
                self.advance()
                args.append(self.expression(0))
            if _is_where(self.peek()):
                keyword = self.advance()
                if len(args) != 1:
                    message = "WHERE filters the rows of an aggregate, such as SUM(lines.amount WHERE …)"
                    raise ExpressionError(message, keyword.pos)
                where = self.expression(0)
        self.expect(")")
        return Call(token.pos, token.text.upper(), args, where)

    def name(self, token: Token) -> Node:
        parts = [token.text]
        while self.peek().text == ".":
            self.advance()
            part = self.advance()
            if part.kind != "name":
                raise ExpressionError(f"expected a field name after '.', found {_describe(part)}", part.pos)
            parts.append(part.text)
        return Name(token.pos, tuple(parts))

    def count(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"the expression has more than {MAX_NODES} parts", node.pos)
        return node


_COMPARISONS = {"==", "!=", "<", "<=", ">", ">=", "in", "not in"}


def _is_where(token: Token) -> bool:
    """`WHERE` (any case) after an aggregate's argument; `where` is never a field key."""
    return token.kind == "name" and token.text.lower() == "where"


def _describe(token: Token) -> str:
    return "end of the expression" if token.kind == "end" else f"'{token.text}'"
