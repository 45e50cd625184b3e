"""JSON Schemas of each form's records, as the API reads and writes them (for `/openapi.json`)."""

from __future__ import annotations

from typing import Any

from runtime.model.fields import NUMBER_TYPES
from runtime.records.compiled import CompiledApp, CompiledForm
from runtime.records.user_limits import limit_message

Schema = dict[str, Any]
REF = "#/components/schemas/"
DECIMAL_TEXT = r"^-?[0-9]+(\.[0-9]+)?$"

COMMON: dict[str, Schema] = {
    "Reference": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "display": {"type": ["string", "null"]}},
        "required": ["id", "display"],
        "description": "A linked record: its id and its title (null when you may not read that record).",
    },
    "FileInfo": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The file's random id: set attachment fields to it"},
            "name": {"type": "string"},
            "size": {"type": "integer"},
            "type": {"type": "string"},
            "checksum": {"type": "string"},
            "url": {"type": "string"},
        },
        "required": ["id", "name", "size", "type", "checksum", "url"],
    },
    "Problem": {
        "type": "object",
        "properties": {
            "field": {"type": ["string", "null"], "description": "Path such as lines[0].quantity"},
            "code": {"type": "string"},
            "message": {"type": "string"},
            "candidates": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "For code duplicate: the ids of the possible duplicates",
            },
        },
        "required": ["field", "code", "message"],
    },
    "History": {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "action": {
                            "type": "string",
                            "enum": [
                                "create",
                                "update",
                                "delete",
                                "merge",
                                "merged_into",
                                # process steps (runtime/process/history.py, docs/processes.md#9-history)
                                "transition",
                                "approval_started",
                                "approve",
                                "reject",
                                "delegate",
                                "transfer",
                                "approved",
                                "rejected",
                                "sent_back",
                                "approval_cancelled",
                                "timer",
                                "automation",
                                # make actions (runtime/process/make.py)
                                "make",
                                "made_from",
                            ],
                        },
                        "channel": {"type": "string"},
                        "user": {"anyOf": [{"$ref": REF + "Reference"}, {"type": "null"}]},
                        "at": {"type": "string", "format": "date-time"},
                        "changes": {"type": "object"},
                    },
                    "required": ["id", "action", "channel", "user", "at", "changes"],
                },
            }
        },
        "required": ["items"],
    },
    "ErrorList": {
        "type": "object",
        "properties": {"errors": {"type": "array", "items": {"$ref": REF + "Problem"}}},
        "required": ["errors"],
    },
}


def pascal(*parts: str) -> str:
    """`sales`, `quote_line` → `SalesQuoteLine`."""
    return "".join(word.capitalize() for part in parts for word in part.split("_"))


def schema_names(app: CompiledApp, form: CompiledForm) -> dict[str, str]:
    """Component names of a top-level form's read, create, update and page schemas."""
    base = pascal(app.app.app, form.key)
    return {"read": base, "create": base + "Create", "update": base + "Update", "page": base + "Page"}


def form_components(app: CompiledApp, form: CompiledForm) -> dict[str, Schema]:
    """Every component schema one top-level form needs, child rows included."""
    names = schema_names(app, form)
    components: dict[str, Schema] = {}
    child_refs: dict[str, tuple[str, str]] = {}
    for key, child in form.children.items():
        row = pascal(app.app.app, form.key, key, "row")
        components[row] = _read_schema(child, {}, child_row=True)
        components[row + "Input"] = _write_schema(child, {}, creating=True, child_row=True)
        child_refs[key] = (row, row + "Input")
    components[names["read"]] = _read_schema(form, child_refs)
    components[names["create"]] = _write_schema(form, child_refs, creating=True)
    components[names["update"]] = _write_schema(form, child_refs, creating=False)
    components[names["page"]] = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": REF + names["read"]}},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "next_offset": {"type": ["integer", "null"]},
            "total": {"type": "integer"},
        },
        "required": ["items", "limit", "offset", "next_offset"],
    }
    return components


