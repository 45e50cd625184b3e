"""Checks of scenario files against their pack: every form, field, action, state, approval
step, user, record, uploaded file, dashboard and widget a scenario names must exist (each
problem with a 'did you mean'), and a record must be named before a step uses it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.scenarios.model import (
    AdvanceStep,
    ApproveStep,
    AtStep,
    CheckStep,
    CreateStep,
    DelegateStep,
    DeleteStep,
    FindStep,
    MergeStep,
    RejectStep,
    ScenarioHead,
    Setup,
    Step,
    TransferStep,
    TransitionStep,
    UpdateStep,
    UploadStep,
    UserStep,
)
from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.source import PathKey, SourceFile, parse_file
from runtime.model import App

if TYPE_CHECKING:
    from builder.scenarios.loading import LoadedStep, Run


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
