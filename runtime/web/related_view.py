"""The related lists of a record page: the records of other forms that link to the record.

Each block of the layout (`{related: quote.opportunity}`) shows, for a reader who may
read that form and its link, the count, the chosen columns, sorting by a column, paging
and a "new" button that opens the other form's new page with the link filled in
(`/app/{app}/quote/new?opportunity={id}`). A page of a block is one SELECT (link
display values joined) and one count through the records service, so scope and hidden
fields apply as in the API. Sorting and paging are links: htmx swaps the block in
place (`…/{id}/related/{form}.{link}`), and without scripts the record page itself
draws the block asked for (`?rel=…&offset=…&sort=…`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import QueryParams

from runtime.identity.actor import Actor
from runtime.model.record_page import RelatedList
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import InvalidRecord, NotAllowed, RecordError
from runtime.records.related import may_read, page_of, relation_of
from runtime.web.context import Web
from runtime.web.form_view import Context
from runtime.web.formats import display, record_title

Block = dict[str, Any]
DEFAULT_COLUMNS = 4


def related_router(web: Web) -> APIRouter:
    """`GET /app/{app}/{form}/{id}/related/{form}.{link}`: one block, for htmx to swap in."""
    router = APIRouter(include_in_schema=False)
    Actor_ = Depends(web.actor)

    def block(
        request: Request, app_key: str, form_key: str, record_id: int, relation: str, actor: Actor = Actor_
    ) -> Response:
        app, form = web.service.resolve(app_key, form_key)
        spec = relation_of(form, relation)
        with web.service.engine.connect() as conn:  # 403 or 404 as the record page
            web.service.require_in_scope(conn, form, record_id, actor, "read")
        if not may_read(app, spec, actor):
            raise NotAllowed(f"you may not read the {spec.form_key} records of this {form.key}")
        ctx = web.input_context(app, form, actor, creating=False)
        found = related_block(web, app, form, spec, record_id, actor, ctx, request.query_params)
        return web.pages.render(request, actor, "_related.html", block=found, fragment=True)

    router.add_api_route(
        "/app/{app_key}/{form_key}/{record_id:int}/related/{relation}", block, methods=["GET"]
    )
    return router


def related_blocks(
    web: Web,
    app: CompiledApp,
    form: CompiledForm,
    record_id: int,
    actor: Actor,
    ctx: Context,
    params: QueryParams,
) -> dict[str, Block]:
    """Each related list of the form the actor may read, by relation, drawn with its first page
    (or, for the block `params` name as `rel`, the page and sort they ask)."""
    chosen = params.get("rel")
    blocks: dict[str, Block] = {}
    for spec in form.form.related_lists():
        if may_read(app, spec, actor):
            asked = params if chosen == spec.related else QueryParams()
            blocks[spec.related] = related_block(web, app, form, spec, record_id, actor, ctx, asked)
    return blocks


def related_block(
    web: Web,
    app: CompiledApp,
    form: CompiledForm,
    spec: RelatedList,
    record_id: int,
    actor: Actor,
    ctx: Context,
    params: QueryParams,
) -> Block:
    """One block: its title, count, columns, rows, sort and paging links and "new" link."""
    target = app.forms[spec.form_key]
    access = web.service.access(app.app.app, spec.form_key, actor)
    columns = _columns(spec, target, access.hidden)
    offset = params.get("offset", "0")
    asked = [("offset", offset if offset.isdigit() else "0")]
    sort = params.get("sort", "")
    if sort:
        asked.append(("sort", sort))
    try:
        page = page_of(web.service, app, spec, record_id, asked, actor, children=False)
    except InvalidRecord:  # a sort or offset the list refuses: the block as it starts
        sort, asked = "", []
        page = page_of(web.service, app, spec, record_id, [], actor, children=False)
    base = f"/app/{app.app.app}/{form.key}/{record_id}"
    anchor = "related-" + spec.related.replace(".", "-").replace("_", "-")
    current = sort or ",".join(spec.sort or target.form.list_view.sort)

    def links(**query: Any) -> dict[str, str]:
        given = {k: v for k, v in {"sort": sort, **query}.items() if v not in ("", None)}
        return {
            "href": f"{base}?{urlencode({'rel': spec.related, **given})}#{anchor}",
            "hx": f"{base}/related/{spec.related}?{urlencode(given)}",
        }

    heads = []
    for key in columns:
        field = target.fields[key]
        sortable = field.type != "multi_select"
        heads.append(
            {
                "key": key,
                "label": field.spec.title(ctx.language),
                "kind": field.type,
                "order": "ascending" if current == key else "descending" if current == f"-{key}" else "",
                **(links(sort=f"-{key}" if current == key else key) if sortable else {}),
            }
        )
    rows = [
        {
            "id": record["id"],
            "href": f"/app/{app.app.app}/{spec.form_key}/{record['id']}",
            "cells": [
                display(target.fields[k].spec, record.get(k), ctx.language, ctx.currency, ctx.zone)
                for k in columns
            ],
        }
        for record in page["items"]
    ]
    start = page["offset"]
    previous = links(offset=max(start - page["limit"], 0)) if start > 0 else None
    following = links(offset=page["next_offset"]) if page["next_offset"] is not None else None
    new = None
    if spec.new and access.can("create"):
        locked = web.service.locked_fields(app.app.app, spec.form_key, actor, creating=True)
        if spec.link not in locked and spec.link not in access.hidden:
            new = f"/app/{app.app.app}/{spec.form_key}/new?{urlencode({spec.link: record_id})}"
    return {
        "relation": spec.related,
        "anchor": anchor,
        "tab": spec.tab.text(ctx.language) if spec.tab else "",
        "title": (spec.label or target.form.label).text(ctx.language),
        "total": page.get("total", 0),
        "columns": heads,
        "rows": rows,
        "previous": previous,
        "next": following,
        "new": new,
        "first": start + 1 if rows else 0,
        "last": start + len(rows),
    }


def _columns(spec: RelatedList, target: CompiledForm, hidden: frozenset[str]) -> list[str]:
    """The block's columns: its own, else the listed form's list columns (without the link,
    which names the record shown), else its first few fields; never a hidden one."""
    shown = [k for k in target.fields if k not in hidden]
    if spec.columns:
        return [k for k in spec.columns if k in shown]
    chosen = [k for k in target.form.list_view.columns if k in shown and k != spec.link]
    return chosen or [k for k in shown if k != spec.link][:DEFAULT_COLUMNS]


def given_links(
    web: Web,
    app: CompiledApp,
    form: CompiledForm,
    params: QueryParams,
    actor: Actor,
    editable: set[str],
) -> dict[str, str]:
    """The link fields a new-record URL fills (`…/quote/new?opportunity=12`, the "new" of a
    related list), input-shaped: the id and the linked record's title as the user may read it
    (`#12` otherwise). Only links the user may fill in; one read per link."""
    wanted: dict[str, int] = {}
    for key, value in params.multi_items():
        field = form.fields.get(key)
        if field is not None and field.type == "link" and key in editable and value.isdigit():
            wanted[key] = int(value)
    state: dict[str, str] = {}
    for key, record_id in wanted.items():
        target = form.fields[key].spec.to
        title = f"#{record_id}"
        try:
            page = web.service.list_page(app.app.app, target, [("id", str(record_id))], actor, children=False)
        except RecordError:
            page = {"items": []}
        if page["items"]:
            title = record_title(page["items"][0], app.forms[target].title_field)
        state[key], state[f"{key}._display"] = str(record_id), title
    return state
