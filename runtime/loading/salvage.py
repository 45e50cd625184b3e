"""What is left of a definition that failed validation, so the rest of it is still checked.

A pack with mistakes in several files should report all of them in one run. The model
errors of a part are reported as they are; the part is then *salvaged*: unknown keys and
values in error are left out (a required key in error gets a neutral placeholder), a list
item that cannot stand without its bad key is left out whole, and a field that cannot be
read at all becomes a `StubField`. The checks across parts then run on what is left.

What was left out is remembered in `Broken`, so the checks do not report follow-ups of
a mistake already reported: a reference to a form, field, state, action, step or
approval that failed to load is not "unknown", and an expression that names a stub field
is not checked (the scope marks such names, see `runtime.expressions.types.scope_for`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError

from runtime.loading.model_errors import data_path
from runtime.loading.source import PathKey
from runtime.model.fields import Field, LongTextField

# Keys that name a part other parts refer to: a dropped part's names are not "unknown".
IDENTITY = ("key", "action", "name", "approval", "workflow", "automation", "dashboard", "document")
MAX_REPAIRS = 500
FIELD = TypeAdapter(Field)


class StubField(LongTextField):
    """A field whose definition failed to load: it exists (so references to it are not
    unknown), but nothing is checked against its type."""

    stub: ClassVar[bool] = True


def is_stub(spec: Any) -> bool:
    """True for a field that stands in for one that failed to load."""
    return bool(getattr(spec, "stub", False))


@dataclass
class Broken:
    """What failed to load, so that checks of what refers to it stay quiet."""

    forms: set[str] = field(default_factory=set)  # forms (by key as written) that did not load
    names: set[str] = field(default_factory=set)  # keys, states, actions, steps, roles … left out
    workflow_forms: set[str] = field(default_factory=set)  # forms whose workflow did not load whole
    roles: bool = False  # the app's list of roles did not load: role names are not checked

    def quiet(self, name: str) -> bool:
        """True when a reference to `name` may point at something that failed to load
        (written alike: a key refused for its capitals is still the one meant)."""
        lost = {n.lower() for n in self.names | self.forms}
        return name.lower() in lost

    def role_known(self, name: str) -> bool:
        """True when a role name cannot be judged: the roles, or this one, did not load."""
        return self.roles or self.quiet(name)


NOTHING_BROKEN = Broken()


@dataclass
class Salvaged:
    """A part as far as it could be read, and where its list items came from.

    `moved` maps the path of a list that lost items to the written index of each item
    kept, so problems found on what is left point at the right place in the file.
    """

    item: Any
    moved: dict[PathKey, tuple[int, ...]] = field(default_factory=dict)


def salvage(
    validate: Callable[[Any], Any],
    data: Any,
    broken: Broken,
    placeholders: dict[str, Any] | None = None,
    prepare: Callable[[Any, Broken, Callable[[PathKey, int], None]], None] | None = None,
) -> Salvaged:
    """Validate `data`, leaving out what is in error until the rest validates.

    `placeholders` stand in for required top-level keys in error; `prepare` may fix the
    data up first (it is given the working copy and a function to drop a list item).
    """
    work = copy.deepcopy(data)
    lists: dict[int, tuple[PathKey, list[int]]] = {}
    _index(work, (), lists)

    def drop(path: PathKey, index: int) -> None:
        holder = _node(work, path)
        assert isinstance(holder, list)
        broken.names.update(names_in(holder[index]))
        del holder[index]
        lists[id(holder)][1].pop(index)

    if prepare is not None:
        prepare(work, broken, drop)
    for _ in range(MAX_REPAIRS):
        try:
            item = validate(work)
        except ValidationError as exc:
            error = exc.errors()[0]
            path = data_path(work, tuple(error["loc"]))
            if not _repair(work, path, error["type"], placeholders or {}, drop, broken):
                return Salvaged(None)
            continue
        moved = {path: tuple(kept) for path, kept in lists.values() if len(kept) != _written(data, path)}
        return Salvaged(item, moved)
    return Salvaged(None)


def _repair(
    work: Any,
    path: PathKey,
    kind: str,
    placeholders: dict[str, Any],
    drop: Callable[[PathKey, int], None],
    broken: Broken,
) -> bool:
    """Leave out what the error at `path` is about; False when nothing can be left out."""
    if kind == "missing":
        if len(path) == 1 and path[0] in placeholders:
            work[path[0]] = placeholders[str(path[0])]
            return True
        return _drop_item(path[:-1], drop)
    path = _written_part(work, path)  # a union's error names its member after the value
    if not path:
        return False
    parent = _node(work, path[:-1])
    last = path[-1]
    if isinstance(parent, list) and isinstance(last, int):
        drop(path[:-1], last)
    elif len(path) == 1 and last in placeholders and parent[last] != placeholders[str(last)]:
        parent[last] = placeholders[str(last)]
    else:
        broken.names.update(names_in({last: parent[last]}))  # a name refused is still the one meant
        del parent[last]
    return True


def _drop_item(path: PathKey, drop: Callable[[PathKey, int], None]) -> bool:
    """Drop the innermost list item holding `path`; False when no list holds it."""
    for end in range(len(path), 0, -1):
        if isinstance(path[end - 1], int):
            drop(path[: end - 1], int(path[end - 1]))
            return True
    return False


def salvage_fields(work: Any, broken: Broken, drop: Callable[[PathKey, int], None]) -> None:
    """A form's fields, each read alone: a field in error keeps its type when leaving out
    its bad options is enough, else becomes a stub; one without a usable key is dropped."""
    fields = work.get("fields") if isinstance(work, dict) else None
    if not isinstance(fields, list):
        return
    for index in range(len(fields) - 1, -1, -1):
        raw = fields[index]
        try:
            fields[index] = FIELD.validate_python(raw)
            continue
        except ValidationError:
            pass
        kept = salvage(FIELD.validate_python, raw, broken).item
        if kept is not None:
            fields[index] = kept
            continue
        key = raw.get("key") if isinstance(raw, dict) else None
        try:
            fields[index] = StubField.model_validate({"key": key, "type": "long_text"})
        except ValidationError:
            drop(("fields",), index)


def names_in(raw: Any) -> Iterator[str]:
    """The names a part defines, at any depth (`key`, `action`, `name`, …)."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key in IDENTITY and isinstance(value, str):
                yield value
            else:
                yield from names_in(value)
    elif isinstance(raw, list):
        for item in raw:
            yield from names_in(item)


def _index(node: Any, path: PathKey, lists: dict[int, tuple[PathKey, list[int]]]) -> None:
    if isinstance(node, list):
        lists[id(node)] = (path, list(range(len(node))))
        for i, item in enumerate(node):
            _index(item, (*path, i), lists)
    elif isinstance(node, dict):
        for key, value in node.items():
            _index(value, (*path, key), lists)


def _node(data: Any, path: PathKey) -> Any:
    node = data
    for part in path:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _written_part(data: Any, path: PathKey) -> PathKey:
    """The longest start of `path` that names a key or item present in `data`."""
    node = data
    for end, part in enumerate(path):
        present = (isinstance(node, dict) and isinstance(part, str) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        )
        if not present:
            return path[:end]
        node = node[part]
    return path


def _written(data: Any, path: PathKey) -> int:
    node = _node(data, path)
    return len(node) if isinstance(node, list) else -1
