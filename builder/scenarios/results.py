"""What a scenario run found: its failures, located in the scenario file, and its trail."""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.scenarios.loading import Run


@dataclass
class Failure:
    """One thing that did not hold, located in the scenario file."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Result:
    """How one run went on one database."""

    run: Run
    database: str
    failures: list[Failure] = field(default_factory=list)
    trail: list[str] = field(default_factory=list)
    expectations: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def name(self) -> str:
        return f"{self.run.title} [{self.database}]"
