"""SQL for expressions over many rows: aggregates and LOOKUP, each one correlated subquery.

The rows are a table field's child rows (`SUM(lines.amount)`, joined by `parent_id`) or
the records of another form that link to the record (`COUNT(quotes)` over a backlink,
joined by the link column). A backlink's records are read through the reader's row scope
on their form when the expression is a reader's (the scope's `guard`), and merged records
are left out, as lists leave them out. An aggregate's WHERE is compiled on the rows'
own table, so its names are the rows' fields.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, exists, func, select
from sqlalchemy.sql.elements import ColumnElement

from runtime.expressions.syntax import Call, Name

if TYPE_CHECKING:
    from runtime.expressions.to_sql import _Compiler

SQL = ColumnElement[Any]


def aggregate_sql(compiler: _Compiler, node: Call) -> SQL:
    """SUM, COUNT, AVG, MIN or MAX over the rows of a table field or a backlink."""
    arg = node.args[0]
    assert isinstance(arg, Name)
    scope = compiler.scope
    owner = scope.table
    if arg.ref[0] == "backlink":
        source, link = scope.backlinks[arg.ref[1]]
        rows = source.alias()  # its own name: a backlink to the form itself must not correlate
        conditions: list[SQL] = [rows.c[link] == owner.c.id]
        if "_merged_into" in rows.c:
            conditions.append(rows.c["_merged_into"].is_(None))
        guard = scope.guard(source, rows) if scope.guard is not None else None
        if guard is not None:
            conditions.append(guard)
    else:
        rows = scope.children[arg.ref[1]].alias()
        conditions = [rows.c.parent_id == owner.c.id]
    if node.where is not None:
        own = replace(
            scope, table=rows, links={}, children={}, singles={}, backlinks={}, link_children={}, guard=None
        )
        conditions.append(compiler.nested(own).compile(node.where))
    column = rows.c[arg.ref[2]] if len(arg.ref) > 2 else None
    if node.name == "COUNT":
        measure = func.count() if column is None else func.count(column)
    else:
        assert column is not None
        value: SQL = column
        if compiler.pg and node.name in ("MIN", "MAX") and isinstance(column.type, String):
            value = column.collate("C")
        measure = getattr(func, node.name.lower())(value)
    stmt = select(measure).select_from(rows).where(*conditions).correlate(owner).scalar_subquery()
    if node.name == "SUM":
        return func.coalesce(stmt, 0)
    return compiler.typed(stmt, node.type)


def lookup_sql(compiler: _Compiler, node: Call) -> SQL:
    """The result of the row with the greatest key not above the value, first by position
    among equal keys: one correlated subquery over the rows (a linked record's rows are
    read only where the record is in the reader's scope)."""
    scope = compiler.scope
    key_name, result_name = node.args[1], node.args[2]
    assert isinstance(key_name, Name) and isinstance(result_name, Name)
    ref = key_name.ref
    if ref[0] == "link_child":
        rows = scope.link_children[(ref[1], ref[2])]
        owner: SQL = scope.table.c[ref[1]]
    else:
        rows = scope.children[ref[1]]
        owner = scope.table.c.id
    child = rows.alias()  # its own name: a LOOKUP or aggregate inside must not correlate with it
    key: SQL = child.c[ref[-1]]
    result: SQL = child.c[result_name.ref[-1]]
    value = node.args[0]
    wanted = compiler.typed_null(value.type) if value.type.kind == "null" else compiler.compile(value)
    ordered_key = key
    if key_name.type.kind == "text":
        ordered_key, wanted = compiler.binary_text(key), compiler.binary_text(wanted)
    stmt = (
        select(result)
        .where(child.c.parent_id == owner, key.is_not(None), ordered_key <= wanted)
        .order_by(ordered_key.desc(), child.c.position)
        .limit(1)
        .correlate(scope.table)
    )
    if ref[0] == "link_child" and scope.guard is not None:
        target = scope.links[ref[1]]
        alias = target.alias()
        guard = scope.guard(target, alias)
        if guard is not None:
            stmt = stmt.where(exists(select(alias.c.id).where(alias.c.id == owner, guard)))
    return compiler.typed(stmt.scalar_subquery(), node.type)
