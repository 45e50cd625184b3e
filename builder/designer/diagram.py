"""A workflow drawn from its definition: states in columns by distance from the initial state,
transitions as arrows labelled with their action. No positions are stored anywhere; the
picture always follows the definition.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 44, 90, 36, 24


@dataclass
class Node:
    """A state's box."""

    key: str
    label: str
    x: float
    y: float
    initial: bool = False
    final: bool = False


@dataclass
class Edge:
    """A transition's arrow: an SVG path and where its label sits."""

    action: str
    path: str
    label_x: float
    label_y: float
    system: bool = False


@dataclass
class Diagram:
    """Everything the SVG template draws."""

    width: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def layout(workflow: dict[str, Any], language: str = "zh", names: dict[str, str] | None = None) -> Diagram:
    """Place the states of `workflow` and route its transitions; labels in `language`.

    `names` gives state labels (the state field's option labels) for states without one.
    """
    states = [s for s in workflow.get("states", []) if isinstance(s, dict) and s.get("key")]
    keys = [str(s["key"]) for s in states]
    transitions = [t for t in workflow.get("transitions", []) if isinstance(t, dict)]
    links = [(src, str(t.get("to")), t) for t in transitions for src in _sources(t, keys)]
    level = _levels(states, keys, links)
    columns: dict[int, list[str]] = {}
    for key in keys:
        columns.setdefault(level[key], []).append(key)
    nodes: dict[str, Node] = {}
    for column, members in sorted(columns.items()):
        for row, key in enumerate(members):
            state = next(s for s in states if str(s["key"]) == key)
            nodes[key] = Node(
                key,
                _text(state.get("label"), language) or (names or {}).get(key) or key,
                MARGIN + column * (BOX_W + GAP_X),
                MARGIN + row * (BOX_H + GAP_Y),
                bool(state.get("initial")),
                bool(state.get("final")),
            )
    width = MARGIN * 2 + (max(columns, default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max((len(m) for m in columns.values()), default=1) * (BOX_H + GAP_Y) + 40
    diagram = Diagram(width, height, list(nodes.values()))
    seen: dict[tuple[str, str], int] = {}
    for source, target, item in links:
        if source not in nodes or target not in nodes:
            continue
        count = seen.get((source, target), 0)
        seen[(source, target)] = count + 1
        diagram.edges.append(_edge(nodes[source], nodes[target], item, count))
    return diagram


def _sources(transition: dict[str, Any], keys: list[str]) -> list[str]:
    given = transition.get("from")
    if given == "*":
        return list(keys)
    return [str(s) for s in (given if isinstance(given, list) else [given]) if s]


def _levels(
    states: list[dict[str, Any]], keys: list[str], links: list[tuple[str, str, Any]]
) -> dict[str, int]:
    start = next((str(s["key"]) for s in states if s.get("initial")), keys[0] if keys else "")
    level = {start: 0} if start else {}
    queue = deque([start] if start else [])
    while queue:
        here = queue.popleft()
        for source, target, _ in links:
            if source == here and target in keys and target not in level:
                level[target] = level[here] + 1
                queue.append(target)
    deepest = max(level.values(), default=0)
    for key in keys:
        level.setdefault(key, deepest + 1)
    return level


def _edge(a: Node, b: Node, item: dict[str, Any], count: int) -> Edge:
    action = str(item.get("action", ""))
    system = bool(item.get("system") or item.get("auto"))
    if a is b:
        x, y = a.x + BOX_W * 0.7, a.y
        path = f"M {x:.0f} {y:.0f} c 10 -34 44 -34 34 {6 + count * 4:.0f}"
        return Edge(action, path, x + 30, y - 30 - count * 12, system)
    ax, ay = a.x + BOX_W / 2, a.y + BOX_H / 2
    bx, by = b.x + BOX_W / 2, b.y + BOX_H / 2
    start, end = _border(a, bx, by), _border(b, ax, ay)
    bend = (18 + 16 * count) * (1 if (a.x, a.y) < (b.x, b.y) else -1)
    mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
    length = math.hypot(end[0] - start[0], end[1] - start[1]) or 1
    cx, cy = mx - (end[1] - start[1]) / length * bend, my + (end[0] - start[0]) / length * bend
    path = f"M {start[0]:.0f} {start[1]:.0f} Q {cx:.0f} {cy:.0f} {end[0]:.0f} {end[1]:.0f}"
    return Edge(action, path, (mx + cx) / 2, (my + cy) / 2 - 4, system)


def _border(node: Node, towards_x: float, towards_y: float) -> tuple[float, float]:
    """Where the line from the box's centre towards a point leaves the box."""
    cx, cy = node.x + BOX_W / 2, node.y + BOX_H / 2
    dx, dy = towards_x - cx, towards_y - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(
        (BOX_W / 2) / abs(dx) if dx else math.inf,
        (BOX_H / 2) / abs(dy) if dy else math.inf,
    )
    return cx + dx * scale, cy + dy * scale


def _text(label: Any, language: str) -> str:
    if isinstance(label, dict):
        return str(label.get(language) or label.get("en") or label.get("zh") or "")
    return str(label or "")
