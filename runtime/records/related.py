"""Related lists: the records of another form that link to a record, as a reader sees them.

A related list of a form's layout (`{related: quote.opportunity}` on the opportunity
form) is read through `RecordsService.list_page` with the filter `opportunity={id}`,
so the reader's permissions all apply: only the quotes they may read (row scope),
without the fields hidden from them, counted the same way. A reader who may not read
the listed form, or from whom its link field is hidden, does not get the list (403;
the record page leaves the block out). A page costs one SELECT (link display values
joined) and one count, plus one query per table field when child rows are included.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runtime.identity.actor import Actor
from runtime.model.record_page import RelatedList
from runtime.records.access import access_for
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.errors import NotAllowed, missing

if TYPE_CHECKING:
    from runtime.records.service import RecordsService

Page = dict[str, Any]


def relation_of(form: CompiledForm, relation: str) -> RelatedList:
    """The related list `relation` (`form.link`) of the form's layout; 404 when it has none."""
    found = form.form.related_list(relation)
    if found is None:
        raise missing("related list", relation)
    return found


def may_read(app: CompiledApp, spec: RelatedList, actor: Actor) -> bool:
    """True when the actor may read the listed form and see its link field."""
    target = app.forms.get(spec.form_key)
    if target is None:
        return False
    access = access_for(target, actor)
    return access.can("read") and spec.link not in access.hidden


def related_page(
    service: RecordsService,
    app_key: str,
    form_key: str,
    record_id: int,
    relation: str,
    params: Iterable[tuple[str, str]],
    actor: Actor,
) -> Page:
    """A page of the related list `relation` of record `record_id`, with `total`.

    404 when the form has no such related list or the record is outside the actor's read
    scope; 403 when they may not read the listed form (or its link field is hidden from
    them). `params` are the list's: `limit` (default: the list's `page_size`), `offset`,
    `sort` (default: the list's `sort`, else the form's), filters and `where`.
    """
    app, form = service.resolve(app_key, form_key)
    spec = relation_of(form, relation)
    with service.engine.connect() as conn:
        service.require_in_scope(conn, form, record_id, actor, "read")
    if not may_read(app, spec, actor):
        raise NotAllowed(f"you may not read the {spec.form_key} records of this {form.key}")
    return page_of(service, app, spec, record_id, params, actor, children=True)


def page_of(
    service: RecordsService,
    app: CompiledApp,
    spec: RelatedList,
    record_id: int,
    params: Iterable[tuple[str, str]],
    actor: Actor,
    *,
    children: bool,
) -> Page:
    """A page of the records linking to `record_id` through `spec` (scope of the record not
    checked here: the caller did)."""
    given = [(k, v) for k, v in params if k not in (spec.link, "count")]
    names = {k for k, _ in given}
    query = [(spec.link, str(record_id)), *given, ("count", "true")]
    if "limit" not in names:
        query.append(("limit", str(spec.page_size)))
    if "sort" not in names and spec.sort:
        query.append(("sort", ",".join(spec.sort)))
    return service.list_page(app.app.app, spec.form_key, query, actor, children=children)
