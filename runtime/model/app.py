"""Apps and forms: the top of the definition model."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Discriminator, Tag, field_validator
from pydantic import Field as Spec

from runtime.model.calendar import Calendar
from runtime.model.common import Identifier, Label, Strict
from runtime.model.dashboard import Dashboard
from runtime.model.document import Document, TemplateName, TemplateText
from runtime.model.fields import Expression, Field, LinkField, TableField
from runtime.model.intake import Intake
from runtime.model.process import Approval, Automation, Workflow
from runtime.model.record_page import MakeAction, RelatedList

SORT_KEY = r"^-?[a-z][a-z0-9_]*$"


class Section(Strict):
    """A part of the form layout: a titled block of fields in one to four columns.

    Sections with a `tab` are shown under that tab; consecutive sections with the same tab
    share it.
    """

    section: Label
    columns: int = Spec(default=1, ge=1, le=4)
    tab: Label | None = None
    fields: list[Identifier] = Spec(min_length=1)


# The tags of the layout's two kinds of items (they appear in validation error locations).
LAYOUT_TAGS = ("Section", "RelatedList")


def _layout_kind(value: Any) -> str:
    """A layout item with `related` is a related list; anything else is read as a section."""
    if isinstance(value, dict):
        return "RelatedList" if "related" in value else "Section"
    return "RelatedList" if isinstance(value, RelatedList) else "Section"


LayoutItem = Annotated[
    Annotated[Section, Tag("Section")] | Annotated[RelatedList, Tag("RelatedList")],
    Discriminator(_layout_kind),
]


class Rule(Strict):
    """A check every saved record must pass; a failure answers 422 with the message."""

    check: Expression
    message: Label
    fields: list[Identifier] = Spec(default_factory=list)


OPERATIONS = ("create", "read", "update", "delete", "export")


class Permission(Strict):
    """What some roles may do with a form's records, and on which records.

    `scope` is `own` (created by or owned by the caller), `team` (the same for anyone in
    the caller's department or below it), `all`, or a condition in the expression
    language, which can use CURRENT_USER().
    """

    roles: list[Identifier] = Spec(min_length=1)
    can: list[Literal["create", "read", "update", "delete", "export"]] = Spec(min_length=1)
    scope: str = "all"


class Role(Strict):
    """A role users can hold; forms grant permissions to roles."""

    key: Identifier
    label: Label | None = None


class ListView(Strict):
    """Defaults of the list view: its columns and sort order (`-field` sorts descending)."""

    columns: list[Identifier] = Spec(default_factory=list)
    sort: list[str] = Spec(default_factory=list)
    page_size: int = Spec(default=50, ge=1, le=500)

    @field_validator("sort")
    @classmethod
    def _sort_keys(cls, value: list[str]) -> list[str]:
        import re

        for item in value:
            if not re.match(SORT_KEY, item):
                raise ValueError(f"invalid sort key '{item}': use a field key, '-' for descending")
        return value


class Backlink(Strict):
    """The records of another form that link to this one, named for expressions.

    `{key: payments, form: payment, link: account}` on the account form lets its formulas
    and conditions aggregate the payments whose `account` is the record:
    `SUM(payments.amount WHERE status == 'confirmed')`, `COUNT(payments)`.
    """

    key: Identifier
    form: Identifier
    link: Identifier


class Form(Strict):
    """A form: one table of records, its fields, layout and list defaults."""

    form: Identifier
    label: Label
    title_field: Identifier | None = None
    child: bool = False
    single: bool = False
    renamed_from: Identifier | None = None
    fields: list[Field] = Spec(min_length=1)
    layout: list[LayoutItem] = Spec(default_factory=list)
    list_view: ListView = Spec(default_factory=ListView, alias="list")
    rules: list[Rule] = Spec(default_factory=list)
    duplicates: list[list[Identifier]] = Spec(default_factory=list)
    owner_field: Identifier | None = None
    department_field: Identifier | None = None  # a department field the `team` scope counts too
    permissions: list[Permission] = Spec(default_factory=list)
    actions: list[MakeAction] = Spec(default_factory=list)
    backlinks: list[Backlink] = Spec(default_factory=list)

    @property
    def key(self) -> str:
        """The form's key."""
        return self.form

    def backlink(self, key: str) -> Backlink | None:
        """The backlink with this key, if any."""
        return next((b for b in self.backlinks if b.key == key), None)

    def sections(self) -> list[Section]:
        """The layout's sections of fields (without its related lists)."""
        return [item for item in self.layout if isinstance(item, Section)]

    def related_lists(self) -> list[RelatedList]:
        """The layout's related lists, in order."""
        return [item for item in self.layout if isinstance(item, RelatedList)]

    def related_list(self, relation: str) -> RelatedList | None:
        """The related list of `relation` (`form.link`), if the layout has one."""
        return next((r for r in self.related_lists() if r.related == relation), None)

    def action(self, key: str) -> MakeAction | None:
        """The make action with this key, if any."""
        return next((a for a in self.actions if a.key == key), None)

    def field(self, key: str) -> Field | None:
        """The field with this key, if any."""
        return next((f for f in self.fields if f.key == key), None)

    def stored_fields(self) -> list[Field]:
        """Fields that have a column of their own (all but child tables)."""
        return [f for f in self.fields if not isinstance(f, TableField)]

    def table_fields(self) -> list[TableField]:
        """Fields holding child rows."""
        return [f for f in self.fields if isinstance(f, TableField)]

    def link_fields(self) -> list[LinkField]:
        """Fields referring to another form's records."""
        return [f for f in self.fields if isinstance(f, LinkField)]


class App(Strict):
    """An app: a named, versioned set of forms, workflows, approvals, automations, dashboards
    and documents."""

    app: Identifier = Spec(max_length=20)
    label: Label
    version: str = Spec(pattern=r"^\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$")
    description: Label | None = None
    default_region: str = Spec(default="CN", pattern=r"^[A-Z]{2}$")
    currency: str = Spec(default="CNY", pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    calendar: Calendar = Spec(default_factory=Calendar)
    roles: list[Role] = Spec(default_factory=list)
    forms: list[Form] = Spec(default_factory=list)
    workflows: list[Workflow] = Spec(default_factory=list)
    approvals: list[Approval] = Spec(default_factory=list)
    automations: list[Automation] = Spec(default_factory=list)
    dashboards: list[Dashboard] = Spec(default_factory=list)
    intakes: list[Intake] = Spec(default_factory=list)
    documents: list[Document] = Spec(default_factory=list)
    # The documents' templates by file name: the `.j2` files of `documents/` in a folder pack.
    document_templates: dict[TemplateName, TemplateText] = Spec(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}'; use a name such as Asia/Shanghai") from exc
        return value

    def zone(self) -> ZoneInfo:
        """The app's time zone: it decides the date parts of auto numbers."""
        return ZoneInfo(self.timezone)

    @property
    def key(self) -> str:
        """The app's key."""
        return self.app

    def form(self, key: str) -> Form | None:
        """The form with this key, if any."""
        return next((f for f in self.forms if f.form == key), None)

    def workflow_of(self, form: str) -> Workflow | None:
        """The workflow of a form, if it has one."""
        return next((w for w in self.workflows if w.form == form), None)

    def approval(self, key: str) -> Approval | None:
        """The approval with this key, if any."""
        return next((a for a in self.approvals if a.approval == key), None)

    def intake(self, key: str) -> Intake | None:
        """The public intake with this key, if any."""
        return next((i for i in self.intakes if i.intake == key), None)

    def dashboard(self, key: str) -> Dashboard | None:
        """The dashboard with this key, if any."""
        return next((d for d in self.dashboards if d.dashboard == key), None)

    def document(self, key: str) -> Document | None:
        """The document with this key, if any."""
        return next((d for d in self.documents if d.document == key), None)

    def documents_of(self, form: str) -> list[Document]:
        """The documents a form's records render to."""
        return [d for d in self.documents if d.form == form]

    def top_forms(self) -> list[Form]:
        """Forms that have their own endpoints (not child forms)."""
        return [f for f in self.forms if not f.child]
