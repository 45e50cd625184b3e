"""The definition model: pydantic classes every other layer reads."""

from runtime.model.app import App, Backlink, Form, ListView, Section
from runtime.model.common import Labels
from runtime.model.fields import FIELD_TYPES, Field, Option
from runtime.model.record_page import MakeAction, RelatedList

__all__ = [
    "FIELD_TYPES",
    "App",
    "Backlink",
    "Field",
    "Form",
    "Labels",
    "ListView",
    "MakeAction",
    "Option",
    "RelatedList",
    "Section",
]
