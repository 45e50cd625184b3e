"""What a record page offers beyond the record's own fields: related lists and make actions.

A *related list* is a layout item (`{related: quote.opportunity, …}`) that lists the
records of another form whose link points at the record shown. A *make action*
(`actions:` of a form, `{key, make: contract, values: …}`) creates a record of another
form from the record shown, its values (and child rows) mapped by expressions, as a
workflow's `create` effect does, but taken by a user from a button or the API.
"""

from __future__ import annotations

import re

from pydantic import Field as Spec
from pydantic import field_validator

from runtime.model.common import Identifier, Label, Strict
from runtime.model.fields import Expression
from runtime.model.process import ChildCopy

RELATION_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
SORT_KEY_RE = re.compile(r"^-?[a-z][a-z0-9_]*$")
RELATED_PAGE_SIZE = 10
MAX_RELATED_PAGE = 100


class RelatedList(Strict):
    """A block of the record page listing the records of another form that link to this one.

    `related` is `form.link`: a top-level form and its link field that points at this
    form (`quote.opportunity` on the opportunity form lists the opportunity's quotes).
    The rows are read with the reader's own permissions; `new` offers a button that opens
    the other form's new-record page with the link filled in.
    """

    related: str
    label: Label | None = None
    columns: list[Identifier] = Spec(default_factory=list)
    sort: list[str] = Spec(default_factory=list)
    page_size: int = Spec(default=RELATED_PAGE_SIZE, ge=1, le=MAX_RELATED_PAGE)
    tab: Label | None = None
    new: bool = True

    @field_validator("related")
    @classmethod
    def _relation(cls, value: str) -> str:
        if not RELATION_RE.match(value):
            raise ValueError(f"invalid relation '{value}': write form.link, such as quote.opportunity")
        return value

    @field_validator("sort")
    @classmethod
    def _sort_keys(cls, value: list[str]) -> list[str]:
        for item in value:
            if not SORT_KEY_RE.match(item):
                raise ValueError(f"invalid sort key '{item}': use a field key, '-' for descending")
        return value

    @property
    def form_key(self) -> str:
        """The form whose records are listed."""
        return self.related.split(".", 1)[0]

    @property
    def link(self) -> str:
        """The link field of that form that points at the record shown."""
        return self.related.split(".", 1)[1]


class MakeAction(Strict):
    """A user action that creates a record of form `make` from the record shown.

    `values` are expressions over the source record (as in a `create` effect); `children`
    fill table fields of the new record, one row per row of a table field of the source.
    `store_in` names a link field of the source that receives the new record. Who may
    take it: anyone who may read the source record and create `make` records, and who
    holds one of `roles` when they are given (and may update the source with `store_in`).
    It is open while the record is in one of `states` (its workflow's) and `when` holds.
    """

    key: Identifier
    label: Label | None = None
    make: Identifier
    values: dict[Identifier, Expression] = Spec(default_factory=dict)
    children: dict[Identifier, ChildCopy] = Spec(default_factory=dict)
    store_in: Identifier | None = None
    roles: list[Identifier] = Spec(default_factory=list)
    states: list[Identifier] = Spec(default_factory=list)
    when: Expression | None = None
    when_message: Label | None = None

    def title(self, language: str = "en") -> str:
        """The label shown on the button; the key when no label is given."""
        return self.label.text(language) if self.label else self.key.replace("_", " ")
