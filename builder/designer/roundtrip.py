"""Edit definition files without losing what people wrote: comments, key order, quoting, layout.

A file is read with ruamel.yaml's round-trip loader (its own indentation is detected and
kept). `merge` then changes the loaded document to equal a plain value, touching only
what differs: mappings keep their key order (new keys go last), list items that name
themselves (`key`, `name`, `action`, …) are matched by that name so their comments move
with them, and a scalar that did not change keeps its original spelling and quotes.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

# Keys that name a list item, in the order they are tried.
IDENTITIES = ("key", "name", "action", "form", "workflow", "approval", "dashboard", "state")
# Small mappings written inline, as consultants write them: `label: {zh: …, en: …}`.
INLINE = {"label", "help", "message", "guard_message", "section", "tab", "title"}


class Document:
    """One definition file, loaded for round-trip editing."""

    def __init__(self, path: Path, data: Any, yaml: YAML) -> None:
        self.path = path
        self.data = data
        self.yaml = yaml

    def text(self) -> str:
        """The document as it would be written."""
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return out.getvalue()

    def save(self) -> None:
        """Write the document back to its file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.text(), encoding="utf-8")


def open_document(path: Path, empty: Any = None) -> Document:
    """The file at `path` (or a new document holding `empty` when there is no file)."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        yaml = _yaml(*_list_indent(text))
        return Document(path, yaml.load(text), yaml)
    document = CommentedMap()
    merge(document, empty or {})
    return Document(path, document, _yaml(4, 2))


def merge(target: Any, value: Any, key: str | None = None) -> Any:
    """`target` changed in place (where it can be) to equal `value`; answers the result."""
    if isinstance(value, dict) and isinstance(target, CommentedMap):
        for old in [k for k in target if k not in value]:
            del target[old]
        for name, item in value.items():
            if name in target:
                target[name] = merge(target[name], item, name)
            else:
                target[name] = _fresh(item, name)
        return target
    if isinstance(value, list) and isinstance(target, CommentedSeq):
        return _merge_list(target, value, key)
    if _same_scalar(target, value):
        return target
    return _fresh(value, key)


def plain(value: Any) -> Any:
    """A loaded document as plain dicts, lists and scalars (for JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def _merge_list(target: CommentedSeq, value: list[Any], key: str | None) -> CommentedSeq:
    ids = [_identity(item) for item in value]
    if any(i is None for i in ids) or len(set(ids)) != len(ids):
        return _merge_by_position(target, value, key)
    wanted = dict(zip(ids, value, strict=True))
    for index in reversed(range(len(target))):
        if _identity(target[index]) not in wanted:
            del target[index]
    for index, identity in enumerate(ids):
        found = next((i for i in range(index, len(target)) if _identity(target[i]) == identity), None)
        if found is None:
            target.insert(index, _fresh(wanted[identity], key))
        else:
            if found != index:
                target.insert(index, target.pop(found))
            target[index] = merge(target[index], wanted[identity], key)
    return target


def _merge_by_position(target: CommentedSeq, value: list[Any], key: str | None) -> CommentedSeq:
    while len(target) > len(value):
        del target[len(target) - 1]
    for index, item in enumerate(value):
        if index < len(target):
            target[index] = merge(target[index], item, key)
        else:
            target.append(_fresh(item, key))
    return target


def _identity(item: Any) -> Any:
    if isinstance(item, dict):
        for name in IDENTITIES:
            if name in item and isinstance(item[name], str):
                return (name, item[name])
        return None
    return ("value", item) if isinstance(item, str | int) else None


def _same_scalar(old: Any, new: Any) -> bool:
    if isinstance(old, dict | list) or isinstance(new, dict | list):
        return False
    if isinstance(old, bool) or isinstance(new, bool):
        return old is new
    return type(old) is not type(None) and str(old) == str(new) and _kind(old) == _kind(new)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else type(value).__name__


def _fresh(value: Any, key: str | None) -> Any:
    """A new node for `value`: labels and short lists of scalars inline, the rest in blocks."""
    if isinstance(value, dict):
        node = CommentedMap()
        for name, item in value.items():
            node[name] = _fresh(item, name)
        if key in INLINE or (key is None and _small(value)) or _option_like(value):
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_fresh(item, key) for item in value)
        if all(not isinstance(item, dict | list) for item in value):
            seq.fa.set_flow_style()
        return seq
    return value


def _small(value: dict[str, Any]) -> bool:
    return all(not isinstance(v, dict | list) for v in value.values()) and len(value) <= 3


def _option_like(value: dict[str, Any]) -> bool:
    return set(value) <= {"key", "label", "group"} and "key" in value


def _list_indent(text: str) -> tuple[int, int]:
    """How the file indents block lists: (columns from a key to an item's keys, the dash's offset).

    Read off the first block list item under a key; files without one get the common
    `- ` two columns in (4, 2).
    """
    lines = text.splitlines()
    for above, line in itertools.pairwise(lines):
        stripped = line.lstrip(" ")
        if stripped.startswith("- ") and above.rstrip().endswith(":") and not above.lstrip().startswith("#"):
            offset = len(line) - len(stripped) - (len(above) - len(above.lstrip(" ")))
            return offset + 2, offset
    return 4, 2


def _yaml(sequence: int, offset: int) -> YAML:
    """A dumper writing lists as the file does: `sequence` columns to an item's keys, the dash at `offset`."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.brace_single_entry_mapping_in_flow_sequence = True  # `[{role: finance}]` stays as written
    yaml.width = 4096
    yaml.indent(mapping=max(sequence - offset, 2), sequence=sequence, offset=offset)
    return yaml