def _read_schema(
    form: CompiledForm, child_refs: dict[str, tuple[str, str]], child_row: bool = False
) -> Schema:
    properties: dict[str, Schema] = {"id": {"type": "integer"}}
    if child_row:
        properties["position"] = {"type": "integer"}
    for key, field in form.fields.items():
        properties[key] = _nullable(_read_value(field.spec))
    for key, (row, _) in child_refs.items():
        properties[key] = {"type": "array", "items": {"$ref": REF + row}}
    if not child_row and form.form.duplicates:
        properties["merged_into"] = _nullable({"$ref": REF + "Reference"})
    if not child_row:
        properties.update(
            created_by=_nullable({"$ref": REF + "Reference"}),
            created_at={"type": "string", "format": "date-time"},
            updated_at={"type": "string", "format": "date-time"},
            version={"type": "integer"},
        )
    return {
        "type": "object",
        "title": form.form.label.text(),
        "properties": properties,
        "required": [k for k in ("id", "position", "created_at", "updated_at", "version") if k in properties],
        "additionalProperties": False,
    }


def _write_schema(
    form: CompiledForm, child_refs: dict[str, tuple[str, str]], *, creating: bool, child_row: bool = False
) -> Schema:
    properties: dict[str, Schema] = {}
    required: list[str] = []
    if child_row:
        properties["id"] = {
            "type": "integer",
            "minimum": 1,
            "description": "An existing row's id, to keep it when updating",
        }
    for key, field in form.writable().items():
        spec = field.spec
        properties[key] = _write_value(spec) if spec.required else _nullable(_write_value(spec))
        if spec.help:
            properties[key]["description"] = spec.help.text()
        if creating and spec.required and getattr(spec, "default", None) is None and spec.fetch is None:
            required.append(key)
    for key, (_, row_input) in child_refs.items():
        properties[key] = {"type": "array", "items": {"$ref": REF + row_input}}
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _read_value(spec: Any) -> Schema:
    kind = spec.type
    if kind in ("link", "user", "department"):
        return {"$ref": REF + "Reference"}
    if kind == "attachment":
        return {"$ref": REF + "FileInfo"}
    if kind in NUMBER_TYPES - {"integer"}:
        return {"type": "string", "pattern": DECIMAL_TEXT, "description": _number_note(kind)}
    return _write_value(spec)


def _write_value(spec: Any) -> Schema:
    kind = spec.type
    if kind in ("text", "long_text", "email", "phone", "url", "auto_number"):
        schema: Schema = {"type": "string"}
        if getattr(spec, "max_length", None):
            schema["maxLength"] = spec.max_length
        if kind == "email":
            schema["format"] = "email"
        return schema
    if kind == "integer":
        return _bounded({"type": "integer"}, spec)
    if kind in NUMBER_TYPES:
        number = _bounded({"type": "number"}, spec)
        return {
            "anyOf": [number, {"type": "string", "pattern": DECIMAL_TEXT}],
            "description": _number_note(kind),
        }
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "date":
        return {"type": "string", "format": "date"}
    if kind == "datetime":
        return {"type": "string", "format": "date-time"}
    if kind == "select":
        return {"type": "string", "enum": spec.option_keys()}
    if kind == "multi_select":
        return {"type": "array", "items": {"type": "string", "enum": spec.option_keys()}, "uniqueItems": True}
    if kind == "attachment":
        return {
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]{16,32}$",
            "description": "The id of an uploaded file (POST /api/v1/files) the caller may read",
        }
    if kind == "department":
        return {"type": "integer", "minimum": 1, "description": "The id of a department"}
    if kind == "user" and (spec.roles or spec.within):
        return {"type": "integer", "minimum": 1, "description": f"The id of a user: {limit_message(spec)}"}
    return {"type": "integer", "minimum": 1, "description": "The id of the referenced record"}


def _bounded(schema: Schema, spec: Any) -> Schema:
    if getattr(spec, "min", None) is not None:
        schema["minimum"] = float(spec.min) if schema["type"] == "number" else spec.min
    if getattr(spec, "max", None) is not None:
        schema["maximum"] = float(spec.max) if schema["type"] == "number" else spec.max
    return schema


def _number_note(kind: str) -> str:
    if kind == "percent":
        return "A fraction: 0.35 means 35 %. Read back as a decimal string."
    return "An exact decimal; read back as a decimal string."
