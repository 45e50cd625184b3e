"""Read scenario files: YAML with positions, examples expanded, every step validated and
checked against the pack, every problem reported as `file:line:col: message` at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from builder.scenarios.model import (
    STEP_KINDS,
    AdvanceStep,
    ApproveStep,
    AtStep,
    CheckStep,
    CreateStep,
    DelegateStep,
    DeleteStep,
    Department,
    FindStep,
    MergeStep,
    Person,
    RejectStep,
    ScenarioHead,
    Setup,
    Step,
    Suite,
    TransferStep,
    TransitionStep,
    UpdateStep,
    UploadStep,
    UserStep,
    kind_of,
    model_of,
)
from runtime.loading.model_errors import problems_from
from runtime.loading.problems import DefinitionError, Problem, did_you_mean
from runtime.loading.source import PathKey, SourceFile, parse_file
from runtime.model import App

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
    if found:
        if number == 0 or variables is not None:
            problems.extend(found)
        return None
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
        name += " [" + ", ".join(f"{k}={_text(v)}" for k, v in variables.items()) + "]"
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
    return run


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
        problems.append(source.at(path, f"a step needs one of {', '.join(STEP_KINDS)}"))
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
    return VARIABLE.sub(lambda m: _text(variables[m.group(1)]), value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


# -- checks against the pack --------------------------------------------------------------


class Checker:
    """Names a scenario uses that the pack does not have: forms, fields, actions, states,
    steps, users, records, dashboards and files, each with a 'did you mean'."""

    def __init__(self, app: App, pack: Path, source: SourceFile, problems: list[Problem]) -> None:
        self.app = app
        self.pack = pack
        self.source = source
        self.problems = problems
        self.demo_people = _demo_people(pack)

    def problem(self, path: PathKey, message: str, *, key: bool = False) -> None:
        self.problems.append(self.source.at(path, message, key=key))

    def setup(self, setup: Setup, path: PathKey) -> None:
        for form_key in setup.records:
            self.form(form_key, (*path, "records", form_key), at_key=True)

    def form(self, name: str, path: PathKey, *, at_key: bool = False) -> bool:
        forms = [f.key for f in self.app.forms if not f.child]
        if name not in forms:
            self.problem(path, f"unknown form '{name}'{did_you_mean(name, forms)}", key=at_key)
            return False
        return True

    def run(self, run: Run, scenario: ScenarioHead, path: PathKey) -> None:
        """Check one run's names in step order: a record is named before it is used."""
        people = {p.username for p in run.users} | (self.demo_people if run.demo_users else set())
        refs: dict[str, str] = {}
        files: set[str] = set()
        self.setup(scenario, path)
        for record in run.records:
            name = record.values.get("ref")
            if isinstance(name, str) and self.app.form(record.form) is not None:
                refs[name] = record.form
        if run.actor is not None and run.actor not in people:
            self.user(run.actor, people, path)
        for step in run.steps:
            _StepCheck(self, step, people, refs, files, run.actor).check()

    def user(self, name: str, people: set[str], path: PathKey) -> None:
        if name not in people:
            hint = did_you_mean(name, people)
            self.problem(path, f"unknown user '{name}'{hint}: add it under 'users' (or use demo_users)")


def _demo_people(pack: Path) -> set[str]:
    path = pack / "demo" / "users.yaml"
    if not path.is_file():
        return set()
    data = parse_file(path).data
    users = data.get("users", []) if isinstance(data, dict) else []
    return {str(u["username"]) for u in users if isinstance(u, dict) and "username" in u}


