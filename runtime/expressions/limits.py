"""How deep and how large the SQL of an expression gets, worked out from its syntax alone.

Every expression may run as SQL (`where=`, scopes, dashboards, recomputed formulas), so
the parser refuses what a database could not run, with the position of the problem.

**Depth.** SQLite parses SQL with a fixed stack of 100 entries and fails with "parser
stack overflow" beyond it, far below what PostgreSQL takes. Each construct the SQL
compiler writes costs a measured number of entries around its arguments — `CONCAT(x)`
becomes `coalesce(CAST(x AS VARCHAR), '')` inside a chain of `||`, `IF` a `CASE`, `MIN`
on SQLite a `min()` of rotated `coalesce()`s — so a path through the syntax tree costs
the sum of the weights below, and the costliest path must stay within `SQL_DEPTH`. The
weights were measured on SQLite (tests/security/test_limits.py builds the deepest
expression each weight allows and runs it on both databases), and `SQL_DEPTH` leaves
room for the statement around the expression: a list's paging subquery, a dashboard's
grouped and ranked query, a link read's row-scope condition.

**Size.** Some constructs repeat an argument in the SQL (ROUND on SQLite writes
`x + x * ε`; MIN and MAX on SQLite compare every rotation of their arguments; ADD_DAYS
checks the calendar range with its arguments several times), so nesting them grows the
SQL exponentially. The estimated number of SQL parts must stay within `SQL_SIZE`.
"""

from __future__ import annotations

from runtime.expressions.syntax import Binary, Call, ExpressionError, Literal, Membership, Name, Node, Unary

# The budget of SQLite parser-stack entries an expression may use (of 100; the statements
# around an expression take up to about 22, a link read's row scope a few more).
SQL_DEPTH = 64
# The most SQL parts (operators, functions, columns, parameters) an expression may expand to.
SQL_SIZE = 4000

# Stack entries a link (`account.name`) or settings read (`settings.rate`) costs: a scalar
# subquery, with room for the reader's row-scope condition on the linked form.
SUBQUERY = 16
# An aggregate over child rows (`SUM(lines.amount)`) or the records linking to this one
# (`COUNT(quotes)`): a correlated subquery.
AGGREGATE = 14
# Entries around the condition of a filtered aggregate (`SUM(lines.amount WHERE …)`): it
# sits in the WHERE of the aggregate's subquery, next to the reader's row scope.
AGGREGATE_WHERE = 16
# Entries around an operand of each operator, and around an argument of each function.
UNARY = {"-": 2, "+": 0, "not": 3}
ARITHMETIC = {"+": 3, "-": 3, "*": 3, "/": 6}
ASSOCIATIVE = {"+", "*", "and", "or"}  # chains of these are written flat: a + b + c
LOGIC = 3
COMPARISON = 4  # text comparisons add COLLATE
MEMBERSHIP = 7  # `x in [a, b]` with other than literals becomes x = a OR x = b
FUNCTIONS = {
    "IF": 5,
    "IFS": 6,
    "COALESCE": 5,
    "IS_EMPTY": 3,
    "ROUND": 6,
    "ABS": 3,
    "MIN": 10,
    "MAX": 10,
    "LEN": 3,
    "CONCAT": 9,  # plus one per argument after it: the || chain is parenthesised
    "LOWER": 3,
    "UPPER": 3,
    "CONTAINS": 15,
    "STARTS_WITH": 8,
    "DAYS_BETWEEN": 10,
    "ADD_DAYS": 12,
    "YEAR": 7,
    "MONTH": 7,
    "LOOKUP": 12,  # the value sits in the WHERE of a subquery over the rows (8 measured)
}
AGGREGATES = {"SUM", "COUNT", "AVG"}
DEFAULT_FUNCTION = 12  # a function not listed above


def check_sql_limits(node: Node) -> None:
    """Raise `ExpressionError` when the SQL of `node` would nest too deeply or grow too large."""
    sizes: dict[int, int] = {}
    _size(node, sizes)
    depths: dict[int, int] = {}
    if _depth(node, depths) > SQL_DEPTH:
        culprit = _too_deep(node, depths, 0)
        raise ExpressionError(
            "the expression nests too deeply to run in the database; "
            "nest fewer functions and operators (IFS instead of nested IFs, for example)",
            culprit.pos,
        )


def sql_depth(node: Node) -> int:
    """The estimated parser-stack entries the SQL of `node` takes (see the module notes)."""
    return _depth(node, {})


def sql_size(node: Node) -> int:
    """The estimated number of parts the SQL of `node` has."""
    return _size(node, {})


