"""Fields filled by their `fetch` in the live preview, as the form's inputs take them.

The preview says which fields took a fetched value with the current input
(`RowPreview.fetched`); the page writes each into its input and into the input's
`._fetched` marker, so that the field keeps following until the user types over it
(see runtime/web/form_data.py). A fetched link is shown by the linked record's title,
read with the user's own access (a record they cannot read shows as `#id`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from runtime.identity.actor import Actor
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import RecordError
from runtime.records.preview import Preview, RowPreview
from runtime.schema.system import users
from runtime.web.context import Web
from runtime.web.form_data import fetched_input
from runtime.web.form_view import Context, percent_input
from runtime.web.formats import input_time, record_title

Titles = dict[tuple[str, int], str]  # (form or "user", id) -> the title shown


def fetched_payload(
    form: CompiledForm, row: RowPreview, ctx: Context, prefix: str, titles: Titles | None
) -> dict[str, dict[str, str]]:
    """`{input name: {value, display}}` of the fields the preview filled from their fetch."""
    found: dict[str, dict[str, str]] = {}
    for key, value in row.fetched.items():
        item = form.fields.get(key)
        if item is None:
            continue
        text = _input_value(item.type, value, ctx)
        display = ""
        if value is not None and item.type in ("link", "user"):
            owner = item.spec.to if item.type == "link" else "user"
            display = (titles or {}).get((owner, int(value)), f"#{value}")
        found[f"{prefix}{key}"] = {"value": text, "display": display, "kind": item.type}
    return found


def _input_value(kind: str, value: Any, ctx: Context) -> str:
    if value is None:
        return ""
    if kind == "percent":
        return percent_input(value)
    if kind == "datetime" and isinstance(value, dt.datetime):
        return input_time(value, ctx.zone)
    if isinstance(value, dt.date):
        return value.isoformat()
    return fetched_input(value)


def link_titles(web: Web, app: CompiledApp, form: CompiledForm, found: Preview, actor: Actor) -> Titles:
    """The titles of the records and users the preview's fetched links and user fields name:
    one query per linked form and one for users."""
    wanted: dict[str, set[int]] = {}
    rows = [(form, found.record)] + [
        (form.children[key], row) for key, previews in found.children.items() for row in previews
    ]
    for owner, row in rows:
        for key, value in row.fetched.items():
            item = owner.fields.get(key)
            if item is not None and value is not None and item.type in ("link", "user"):
                wanted.setdefault(item.spec.to if item.type == "link" else "user", set()).add(int(value))
    titles: Titles = {}
    for target, ids in wanted.items():
        if target == "user":
            stmt = select(users.c.id, users.c.display_name).where(users.c.id.in_(ids))
            with web.service.engine.connect() as conn:
                titles.update({("user", r.id): str(r.display_name) for r in conn.execute(stmt)})
            continue
        params = [("id__in", ",".join(str(i) for i in sorted(ids))), ("limit", str(max(len(ids), 1)))]
        try:
            page = web.service.list_page(app.app.app, target, params, actor)
        except RecordError:
            continue  # not readable: shown as #id
        title = app.forms[target].title_field
        titles.update({(target, int(r["id"])): record_title(r, title) for r in page["items"]})
    return titles


def fill_fetched(
    state: dict[str, Any], form: CompiledForm, found: Preview, ctx: Context, titles: Titles | None
) -> None:
    """Write what the preview fetched into a drawn form's state, as the page does with a live
    answer: the input, a link's title and the `._fetched` marker. A new record opened with
    its links given (`…/quote/new?opportunity=12`) shows the account it carries at once."""
    _fill_row(state, form, found.record, ctx, titles)
    for key, previews in found.children.items():
        rows = state.get(key)
        if not isinstance(rows, list):
            continue
        for row, preview in zip(rows, previews, strict=False):
            if isinstance(row, dict):
                _fill_row(row, form.children[key], preview, ctx, titles)


def _fill_row(
    state: dict[str, Any], form: CompiledForm, row: RowPreview, ctx: Context, titles: Titles | None
) -> None:
    for key, item in fetched_payload(form, row, ctx, "", titles).items():
        kind = item["kind"]
        if kind == "boolean":
            state[key] = item["value"] == "true"
        elif kind == "multi_select":
            state[key] = item["value"].split(",") if item["value"] else []
        else:
            state[key] = item["value"]
        if kind in ("link", "user"):
            state[f"{key}._display"] = item["display"]
        state[f"{key}._fetched"] = item["value"]