@dataclass
class _StepCheck:
    checker: Checker
    step: LoadedStep
    people: set[str]
    refs: dict[str, str]
    files: set[str]
    actor: str | None

    def check(self) -> None:
        spec, path = self.step.spec, self.step.path
        actor = spec.as_ if isinstance(spec, UserStep) else None
        if actor is not None:
            self.checker.user(actor, self.people, (*path, "as"))
        elif isinstance(spec, UserStep) and not isinstance(spec, FindStep) and self.actor is None:
            self.checker.problem(path, "who takes this step? give 'as' (or 'as' for the scenario)")
        form = self.target(spec, path)
        if isinstance(spec, TransitionStep) and form is not None:
            self.action(form, spec.transition, (*path, "transition"))
        if isinstance(spec, ApproveStep | RejectStep | DelegateStep | TransferStep) and form is not None:
            if spec.step is not None:
                self.approval_step(form, spec.step, (*path, "step"))
            if isinstance(spec, RejectStep) and spec.to_step not in (None, "start"):
                self.approval_step(form, str(spec.to_step), (*path, "to_step"))
        if isinstance(spec, DelegateStep | TransferStep):
            self.checker.user(spec.to, self.people, (*path, "to"))
        if isinstance(spec, MergeStep):
            for index, other in enumerate(spec.from_):
                self.ref(other, (*path, "from", index))
            for field_key, other in spec.values.items():
                if form is not None:
                    self.fields(form, [field_key], (*path, "values"))
                self.ref(other, (*path, "values", field_key))
        if isinstance(spec, CreateStep | UpdateStep | TransitionStep) and form is not None:
            self.values(form, spec.values, (*path, "values"))
        if isinstance(spec, UploadStep):
            self.upload(spec)
        self.expectations(form)
        if isinstance(spec, CreateStep | FindStep) and spec.ref is not None and form is not None:
            self.refs[spec.ref] = form
        if isinstance(spec, UploadStep):
            self.files.add(spec.upload)

    def target(self, spec: Step, path: PathKey) -> str | None:
        """The form of the record the step acts on (None when unknown or none)."""
        if isinstance(spec, CreateStep | FindStep):
            name = spec.create if isinstance(spec, CreateStep) else spec.find
            where = (*path, "create" if isinstance(spec, CreateStep) else "find")
            return name if self.checker.form(name, where) else None
        if isinstance(spec, TransitionStep):
            return self.ref(spec.record, (*path, "record"))
        for kind in ("update", "delete", "approve", "reject", "delegate", "transfer", "merge"):
            if kind == self.step.kind:
                return self.ref(str(getattr(spec, kind)), (*path, kind))
        return None

    def ref(self, name: str, path: PathKey) -> str | None:
        if name not in self.refs:
            self.checker.problem(path, f"unknown record '{name}'{did_you_mean(name, self.refs)}")
            return None
        return self.refs[name]

    def action(self, form: str, action: str, path: PathKey) -> None:
        workflow = self.checker.app.workflow_of(form)
        actions = [t.action for t in workflow.transitions] if workflow else []
        if action not in actions:
            where = f"of form '{form}'" if workflow else f"(form '{form}' has no workflow)"
            self.checker.problem(path, f"unknown action '{action}' {where}{did_you_mean(action, actions)}")

    def approval_step(self, form: str, step: str, path: PathKey) -> None:
        names = [s.name for a in self.checker.app.approvals if a.form == form for s in a.steps]
        if step not in names:
            self.checker.problem(
                path, f"unknown approval step '{step}' of form '{form}'{did_you_mean(step, names)}"
            )

    def fields(self, form: str, keys: list[str], path: PathKey, *, reading: bool = False) -> None:
        model = self.checker.app.form(form)
        if model is None:
            return
        known = [f.key for f in model.fields]
        if reading:
            known += ["id", "created_at", "updated_at", "created_by", "version"]
        for key in keys:
            if key not in known:
                self.checker.problem(
                    (*path, key),
                    f"unknown field '{key}' of form '{form}'{did_you_mean(key, known)}",
                    key=True,
                )

    def values(self, form: str, values: dict[str, Any], path: PathKey, *, reading: bool = False) -> None:
        self.fields(form, list(values), path, reading=reading)
        model = self.checker.app.form(form)
        if model is None:
            return
        for table in model.table_fields():
            rows = values.get(table.key)
            if isinstance(rows, list):
                for index, row in enumerate(rows):
                    if isinstance(row, dict):
                        keys = [k for k in row if k not in ("id", "row")]
                        self.fields(table.form, keys, (*path, table.key, index), reading=reading)
        self.links(values, path)

    def links(self, value: Any, path: PathKey) -> None:
        """`{ref: x}`, `{user: x}` and `{file: x}` inside values name what exists."""
        if isinstance(value, dict):
            if set(value) == {"ref"} and isinstance(value["ref"], str):
                self.ref(value["ref"], (*path, "ref"))
            elif set(value) == {"user"} and isinstance(value["user"], str):
                self.checker.user(value["user"], self.people, (*path, "user"))
            elif set(value) == {"file"} and isinstance(value["file"], str):
                if value["file"] not in self.files:
                    hint = did_you_mean(value["file"], self.files)
                    self.checker.problem(
                        (*path, "file"), f"unknown file '{value['file']}'{hint}: upload it first"
                    )
            else:
                for key, item in value.items():
                    self.links(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.links(item, (*path, index))

    def upload(self, spec: UploadStep) -> None:
        name = spec.file
        if name is None:
            return
        target = (self.checker.pack / name).resolve()
        if not target.is_relative_to(self.checker.pack.resolve()) or not target.is_file():
            self.checker.problem((*self.step.path, "file"), f"no file '{name}' in the pack folder")

    def expectations(self, form: str | None) -> None:
        raw = self.step.spec.expect
        if raw is None:
            return
        items = raw if isinstance(raw, list) else [raw]
        base: PathKey = (*self.step.path, "expect")
        for index, expect in enumerate(items):
            path = (*base, index) if isinstance(raw, list) else base
            spec = self.step.spec
            own = not isinstance(spec, AdvanceStep | AtStep | CheckStep | UploadStep | DeleteStep) and not (
                isinstance(spec, FindStep) and spec.ref is None
            )
            target = form if own else None
            if expect.record is not None:
                target = self.ref(expect.record, (*path, "record"))
            elif (expect.state is not None or expect.values is not None) and not own:
                self.checker.problem(path, "'state' and 'values' need 'record' after this step")
            if target is not None and expect.state is not None:
                workflow = self.checker.app.workflow_of(target)
                states = [s.key for s in workflow.states] if workflow else []
                if expect.state not in states:
                    self.checker.problem(
                        (*path, "state"),
                        f"unknown state '{expect.state}' of form '{target}'"
                        + did_you_mean(expect.state, states),
                    )
            if target is not None and expect.values is not None:
                self.values(target, expect.values, (*path, "values"), reading=True)
            refused = expect.status is not None or expect.field or expect.code or expect.message
            if refused and self.step.kind in ("advance", "at", "expect"):
                self.checker.problem(
                    path, "a refusal ('status', 'field', 'code', 'message') needs a user's step"
                )
            for user in expect.tasks or {}:
                self.checker.user(user, self.people, (*path, "tasks", user))
            for user, held in (expect.tasks or {}).items():
                for number, item in enumerate(held):
                    name = item if isinstance(item, str) else item.record
                    self.ref(name, (*path, "tasks", user, number))
            self.sent(expect.notifications, (*path, "notifications"), addresses=False)
            self.sent(expect.emails, (*path, "emails"), addresses=True)
            boards = expect.dashboard
            for number, board in enumerate(
                boards if isinstance(boards, list) else [boards] if boards else []
            ):
                where = (*path, "dashboard", number) if isinstance(boards, list) else (*path, "dashboard")
                self.dashboard(board, where)

    def sent(self, expected: Any, path: PathKey, *, addresses: bool) -> None:
        if isinstance(expected, dict):
            for user in expected:
                if not (addresses and "@" in user):
                    self.checker.user(user, self.people, (*path, user))
        elif isinstance(expected, list):
            for index, item in enumerate(expected):
                if not (addresses and "@" in item.to):
                    self.checker.user(item.to, self.people, (*path, index, "to"))

    def dashboard(self, board: Any, path: PathKey) -> None:
        app = self.checker.app
        self.checker.user(board.as_, self.people, (*path, "as"))
        keys = [d.dashboard for d in app.dashboards]
        key = board.dashboard
        if key is None:
            if len(keys) != 1:
                self.checker.problem(
                    path, f"which dashboard? give 'dashboard' (one of {', '.join(keys) or 'none'})"
                )
                return
            key = keys[0]
        found = app.dashboard(key)
        if found is None:
            self.checker.problem((*path, "dashboard"), f"unknown dashboard '{key}'{did_you_mean(key, keys)}")
            return
        widgets = [w.key for w in found.widgets]
        if board.widget not in widgets:
            hint = did_you_mean(board.widget, widgets)
            self.checker.problem(
                (*path, "widget"), f"unknown widget '{board.widget}' of dashboard '{key}'{hint}"
            )