def _children(node: Node) -> list[tuple[Node, int]]:
    """Each child with the stack entries its place in the SQL costs."""
    if isinstance(node, Unary):
        return [(node.operand, UNARY[node.op])]
    if isinstance(node, Binary):
        weight = LOGIC if node.op in ("and", "or") else ARITHMETIC.get(node.op, COMPARISON)
        return [(child, _chained(node.op, child, weight)) for child in (node.left, node.right)]
    if isinstance(node, Membership):
        return [(child, MEMBERSHIP) for child in (node.operand, *node.items)]
    if isinstance(node, Call):
        if node.name in AGGREGATES or _maybe_aggregate(node):
            return [] if node.where is None else [(node.where, AGGREGATE_WHERE)]
        weight = FUNCTIONS.get(node.name, DEFAULT_FUNCTION)
        if node.where is not None:  # refused by the checker; measured all the same
            return [(arg, weight) for arg in (*node.args, node.where)]
        if node.name == "CONCAT":
            count = len(node.args)
            return [(arg, weight + count - max(index, 1)) for index, arg in enumerate(node.args)]
        return [(arg, weight) for arg in node.args]
    return []


def _chained(op: str, child: Node, weight: int) -> int:
    if op in ASSOCIATIVE and isinstance(child, Binary) and child.op == op:
        return 0
    return weight


def _maybe_aggregate(node: Call) -> bool:
    """MIN(lines.amount) over child rows; at parse time a dotted name may be one."""
    return node.name in ("MIN", "MAX") and len(node.args) == 1 and isinstance(node.args[0], Name)


def _leaf(node: Node) -> int:
    if isinstance(node, Name) and len(node.parts) > 1:
        return SUBQUERY
    if isinstance(node, Call) and (node.name in AGGREGATES or _maybe_aggregate(node)):
        return AGGREGATE
    return 0


def _depth(node: Node, memo: dict[int, int]) -> int:
    found = memo.get(id(node))
    if found is None:
        found = max([_leaf(node), *(weight + _depth(child, memo) for child, weight in _children(node))])
        memo[id(node)] = found
    return found


def _too_deep(node: Node, depths: dict[int, int], used: int) -> Node:
    """The outermost node on the costliest path where the budget runs out."""
    if used + _leaf(node) > SQL_DEPTH:
        return node
    children = _children(node)
    if not children:
        return node
    child, weight = max(children, key=lambda pair: pair[1] + depths[id(pair[0])])
    if used + weight > SQL_DEPTH:
        return child
    return _too_deep(child, depths, used + weight)


def _size(node: Node, memo: dict[int, int]) -> int:
    found = memo.get(id(node))
    if found is not None:
        return found
    if isinstance(node, Literal):
        found = 1
    elif isinstance(node, Name):
        found = 1 if len(node.parts) == 1 else 12
    elif isinstance(node, Unary):
        found = 1 + _size(node.operand, memo)
    elif isinstance(node, Binary):
        found = 4 + _size(node.left, memo) + _size(node.right, memo)
    elif isinstance(node, Membership):
        copies = 1 if all(isinstance(item, Literal) for item in node.items) else len(node.items)
        found = 1 + len(node.items) + copies * _size(node.operand, memo)
        found += sum(_size(item, memo) for item in node.items)
    elif isinstance(node, Call):
        found = _call_size(node, memo)
    else:
        found = 1
    memo[id(node)] = found
    if found > SQL_SIZE:
        raise ExpressionError(
            "the expression grows too large once written as SQL (ROUND, MIN, MAX, ADD_DAYS, "
            "STARTS_WITH, IS_EMPTY, CONTAINS and 'in' repeat their arguments); simplify it",
            node.pos,
        )
    return found


def _call_size(node: Call, memo: dict[int, int]) -> int:
    if node.name in AGGREGATES or _maybe_aggregate(node):
        return 12 + (0 if node.where is None else 4 + _size(node.where, memo))
    sizes = [_size(arg, memo) for arg in node.args]
    count = len(sizes)
    repeats = {
        "ROUND": [2, 1],
        "IS_EMPTY": [2],
        "STARTS_WITH": [1, 2],
        "CONTAINS": [2, 2],
        "ADD_DAYS": [3, 4],
    }.get(node.name)
    if node.name in ("MIN", "MAX"):
        return 1 + count * (count + 1) + count * sum(sizes)  # SQLite: every rotation, in coalesce()
    if repeats is not None:
        return 8 + sum(times * size for times, size in zip(repeats, sizes, strict=False))
    return 4 + 4 * count + sum(sizes)
