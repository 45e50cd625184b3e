"""Turn pydantic validation errors into located, plain-language problems."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.source import PathKey, SourceFile
from runtime.model.app import LAYOUT_TAGS
from runtime.model.fields import FIELD_TYPES

Loc = tuple[str | int, ...]


# Errors whose message already says what is wrong, with no need to name the key.
SELF_EXPLAINING = {
    "identifier",
    "rate",
    "origin",
    "intake_actor",
    "webhook_url",
    "reserved_name",
    "pattern_invalid",
    "auto_number_pattern",
    "option_repeated",
    "duration",
    "recipient",
    "effect",
    "timer",
    "step",
    "automation",
    "measure",
    "dimension",
    "widget",
}


def problems_from(
    error: ValidationError, root: type[BaseModel], source: SourceFile, raw: Any, prefix: PathKey
) -> list[Problem]:
    """One problem per pydantic error, located in `source` under `prefix`."""
    problems = []
    for item in error.errors():
        loc: Loc = tuple(item["loc"])
        path = (*prefix, *data_path(raw, loc))
        problems.append(_problem(item, loc, path, root, source))
    return problems


def data_path(raw: Any, loc: Loc) -> PathKey:
    """The path in the data for a pydantic loc: union tags such as 'text' (a field's type) or
    'RelatedList' (a kind of layout item) are dropped."""
    path: list[str | int] = []
    node = raw
    for part in loc:
        is_tag = isinstance(node, dict) and isinstance(part, str) and part not in node
        if (is_tag and node.get("type") == part) or part in LAYOUT_TAGS:
            continue
        path.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(path)


def _problem(item: Any, loc: Loc, path: PathKey, root: type[BaseModel], source: SourceFile) -> Problem:
    kind = item["type"]
    name = str(path[-1]) if path else "value"
    if kind == "extra_forbidden":
        allowed = keys_of(root, loc[:-1])
        return source.at(path, f"unknown key '{name}'{did_you_mean(name, allowed)}", key=True)
    if kind == "missing":
        return source.at(path[:-1], f"missing required key '{name}'")
    if kind == "union_tag_invalid" and item["ctx"]["tag"] in (None, "None"):
        return source.at((*path, "type"), "a field needs a 'type'")
    if kind == "union_tag_invalid":
        tag = str(item["ctx"]["tag"])
        return source.at((*path, "type"), f"unknown field type '{tag}'{did_you_mean(tag, FIELD_TYPES)}")
    if kind == "union_tag_not_found":
        return source.at(path, "a field needs a 'type'")
    if kind in SELF_EXPLAINING:
        return source.at(path, str(item["msg"]))
    if kind == "literal_error":
        expected = item["ctx"]["expected"]
        return source.at(path, f"invalid {name} {item['input']!r}: expected {expected}")
    message = str(item["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    message = message[:1].lower() + message[1:]
    return source.at(path, f"{name}: {message}" if path else message)


def keys_of(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model accepts at `loc` (used for 'did you mean')."""
    current: list[Any] = [root]
    for part in loc:
        current = [nxt for tp in current for nxt in _step(tp, part)]
    keys: list[str] = []
    for tp in current:
        for model in _members(tp):
            if _is_model(model):
                keys.extend(f.alias or n for n, f in model.model_fields.items())
    return keys


def _step(tp: Any, part: str | int) -> list[Any]:
    found: list[Any] = []
    for member in _members(tp):
        if isinstance(part, int) and typing.get_origin(member) is list:
            found.extend(_members(typing.get_args(member)[0]))
        elif _is_model(member):
            fields = {(f.alias or n): f for n, f in member.model_fields.items()}
            if isinstance(part, str) and part in fields:
                found.append(fields[part].annotation)
            elif _tag(member) == part or (part in LAYOUT_TAGS and member.__name__ == part):
                found.append(member)
    return found


def _members(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return str(args[0]) if args else None
