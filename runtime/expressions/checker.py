"""Type-check an expression against a form's scope, annotating every node with its type."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.expressions.function_types import (
    FUNCTIONS,
    ORDERED,
    check_option,
    expect,
    expect_number,
    literal_type,
    same_family,
)
from runtime.expressions.syntax import (
    Binary,
    Call,
    ExpressionError,
    Literal,
    Membership,
    Name,
    Node,
    Unary,
)
from runtime.expressions.types import BOOLEAN, DECIMAL, INTEGER, NULL, Scope, Type
from runtime.loading.problems import did_you_mean

ARITY: dict[str, tuple[int, int | None]] = {
    "IF": (3, 3),
    "IFS": (2, None),
    "COALESCE": (1, None),
    "IS_EMPTY": (1, 1),
    "ROUND": (1, 2),
    "ABS": (1, 1),
    "MIN": (1, None),
    "MAX": (1, None),
    "LEN": (1, 1),
    "CONCAT": (1, None),
    "LOWER": (1, 1),
    "UPPER": (1, 1),
    "CONTAINS": (2, 2),
    "STARTS_WITH": (2, 2),
    "TODAY": (0, 0),
    "NOW": (0, 0),
    "DAYS_BETWEEN": (2, 2),
    "ADD_DAYS": (2, 2),
    "HOURS_BETWEEN": (2, 2),
    "MINUTES_BETWEEN": (2, 2),
    "ADD_HOURS": (2, 2),
    "WORKDAYS_BETWEEN": (2, 2),
    "ADD_WORKDAYS": (2, 2),
    "YEAR": (1, 1),
    "MONTH": (1, 1),
    "SUM": (1, 1),
    "COUNT": (1, 1),
    "AVG": (1, 1),
    "CURRENT_USER": (0, 0),
    "LOOKUP": (3, 3),
}
AGGREGATES = {"SUM", "COUNT", "AVG", "MIN", "MAX"}
UNKNOWN = "unknown_field"  # the code of a name the expression may not use


@dataclass
class Checked:
    """A type-checked expression and what it reads."""

    node: Node
    type: Type
    source: str
    fields: set[str] = field(default_factory=set)
    links: set[tuple[str, str]] = field(default_factory=set)
    children: set[tuple[str, str | None]] = field(default_factory=set)
    singles: set[tuple[str, str]] = field(default_factory=set)
    # `record.field` / `parent.field` of a link filter: (outer name, field)
    outer: set[tuple[str, str]] = field(default_factory=set)
    # columns of a linked record's rows, read by LOOKUP: (link, table field, column)
    link_children: set[tuple[str, str, str]] = field(default_factory=set)
    # columns of the records linking here, read by aggregates over a backlink: (key, column);
    # (key, None) for a count of them
    backlinks: set[tuple[str, str | None]] = field(default_factory=set)


def check(node: Node, scope: Scope, source: str = "") -> Checked:
    """Annotate `node` with types; raise `ExpressionError` at the first problem."""
    checked = Checked(node, NULL, source)
    checked.type = _Checker(scope, checked).visit(node)
    return checked


class _Checker:
    def __init__(self, scope: Scope, out: Checked, rows_of: str | None = None) -> None:
        self.scope = scope
        self.out = out
        self.rows_of = rows_of  # checking the WHERE of an aggregate over these rows

    def visit(self, node: Node, in_aggregate: bool = False) -> Type:
        if isinstance(node, Literal):
            kind = literal_type(node.value)
        elif isinstance(node, Name):
            kind = self.name(node, in_aggregate)
        elif isinstance(node, Unary):
            kind = self.unary(node)
        elif isinstance(node, Binary):
            kind = self.binary(node)
        elif isinstance(node, Membership):
            kind = self.membership(node)
        elif isinstance(node, Call):
            kind = self.call(node)
        else:
            raise ExpressionError("unsupported expression", node.pos)
        node.type = kind
        return kind

    # -- names ---------------------------------------------------------------------

    def name(self, node: Name, in_aggregate: bool) -> Type:
        head = node.parts[0]
        if len(node.parts) > 2:
            raise ExpressionError("only one '.' is allowed: link.field or table.field", node.pos)
        if len(node.parts) == 1:
            if head in self.scope.fields:
                node.ref = ("field", head)
                self.out.fields.add(head)
                return self.scope.fields[head]
            if head in self.scope.children or head in self.scope.backlinks:
                if not in_aggregate:
                    raise ExpressionError(f"'{head}' holds rows; use COUNT({head})", node.pos)
                self.rows(node, head, None)
                return INTEGER
            raise ExpressionError(self._unknown(head), node.pos, UNKNOWN)
        key = node.parts[1]
        if self.rows_of is not None:
            rows = self.rows_of
            message = f"a WHERE condition reads the fields of the rows of '{rows}' only, not '{head}.{key}'"
            raise ExpressionError(message, node.pos)
        if head in self.scope.outer:
            return self.outer(node, head, key)
        if head in self.scope.links:
            target = self.scope.links[head]()
            if key not in target.fields:
                raise ExpressionError(
                    f"form '{target.form}' has no field '{key}'{did_you_mean(key, target.fields)}",
                    node.pos,
                    UNKNOWN,
                )
            node.ref = ("link", head, key)
            self.out.fields.add(head)
            self.out.links.add((head, key))
            return target.fields[key]
        if head in self.scope.children or head in self.scope.backlinks:
            child = self.row_scope(head)
            if key not in child.fields:
                raise ExpressionError(
                    f"the rows of '{head}' have no field '{key}'{did_you_mean(key, child.fields)}",
                    node.pos,
                    UNKNOWN,
                )
            if not in_aggregate:
                raise ExpressionError(
                    f"'{head}.{key}' holds many values; use SUM, AVG, MIN, MAX or COUNT", node.pos
                )
            self.rows(node, head, key)
            return child.fields[key]
        if head in self.scope.singles:
            single = self.scope.singles[head]()
            if key not in single.fields:
                raise ExpressionError(
                    f"form '{head}' has no field '{key}'{did_you_mean(key, single.fields)}", node.pos, UNKNOWN
                )
            node.ref = ("single", head, key)
            self.out.singles.add((head, key))
            return single.fields[key]
        if head == "parent" and "record" in self.scope.outer:
            message = "'parent.' reads the record holding a child row: only a link of child rows has it"
            raise ExpressionError(message, node.pos, UNKNOWN)
        raise ExpressionError(
            f"'{head}' is not a link or table field, nor a single form{did_you_mean(head, self._names())}",
            node.pos,
            UNKNOWN,
        )

    def row_scope(self, head: str) -> Scope:
        """The scope of the rows of a table field or backlink."""
        found = self.scope.children.get(head) or self.scope.backlinks[head]
        return found()

    def rows(self, node: Name, head: str, key: str | None) -> None:
        """`node` reads the rows of a table field (`lines.amount`) or of a backlink."""
        kind = self.note_rows(head, key)
        node.ref = (kind, head) if key is None else (kind, head, key)

    def note_rows(self, head: str, key: str | None) -> str:
        """Note a read of rows (of a column, or `None` for their count); answer their kind."""
        if head in self.scope.children:
            self.out.fields.add(head)
            self.out.children.add((head, key))
            return "child"
        self.out.backlinks.add((head, key))
        return "backlink"

    def outer(self, node: Name, head: str, key: str) -> Type:
        """`record.field` or `parent.field`: a value of the record being edited, not of this form."""
        outer = self.scope.outer[head]()
        whose = "the record being edited" if head == "record" else "the parent record"
        if key not in outer.fields:
            raise ExpressionError(
                f"{whose} ({outer.form}) has no field '{key}'{did_you_mean(key, outer.fields)}",
                node.pos,
                UNKNOWN,
            )
        kind = outer.fields[key]
        if kind.kind == "list":
            raise ExpressionError(f"'{head}.{key}' holds several options; it cannot be read here", node.pos)
        node.ref = ("outer", head, key)
        self.out.outer.add((head, key))
        return kind

    def _names(self) -> list[str]:
        return [
            *self.scope.fields,
            *self.scope.links,
            *self.scope.children,
            *self.scope.backlinks,
            *self.scope.singles,
            *self.scope.outer,
        ]

    def _unknown(self, name: str) -> str:
        return f"unknown field '{name}'{did_you_mean(name, self._names())}"

    # -- operators -----------------------------------------------------------------

    def unary(self, node: Unary) -> Type:
        operand = self.visit(node.operand)
        if node.op in ("-", "+"):
            expect_number(operand, node.operand, f"'{node.op}'")
            return operand if operand.numeric else INTEGER
        expect(operand, BOOLEAN, node.operand, "'not'")
        return BOOLEAN

    def binary(self, node: Binary) -> Type:
        left, right = self.visit(node.left), self.visit(node.right)
        op = node.op
        if op in ("and", "or"):
            expect(left, BOOLEAN, node.left, f"'{op}'")
            expect(right, BOOLEAN, node.right, f"'{op}'")
            return BOOLEAN
        if op in ("+", "-", "*", "/"):
            expect_number(left, node.left, f"'{op}'")
            expect_number(right, node.right, f"'{op}'")
            if op == "/" or DECIMAL in (left, right) or "decimal" in (left.kind, right.kind):
                return DECIMAL
            return INTEGER
        self.comparable(node, left, right)
        return BOOLEAN

    def comparable(self, node: Binary, left: Type, right: Type) -> None:
        if NULL in (left, right):
            if node.op not in ("==", "!="):
                raise ExpressionError(f"null cannot be compared with '{node.op}'; use == or !=", node.pos)
            return
        if not same_family(left, right):
            raise ExpressionError(f"cannot compare {left} with {right}", node.pos)
        if node.op not in ("==", "!=") and left.kind not in ORDERED:
            raise ExpressionError(f"a {left} value cannot be compared with '{node.op}'", node.pos)
        check_option(node.left, node.right)
        check_option(node.right, node.left)

    def membership(self, node: Membership) -> Type:
        operand = self.visit(node.operand)
        for item in node.items:
            kind = self.visit(item)
            if kind != NULL and not same_family(operand, kind):
                raise ExpressionError(f"cannot look for a {operand} value among {kind} values", item.pos)
            check_option(node.operand, item)
        return BOOLEAN

    # -- functions -----------------------------------------------------------------

    def call(self, node: Call) -> Type:
        name = node.name
        if name not in ARITY:
            raise ExpressionError(f"unknown function {name}{did_you_mean(name, ARITY)}", node.pos)
        low, high = ARITY[name]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            wanted = str(low) if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            raise ExpressionError(f"{name} takes {wanted} argument(s), not {count}", node.pos)
        if name in AGGREGATES and self._is_aggregate(node):
            return self.aggregate(node)
        if node.where is not None:
            message = "WHERE filters the rows of an aggregate, such as SUM(lines.amount WHERE …)"
            raise ExpressionError(message, node.where.pos)
        if name == "LOOKUP":
            return self.lookup(node)
        args = [self.visit(arg) for arg in node.args]
        return FUNCTIONS[name](node, args)

    def _is_aggregate(self, node: Call) -> bool:
        if node.name in ("SUM", "COUNT", "AVG"):
            return True
        arg = node.args[0]
        return len(node.args) == 1 and isinstance(arg, Name) and self._has_rows(arg.parts[0])

    def _has_rows(self, name: str) -> bool:
        return name in self.scope.children or name in self.scope.backlinks

    def aggregate(self, node: Call) -> Type:
        arg = node.args[0]
        if not isinstance(arg, Name) or not self._has_rows(arg.parts[0]):
            unknown = isinstance(arg, Name) and arg.parts[0] not in self._names()
            raise ExpressionError(
                f"{node.name} takes the rows of a table field or backlink, such as {node.name}(lines.amount)",
                arg.pos,
                UNKNOWN if unknown else "expression",
            )
        if len(arg.parts) == 1 and node.name != "COUNT":
            raise ExpressionError(f"name a column: {node.name}({arg.parts[0]}.field)", arg.pos)
        kind = self.visit(arg, in_aggregate=True)
        node.aggregate = True
        if node.where is not None:
            self.condition(node.where, arg.parts[0])
        if node.name == "COUNT":
            return INTEGER
        if node.name in ("SUM", "AVG"):
            expect_number(kind, arg, node.name)
            return DECIMAL if node.name == "AVG" else kind
        if kind.kind not in ORDERED:
            raise ExpressionError(f"{node.name} needs numbers, text or dates, not {kind}", arg.pos)
        return kind

    def condition(self, where: Node, head: str) -> None:
        """The WHERE of an aggregate: a condition on each row, reading the rows' own fields."""
        rows = self.row_scope(head)
        reads = Checked(where, NULL, self.out.source)
        kind = _Checker(Scope(rows.form, rows.fields), reads, rows_of=head).visit(where)
        expect(kind, BOOLEAN, where, "WHERE")
        for key in reads.fields:
            self.note_rows(head, key)

    def lookup(self, node: Call) -> Type:
        """LOOKUP(value, rows.key, rows.result): the result of the row with the greatest key
        not above `value`; `rows` is a table field or a table field of a linked record."""
        wanted = self.visit(node.args[0])
        (rows, key), (same, result) = (self.rows_column(arg) for arg in node.args[1:])
        if rows != same:
            message = "LOOKUP's key and result must be columns of the same rows"
            raise ExpressionError(message, node.args[2].pos)
        if key.kind not in ORDERED:
            raise ExpressionError(f"LOOKUP's key needs numbers, text or dates, not {key}", node.args[1].pos)
        if wanted != NULL and not same_family(wanted, key):
            raise ExpressionError(f"LOOKUP cannot compare a {wanted} value with {key} keys", node.args[0].pos)
        return Type(result.kind, item=result.item)

    def rows_column(self, arg: Node) -> tuple[tuple[str, ...], Type]:
        """A column of rows named by a LOOKUP: `lines.amount` or `product.tiers.price`."""
        example = "lines.amount or product.price_tiers.unit_price"
        if not isinstance(arg, Name) or len(arg.parts) not in (2, 3):
            raise ExpressionError(f"LOOKUP takes columns of rows here, such as {example}", arg.pos)
        *rows, column = arg.parts
        scope = self.scope
        if len(rows) == 2:
            if rows[0] not in scope.links:
                hint = did_you_mean(rows[0], scope.links)
                raise ExpressionError(f"'{rows[0]}' is not a link field{hint}", arg.pos, UNKNOWN)
            scope = scope.links[rows[0]]()
        table = rows[-1]
        if table not in scope.children:
            hint = did_you_mean(table, scope.children)
            raise ExpressionError(f"form '{scope.form}' has no table field '{table}'{hint}", arg.pos, UNKNOWN)
        child = scope.children[table]()
        if column not in child.fields:
            hint = did_you_mean(column, child.fields)
            message = f"the rows of '{'.'.join(rows)}' have no field '{column}'{hint}"
            raise ExpressionError(message, arg.pos, UNKNOWN)
        self.out.fields.add(rows[0])
        if len(rows) == 2:
            arg.ref = ("link_child", rows[0], table, column)
            self.out.link_children.add((rows[0], table, column))
        else:
            arg.ref = ("child", table, column)
            self.out.children.add((table, column))
        kind = child.fields[column]
        arg.type = kind
        return tuple(rows), kind
