"""The records of another form that link to a record, read for the expressions that aggregate them.

A form's `backlinks:` name them (`{key: payments, form: payment, link: account}`); an
expression on the form reads them like the rows of a table field, as a list of dicts under
the backlink's key (`SUM(payments.amount WHERE status == 'confirmed')`). They are read in
full here — a stored formula is the record's own data, computed with every record — and
merged records are left out, as lists leave them out. For a reader's conditions the SQL
compiler reads them through the reader's row scope instead (runtime/expressions/sql_rows.py).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from runtime.records.compiled import CompiledApp, CompiledForm

Record = dict[str, Any]
OWNER = "_owner"  # the label of the link column in the rows read


def fill_backlinks(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    records: list[Record],
    reads: set[tuple[str, str | None]],
) -> None:
    """Put the records linking to each record under the backlink's key, with the columns
    the expressions read (`reads`: (backlink, column), None for a count): one query per
    backlink for all the records; a record not stored yet has none."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for key, column in reads:
        wanted[key].update([column] if column is not None else [])
    for key, columns in sorted(wanted.items()):
        backlink = form.form.backlink(key)
        assert backlink is not None
        source = app.form(backlink.form).table
        ids = {int(r["id"]) for r in records if r.get("id") is not None}
        found: dict[int, list[Record]] = defaultdict(list)
        if ids:
            link = source.c[backlink.link]
            stmt = select(link.label(OWNER), *(source.c[c] for c in sorted(columns))).where(link.in_(ids))
            if "_merged_into" in source.c:
                stmt = stmt.where(source.c["_merged_into"].is_(None))
            for row in conn.execute(stmt.order_by(source.c.id)).mappings():
                found[row[OWNER]].append(dict(row))
        for record in records:
            record[key] = found.get(record.get("id") or 0, [])
