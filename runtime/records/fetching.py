"""Values carried from linked records: a field's `fetch`, applied during a write.

A fetched field is filled from an expression on the record, typically through a link
(`fetch: opportunity.account`, a product's price tier by `LOOKUP`). Its `fetch_mode`
says what happens afterwards:

- `follow`: the field is recomputed whenever what the fetch gives changes, until the
  user sets the field themselves;
- `default`: the field is filled when it is empty, on create and whenever what the
  fetch gives changes; a value in it is never replaced.

Nothing extra is stored to know whether the user set the field. On create, a value
given is the user's. On update, a value given that differs from the stored one is the
user's; otherwise the field still *follows* when its stored value equals what the fetch
gives for the record as stored (its links read as they are now), and then takes what
the fetch gives for the record as changed. Fetches run after expression defaults and
before formulas, in the order they read each other; a fetch that changes a link makes
the later fetches, formulas and rules read the newly linked record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import FieldProblem
from runtime.records.logic import Fetch
from runtime.records.values import ValueProblem

Record = dict[str, Any]
# The keys of a record whose values came from their fetch in this write (for the live preview).
FETCHED = "#fetched"
_FAILED = object()


def apply_fetches(
    conn: Connection,
    app: CompiledApp,
    form: CompiledForm,
    records: list[Record],
    befores: list[Record | None],
    givens: list[set[str]],
    paths: list[str],
) -> list[FieldProblem]:
    """Apply the form's fetches to `records` (None in `befores`: a record being created)."""
    from runtime.records.evaluation import fill_reads  # evaluation imports this module

    fetches = form.logic.fetches
    if not fetches or not records:
        return []
    stored = [b for b in befores if b is not None]
    if stored:
        fill_reads(conn, app, form, stored, _reads(fetches))
    problems: list[FieldProblem] = []
    changed: set[str] = set()  # link fields a fetch changed in some record
    for fetch in fetches:
        stale = _reads([fetch], only=changed)
        if stale != ({}, set(), set()):
            fill_reads(conn, app, form, records, stale)
        for record, before, given, path in zip(records, befores, givens, paths, strict=True):
            if _apply(fetch, record, before, given, path, problems) and form.fields[fetch.key].type == "link":
                changed.add(fetch.key)
    if changed:  # formulas and rules read the newly linked records
        fill_reads(conn, app, form, records, _reads_of(form, changed))
    return problems


def _apply(
    fetch: Fetch,
    record: Record,
    before: Record | None,
    given: set[str],
    path: str,
    problems: list[FieldProblem],
) -> bool:
    """Apply one fetch to one record; True when the field took the fetched value."""
    key = fetch.key
    if before is None:
        if record.get(key) is not None:
            return False  # given on create: the user's value
        value = _value(fetch, record, path, problems)
    else:
        stored = before.get(key)
        if key in given and record.get(key) != stored:
            return False  # set by the user in this write
        value = _value(fetch, record, path, problems)
        old = _value(fetch, before, path, None)
        if value == old:
            return False
        follows = stored == old if fetch.mode == "follow" else stored is None
        if not follows:
            return False
    record[key] = None if value is _FAILED else value
    record.setdefault(FETCHED, set()).add(key)
    return True


def _value(fetch: Fetch, record: Record, path: str, problems: list[FieldProblem] | None) -> Any:
    """What the fetch gives for `record`, converted as the field stores it."""
    try:
        return fetch.store(fetch.evaluate(record))
    except ValueProblem as exc:
        if problems is not None:
            problems.append(FieldProblem(f"{path}{fetch.key}", exc.code, f"fetched value {exc}"))
        return _FAILED


Reads = tuple[dict[str, set[str]], set[tuple[str, str]], set[tuple[str, str, str]]]


def _reads(fetches: list[Fetch], only: set[str] | None = None) -> Reads:
    """What the fetches read through links and settings (only through the links in `only`)."""
    links: dict[str, set[str]] = {}
    singles: set[tuple[str, str]] = set()
    rows: set[tuple[str, str, str]] = set()
    for fetch in fetches:
        checked = fetch.checked
        for link, key in checked.links:
            if only is None or link in only:
                links.setdefault(link, set()).add(key)
        if only is None:
            singles.update(checked.singles)
        rows.update(r for r in checked.link_children if only is None or r[0] in only)
    return links, singles, rows


def _reads_of(form: CompiledForm, changed: set[str]) -> Reads:
    """What the form's formulas, rules and conditions read through the links in `changed`."""
    logic = form.logic
    links: dict[str, set[str]] = {}
    for link, key in logic.links:
        if link in changed:
            links.setdefault(link, set()).add(key)
    rows = {r for r in logic.link_children if r[0] in changed}
    return links, set(), rows
