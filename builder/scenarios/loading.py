"""Read scenario files: YAML with positions, examples expanded, every step validated and
checked against the pack, every problem reported as `file:line:col: message` at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from builder.scenarios.checks import Checker
from builder.scenarios.model import (
    STEP_KINDS,
    Department,
    Person,
    ScenarioHead,
    Setup,
    Step,
    Suite,
    kind_of,
    model_of,
)
from runtime.loading.model_errors import problems_from
from runtime.loading.problems import DefinitionError, Problem, did_you_mean
from runtime.loading.source import PathKey, SourceFile, parse_file
from runtime.model import App

STEP_KEYS = {
    name if field.alias is None else field.alias
    for model in {model_of(kind) for kind in STEP_KINDS}
    for name, field in model.model_fields.items()
}
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
TESTS_FOLDER = "tests"
SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class LoadedStep:
    """One step of a run: its kind, its validated keys and where it is written."""

    kind: str
    spec: Step
    path: PathKey
    raw: dict[str, Any]


@dataclass
class SetupRecord:
    """A record the setup writes before the steps."""

    form: str
    values: dict[str, Any]
    path: PathKey


@dataclass
class Run:
    """One scenario, once (or once per example): what it starts from and its steps."""

    suite: LoadedSuite
    name: str
    path: PathKey
    start: str
    actor: str | None
    demo_users: bool
    demo_data: bool
    departments: list[Department]
    users: list[Person]
    records: list[SetupRecord]
    steps: list[LoadedStep]
    example: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        return f"{self.suite.title} › {self.name}"


@dataclass
class LoadedSuite:
    """A scenario file of a pack and the runs it holds."""

    pack: Path
    file: Path
    source: SourceFile
    title: str
    runs: list[Run] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The file as messages name it: relative to the pack folder (`tests/lead_sla.yaml`)."""
        return self.source.name

    def at(self, path: PathKey, *, key: bool = False) -> str:
        """`file:line:col` of a place in the file."""
        problem = self.source.at(path, "", key=key)
        return f"{problem.file}:{problem.line}:{problem.col}"


def scenario_files(path: Path) -> list[tuple[Path, Path]]:
    """(pack folder, scenario file) for a pack folder (its tests/ folder) or a scenario file."""
    if path.is_dir():
        folder = path / TESTS_FOLDER
        if not folder.is_dir():
            return []
        return [(path, f) for f in sorted(folder.iterdir()) if f.is_file() and f.suffix in SUFFIXES]
    if path.parent.name != TESTS_FOLDER:
        raise DefinitionError(
            [Problem(str(path), 1, 1, "a scenario file belongs in the tests/ folder of a pack folder")]
        )
    return [(path.parent.parent, path)]


def load_suite(pack: Path, file: Path, app: App) -> LoadedSuite:
    """Read one scenario file; raises DefinitionError with every problem it has."""
    name = file.relative_to(pack).as_posix() if file.is_relative_to(pack) else str(file)
    source = parse_file(file, name)
    if source.problems:
        raise DefinitionError(source.problems)
    problems: list[Problem] = []
    if not isinstance(source.data, dict):
        raise DefinitionError([source.at((), "a scenario file is a map with 'scenarios'")])
    suite = _validate(Suite, source.data, source, (), problems)
    if suite is None:
        raise DefinitionError(problems)
    loaded = LoadedSuite(pack, file, source, suite.suite or file.stem)
    checker = Checker(app, pack, source, problems)
    checker.setup(suite, ())
    for index, raw in enumerate(suite.scenarios):
        path: PathKey = ("scenarios", index)
        if not isinstance(raw, dict):
            problems.append(source.at(path, "a scenario is a map with 'name' and 'steps'"))
            continue
        examples = raw.get("examples") or [None]
        if not isinstance(examples, list):
            examples = [None]
        for number, example in enumerate(examples):
            run = _expand(loaded, suite, raw, path, example, number, problems, checker)
            if run is not None:
                loaded.runs.append(run)
    if problems:
        raise DefinitionError(problems)
    return loaded


