"""Documents: quotes, contracts and other papers rendered from a record by a Jinja2 template.

A document (`documents/quote.yaml` of a pack, or the app's list `documents`) names a
top-level form and the template its records render with; `choose_by` names a select
field of the form whose value picks the template from `templates` (a contract's template
choice), `template` being the one used for every other value. Templates are the `.j2`
files of `documents/` (or the app's map `document_templates` in a single-file pack).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, model_validator
from pydantic import Field as Spec
from pydantic_core import PydanticCustomError

from runtime.model.common import Identifier, Label, Strict
from runtime.model.fields import Expression

TEMPLATE_SUFFIX = ".j2"
TEMPLATE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,98}\.j2$")
MAX_TEMPLATE = 200_000  # characters of one template


def check_template_name(value: str) -> str:
    """A template's file name: letters, digits, `_`, `.` and `-`, ending in `.j2`."""
    if not TEMPLATE_NAME_RE.match(value):
        raise PydanticCustomError(
            "template_name",
            "invalid template name '{value}': name a file of documents/ ending in .j2, such as quote.html.j2",
            {"value": value},
        )
    return value


TemplateName = Annotated[str, AfterValidator(check_template_name)]
TemplateText = Annotated[str, Spec(max_length=MAX_TEMPLATE)]


class Document(Strict):
    """A document a form's records render to, as HTML and PDF.

    `template` is the template used; with `choose_by` (a select field of the form) the
    record's value picks one of `templates` (option key → template), `template` being the
    fallback for values not listed (without it those records have no document). `when`
    limits the records that offer it; `roles` the users (besides admins) who may render
    it, on top of reading the record; `language` fixes the language of labels, option
    names, money and dates (default: the reader's).
    """

    document: Identifier
    form: Identifier
    label: Label
    template: TemplateName | None = None
    choose_by: Identifier | None = None
    templates: dict[str, TemplateName] = Spec(default_factory=dict)
    when: Expression | None = None
    roles: list[Identifier] = Spec(default_factory=list)
    language: Literal["zh", "en"] | None = None

    @model_validator(mode="after")
    def _some_template(self) -> Document:
        if self.template is None and not self.templates:
            raise PydanticCustomError("document", "a document needs 'template' or 'templates'")
        if bool(self.templates) != (self.choose_by is not None):
            raise PydanticCustomError("document", "'templates' and 'choose_by' go together")
        return self

    def template_for(self, choice: object) -> str | None:
        """The template of a record whose `choose_by` field holds `choice` (None: no document)."""
        if self.choose_by is not None and isinstance(choice, str) and choice in self.templates:
            return self.templates[choice]
        return self.template

    def template_names(self) -> list[str]:
        """Every template the document may use."""
        names = [self.template] if self.template else []
        return names + [t for t in self.templates.values() if t not in names]
