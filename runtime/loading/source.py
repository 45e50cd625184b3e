"""Parse one YAML or JSON file into plain data plus the position of every key and value.

JSON is read by the same YAML 1.2 parser, so both formats get positions and
duplicate-key detection. Nothing here builds Python objects from tags: only
plain maps, lists and scalars come out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runtime.loading.problems import Problem

PathKey = tuple[str | int, ...]
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}
_TEXT_TAGS = {_CORE + "timestamp"}


@dataclass
class SourceFile:
    """One parsed definition file: its data and where each piece came from."""

    name: str
    data: Any = None
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    styles: dict[PathKey, str | None] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def inside(self, path: PathKey, offset: int, text: str, message: str) -> Problem:
        """A problem at character `offset` of the text scalar at `path` (quotes accounted for)."""
        if path not in self.values:
            return self.at(path, message)
        line, col = self.values[path]
        style = self.styles.get(path)
        before = text[:offset]
        newlines = before.count("\n")
        column_in_line = len(before) - (before.rfind("\n") + 1)
        if style in ("|", ">"):
            target = line + 1 + newlines
            indent = self._indent(target)
            return Problem(self.name, target, indent + 1 + column_in_line, message)
        if newlines:
            return Problem(self.name, line + newlines, 1, message)
        quote = 1 if style in ("'", '"') else 0
        return Problem(self.name, line, col + quote + offset, message)

    def _indent(self, line: int) -> int:
        if 0 < line <= len(self.lines):
            text = self.lines[line - 1]
            return len(text) - len(text.lstrip(" "))
        return 0

    def at(self, path: PathKey, message: str, *, key: bool = False) -> Problem:
        """A problem located at `path` (its key when `key`), or the nearest parent found."""
        table = self.keys if key else self.values
        probe = path
        while probe not in table and probe:
            probe = probe[:-1]
            table = self.values
        line, col = table.get(probe, (1, 1))
        return Problem(self.name, line, col, message)


def parse_text(text: str, name: str) -> SourceFile:
    """Parse YAML/JSON text; syntax errors and duplicate keys become problems.

    The pure-Python YAML parser is slow (most of a pack's load time), and the same files
    are read again and again — on each publish, each designer save, each runtime start —
    so parses are remembered by text and name; each caller gets its own copy of the data
    and problems (the positions are only read, and shared).
    """
    parsed = _parsed(text, name)
    return replace(parsed, data=copy.deepcopy(parsed.data), problems=list(parsed.problems))


@lru_cache(maxsize=1024)
def _parsed(text: str, name: str) -> SourceFile:
    source = SourceFile(name, lines=text.splitlines())
    yaml = YAML(typ="safe", pure=True)
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        source.problems.append(Problem(name, line, col, f"syntax error: {reason}"))
        return source
    except YAMLError as exc:  # e.g. control characters the reader refuses
        source.problems.append(Problem(name, 1, 1, f"syntax error: {str(exc).splitlines()[0]}"))
        return source
    if node is None:
        source.problems.append(Problem(name, 1, 1, "the file is empty"))
        return source
    source.data = _build(node, (), source, yaml)
    return source


def parse_file(path: Path, display_name: str | None = None) -> SourceFile:
    """Read and parse a file; an unreadable or non-UTF-8 file becomes a problem."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        source = SourceFile(name)
        source.problems.append(Problem(name, 1, 1, f"cannot read the file: {exc}"))
        return source
    return parse_text(text, name)


def _position(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(
    node: Node, path: PathKey, source: SourceFile, yaml: YAML, open_nodes: tuple[int, ...] = ()
) -> Any:
    source.values[path] = _position(node)
    if id(node) in open_nodes:
        line, col = _position(node)
        source.problems.append(Problem(source.name, line, col, "an alias refers to itself"))
        return None
    open_nodes = (*open_nodes, id(node))
    tag = str(node.tag)
    if tag not in _PLAIN_TAGS and tag not in _TEXT_TAGS:
        line, col = _position(node)
        source.problems.append(Problem(source.name, line, col, f"unsupported tag '{tag}'"))
        return None
    if isinstance(node, MappingNode):
        return _build_mapping(node, path, source, yaml, open_nodes)
    if isinstance(node, SequenceNode):
        return [_build(item, (*path, i), source, yaml, open_nodes) for i, item in enumerate(node.value)]
    assert isinstance(node, ScalarNode)
    source.styles[path] = node.style
    if tag in _TEXT_TAGS:
        return node.value
    try:
        return _joined_surrogates(yaml.constructor.construct_object(node, deep=True))
    except (ValueError, KeyError, YAMLError):
        line, col = _position(node)
        kind = tag.rsplit(":", 1)[-1]
        source.problems.append(Problem(source.name, line, col, f"'{node.value}' is not a valid {kind}"))
        return None


def _joined_surrogates(value: Any) -> Any:
    """JSON writes characters beyond the BMP as escaped surrogate pairs (`\\ud83d\\ude00`);
    the YAML reader leaves them as two halves, which are joined back into one character here."""
    if isinstance(value, str) and any("\ud800" <= char <= "\udfff" for char in value):
        try:
            return value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            return value  # an unpaired half: the model refuses it with a located problem
    return value


def _build_mapping(
    node: MappingNode, path: PathKey, source: SourceFile, yaml: YAML, open_nodes: tuple[int, ...]
) -> Any:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            line, col = _position(key_node)
            source.problems.append(Problem(source.name, line, col, "a key must be plain text"))
            continue
        key = str(key_node.value)
        child = (*path, key)
        if key in result:
            first_line = source.keys[child][0]
            line, col = _position(key_node)
            source.problems.append(
                Problem(source.name, line, col, f"duplicate key '{key}' (first at line {first_line})")
            )
            continue
        source.keys[child] = _position(key_node)
        result[key] = _build(value_node, child, source, yaml, open_nodes)
    return result


@dataclass(frozen=True)
class FormSource:
    """Where a form was written: its file and the path of the form inside it."""

    source: SourceFile
    prefix: PathKey
    # Lists that lost items when a part in error was salvaged (runtime/loading/salvage.py):
    # (path of the list, written index of each item kept).
    moved: tuple[tuple[PathKey, tuple[int, ...]], ...] = ()

    def place(self, path: PathKey) -> PathKey:
        """The full path in the file of `path` inside this form (or other part)."""
        if not self.moved:
            return (*self.prefix, *path)
        moved = dict(self.moved)
        written: list[str | int] = []
        for part in path:
            kept = moved.get(tuple(written))
            if isinstance(part, int) and kept is not None and part < len(kept):
                part = kept[part]
            written.append(part)
        return (*self.prefix, *written)

    def at(self, path: PathKey, message: str, *, key: bool = False) -> Problem:
        """A problem at `path` inside this form."""
        return self.source.at(self.place(path), message, key=key)

    def inside(self, path: PathKey, offset: int, text: str, message: str) -> Problem:
        """A problem at character `offset` of the expression text at `path`."""
        return self.source.inside(self.place(path), offset, text, message)
