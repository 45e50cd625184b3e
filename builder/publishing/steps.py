"""What a publish does: steps in words and SQL, with their risks, refusals and actions."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

DdlAction = Callable[[Operations], None]
DataAction = Callable[[Connection], None]


@dataclass
class Action:
    """One thing a step does: DDL through Alembic's operations, or a data change."""

    kind: str  # "ddl" or "data"
    run: Callable[[Any], None]
    note: str = ""


@dataclass
class Step:
    """One change of the plan, described for people and carried out by its actions."""

    table: str
    words: str
    actions: list[Action] = field(default_factory=list)
    risk: str | None = None
    refused: str | None = None
    coercible: bool = False

    def ddl(self, run: DdlAction) -> Step:
        """Add a DDL action."""
        self.actions.append(Action("ddl", run))
        return self

    def data(self, run: DataAction, note: str) -> Step:
        """Add a data action, described by `note` in the plan's SQL."""
        self.actions.append(Action("data", run, note))
        return self

    def refuse(self, reason: str, coercible: bool = False) -> Step:
        """Refuse the step for `reason`; with several reasons, it is coercible only if each is."""
        self.coercible = coercible if self.refused is None else self.coercible and coercible
        self.refused = reason if self.refused is None else f"{self.refused}; {reason}"
        return self

    def warn(self, risk: str) -> Step:
        """Note the rows a step puts at risk (several notes join)."""
        self.risk = risk if self.risk is None else f"{self.risk}; {risk}"
        return self


@dataclass
class Plan:
    """Every step of one app's publish, and whether it may go ahead."""

    app: str
    version: str
    steps: list[Step] = field(default_factory=list)
    coerce: bool = False

    @property
    def refusals(self) -> list[Step]:
        """Steps that stop the publish (coercible ones only when not coercing)."""
        return [s for s in self.steps if s.refused and not (self.coerce and s.coercible)]

    @property
    def empty(self) -> bool:
        """True when the database already matches."""
        return not self.steps

    def render(self, dialect: str) -> str:
        """The plan in words, with each step's SQL for `dialect`."""
        if self.empty:
            return f"{self.app} {self.version}: nothing to change"
        lines = [f"Plan for {self.app} {self.version}: {len(self.steps)} step(s)"]
        for number, step in enumerate(self.steps, 1):
            mark = "REFUSED" if step in self.refusals else "forced" if step.refused else ""
            lines.append(f"{number:>3}. [{step.table}] {step.words}" + (f"  ({mark})" if mark else ""))
            if step.risk:
                lines.append(f"       ! {step.risk}")
            if step.refused:
                lines.append(f"       ✗ {step.refused}")
            lines.extend(f"       {sql}" for sql in preview(step, dialect))
        if self.refusals:
            lines.append(f"{len(self.refusals)} step(s) refused: nothing will be changed.")
            if any(s.coercible for s in self.refusals):
                lines.append(
                    "Steps marked coercible can be forced with --coerce: the values that do not "
                    "fit are written to a backup file first, then changed."
                )
        return "\n".join(lines)

    def as_json(self) -> list[dict[str, Any]]:
        """The steps as recorded with the published version."""
        return [
            {
                "table": s.table,
                "words": s.words,
                "risk": s.risk,
                "refused": s.refused,
                "forced": bool(s.refused and self.coerce),
            }
            for s in self.steps
        ]


def preview(step: Step, dialect: str) -> list[str]:
    """The SQL of a step's DDL for `dialect` (Alembic offline mode), and notes for data changes."""
    lines: list[str] = []
    for action in step.actions:
        if action.kind == "data":
            lines.append(f"-- {action.note}")
            continue
        buffer = io.StringIO()
        context = MigrationContext.configure(
            dialect_name=dialect, opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True}
        )
        try:
            action.run(Operations(context))
        except NotImplementedError:
            lines.append("-- (SQLite: applied by copying the table, Alembic's batch mode)")
            continue
        lines.extend(line for line in buffer.getvalue().strip().splitlines() if line.strip())
    return lines