def _expand(
    suite: LoadedSuite,
    head: Suite,
    raw: dict[str, Any],
    path: PathKey,
    example: Any,
    number: int,
    problems: list[Problem],
    checker: Checker,
) -> Run | None:
    """One run of a scenario: `{{ key }}` replaced by the example's values, then validated."""
    source = suite.source
    variables: dict[str, Any] | None = None
    if example is not None:
        if not isinstance(example, dict):
            problems.append(source.at((*path, "examples", number), "an example is a map of values"))
            return None
        variables = example
    body = {k: v for k, v in raw.items() if k != "examples"}
    found: list[Problem] = []
    expanded = _substitute(body, variables, path, source, found)
    problems.extend(found)  # and go on: the scenario's other problems are reported too
    scenario = _validate(ScenarioHead, {**expanded, "examples": []}, source, path, problems)
    if scenario is None:
        return None
    steps: list[LoadedStep] = []
    for index, step in enumerate(scenario.steps):
        loaded = _step(step, (*path, "steps", index), source, problems)
        if loaded is not None:
            steps.append(loaded)
    name = scenario.name
    if variables is not None and not VARIABLE.search(str(raw.get("name", ""))):
        name += " [" + ", ".join(f"{k}={as_text(v)}" for k, v in variables.items()) + "]"
    start = scenario.start or head.start
    if start is None:
        problems.append(source.at(path, "missing required key 'start' (here or at the top of the file)"))
        return None
    run = Run(
        suite=suite,
        name=name,
        path=path,
        start=start,
        actor=scenario.as_ or head.as_,
        demo_users=bool(scenario.demo_users if scenario.demo_users is not None else head.demo_users),
        demo_data=bool(scenario.demo_data if scenario.demo_data is not None else head.demo_data),
        departments=[*head.departments, *scenario.departments],
        users=[*head.users, *scenario.users],
        records=[*_records(head, ()), *_records(scenario, path)],
        steps=steps,
        example=variables,
    )
    checker.run(run, scenario, path)
    return None if found else run


def _records(setup: Setup, path: PathKey) -> list[SetupRecord]:
    return [
        SetupRecord(form, dict(record), (*path, "records", form, index))
        for form, records in setup.records.items()
        for index, record in enumerate(records)
    ]


def _step(raw: Any, path: PathKey, source: SourceFile, problems: list[Problem]) -> LoadedStep | None:
    if not isinstance(raw, dict):
        problems.append(source.at(path, "a step is a map, such as {create: lead, values: {…}}"))
        return None
    kinds = kind_of(raw)
    if not kinds:
        needs = f"a step needs one of {', '.join(STEP_KINDS)}"
        unknown = [k for k in raw if isinstance(k, str) and k not in STEP_KEYS]
        if unknown:
            hint = did_you_mean(unknown[0], STEP_KINDS)
            problems.append(
                source.at((*path, unknown[0]), f"unknown step kind '{unknown[0]}'{hint}: {needs}", key=True)
            )
        else:
            problems.append(source.at(path, needs))
        return None
    if len(kinds) > 1:
        problems.append(
            source.at(
                (*path, kinds[1]), f"a step takes one kind; this one has {' and '.join(kinds)}", key=True
            )
        )
        return None
    kind = kinds[0]
    spec = _validate(model_of(kind), raw, source, path, problems)
    return None if spec is None else LoadedStep(kind, spec, path, raw)


def _validate(
    model: type[BaseModel], raw: Any, source: SourceFile, prefix: PathKey, problems: list[Problem]
) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems.extend(problems_from(exc, model, source, raw, prefix))
        return None


def _substitute(
    value: Any, variables: dict[str, Any] | None, path: PathKey, source: SourceFile, problems: list[Problem]
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, variables, (*path, k), source, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables, (*path, i), source, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "{{" not in value:
        return value
    for match in VARIABLE.finditer(value):
        key = match.group(1)
        if variables is None:
            problems.append(
                source.inside(path, match.start(), value, f"'{key}' needs 'examples' to take from")
            )
        elif key not in variables:
            hint = did_you_mean(key, variables)
            problems.append(source.inside(path, match.start(), value, f"no example key '{key}'{hint}"))
    if variables is None or any(m.group(1) not in variables for m in VARIABLE.finditer(value)):
        return value
    whole = VARIABLE.fullmatch(value.strip())
    if whole:
        return variables[whole.group(1)]
    return VARIABLE.sub(lambda m: as_text(variables[m.group(1)]), value)


def as_text(value: Any) -> str:
    """An example's value as names and messages show it (`true`, `null`, `0.35`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
