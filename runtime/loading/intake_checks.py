"""Load-time checks of public intakes against the forms they open to the public.

An intake may take only plain value fields a visitor can type (no links, users, files,
formulas or read-only fields); its fixed values must convert as the field would convert
them; it runs as a declared role (never `admin`) or a named user; and its honeypot must
not be a field. Each problem points at its place as `file:line:col`.
"""

from __future__ import annotations

from typing import Any

from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.salvage import NOTHING_BROKEN, Broken
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form
from runtime.model.intake import INTAKE_TYPES, Intake
from runtime.records.values import ValueProblem, converter_for

BUILT_IN_ROLES = ("public",)  # `admin` may do everything: a public door never runs as it


def check_intakes(
    app: App, where: dict[tuple[str, str], FormSource], broken: Broken = NOTHING_BROKEN
) -> list[Problem]:
    """Every problem of the app's intakes."""
    problems: list[Problem] = []
    for intake in app.intakes:
        _IntakeChecker(app, intake, where[("intakes", intake.intake)], problems, broken).check()
    return problems


class _IntakeChecker:
    def __init__(
        self, app: App, intake: Intake, at: FormSource, problems: list[Problem], broken: Broken
    ) -> None:
        self.app, self.intake, self.at, self.problems, self.broken = app, intake, at, problems, broken

    def fail(self, path: PathKey, message: str) -> None:
        self.problems.append(self.at.at(path, message))

    def check(self) -> None:
        intake = self.intake
        actor_known = self.actor()
        form = self.app.form(intake.form)
        if form is None:
            if not self.broken.quiet(intake.form):
                known = [f.form for f in self.app.top_forms()]
                self.fail(("form",), f"unknown form '{intake.form}'{did_you_mean(intake.form, known)}")
            return
        if form.child or form.single:
            self.fail(
                ("form",),
                f"'{form.form}' is a {'child' if form.child else 'single'} form; "
                "an intake creates records of a top-level form",
            )
            return
        seen: set[str] = set()
        for index, key in enumerate(intake.fields):
            if key in seen:
                self.fail(("fields", index), f"field '{key}' is listed twice")
            seen.add(key)
            self.field(form, ("fields", index), key)
        for index, key in enumerate(intake.hidden):
            if key not in intake.fields:
                self.fail(("hidden", index), f"hidden field '{key}' is not one of the intake's fields")
        if actor_known:
            self.may_create(form)
        self.values(form, "defaults", intake.defaults)
        self.values(form, "flag", intake.flag)
        if intake.flag and intake.on_duplicate != "keep":
            self.fail(("flag",), "flag marks a kept duplicate: it needs on_duplicate: keep")
        if form.field(intake.honeypot) is not None:
            self.fail(
                ("honeypot",),
                f"the honeypot '{intake.honeypot}' is a field of {form.form}; "
                "name an input the form does not have",
            )
        if intake.on_duplicate == "merge" and not form.duplicates:
            self.fail(("on_duplicate",), f"{form.form} has no duplicate groups to merge by")

    def actor(self) -> bool:
        """True when the role the intake runs as is one it may run as."""
        role = self.intake.as_role
        if role is None:
            return True
        known = [*BUILT_IN_ROLES, *(r.key for r in self.app.roles)]
        if role == "admin":
            self.fail(("as_role",), "an intake never runs as admin; name a role with the rights it needs")
            return False
        if role not in known:
            if not self.broken.role_known(role):
                hint = did_you_mean(role, known)
                self.fail(("as_role",), f"unknown role '{role}'{hint}; declare it in app.yaml")
            return False
        return True

    def may_create(self, form: Form) -> None:
        """A role the intake runs as must be granted `create` on the form (a user is checked when used)."""
        if self.intake.as_user is not None:
            return
        role = self.intake.as_role or "public"
        if not any(role in p.roles and "create" in p.can for p in form.permissions):
            where = ("as_role",) if self.intake.as_role else ("form",)
            message = f"role '{role}' may not create {form.form} records; grant it create, or name another"
            self.fail(where, message)

    def field(self, form: Form, path: PathKey, key: str) -> Any:
        """The field `key` of the form if a visitor may fill it; else a problem and None."""
        field = form.field(key)
        if field is None:
            if not self.broken.quiet(key):
                known = [f.key for f in form.fields]
                self.fail(path, f"unknown field '{key}' of {form.form}{did_you_mean(key, known)}")
            return None
        if field.type not in INTAKE_TYPES:
            self.fail(path, f"an intake takes typed values only; '{key}' is a {field.type} field")
            return None
        if field.formula is not None or field.read_only or getattr(field, "fetch", None) is not None:
            self.fail(path, f"'{key}' is computed or read-only; an intake cannot set it")
            return None
        return field

    def values(self, form: Form, name: str, fixed: dict[str, Any]) -> None:
        for key, value in fixed.items():
            field = self.field(form, (name, key), key)
            if field is None:
                continue
            try:
                converted = converter_for(self.app, field)(value)
            except ValueProblem as problem:
                self.fail((name, key), f"{name} value of '{key}': {problem}")
                continue
            if converted is None and field.required:
                self.fail((name, key), f"'{key}' is required: give it a value")
