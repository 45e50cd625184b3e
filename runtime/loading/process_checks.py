"""Load-time checks of workflows, approvals and automations against the forms they name.

Every reference (form, field, state, action, approval, role) and every expression and
message template is checked, and each problem points at its place as `file:line:col`.
A definition whose form failed to load is still checked in every part that does not
depend on the form; what failed to load (`Broken`) is not reported again as unknown.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cronsim import CronSim, CronSimError
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from runtime.expressions.types import BOOLEAN, REF, Scope, Type, field_type, filter_scope, scope_for
from runtime.loading.dashboard_checks import check_dashboard
from runtime.loading.expression_checks import check_expression
from runtime.loading.problems import Problem, did_you_mean
from runtime.loading.salvage import NOTHING_BROKEN, Broken, is_stub
from runtime.loading.source import FormSource, PathKey
from runtime.model import App, Form
from runtime.model.common import SYSTEM_COLUMNS
from runtime.model.fields import SelectField, TableField
from runtime.model.process import ANY_STATE, ASSIGNEES, Approval, Automation, Effect, Recipient, Workflow

PROCESS_KINDS = ("workflows", "approvals", "automations", "dashboards")
BUILT_IN_ROLES = ("admin", "public")
DATE_TYPES = ("date", "datetime")
ANY = Type("any")  # a material expression may give any value
TEMPLATES = SandboxedEnvironment(autoescape=False)


def check_process(
    app: App, where: dict[tuple[str, str], FormSource], broken: Broken = NOTHING_BROKEN
) -> list[Problem]:
    """Every problem of the app's workflows, approvals, automations and dashboards."""
    problems: list[Problem] = []
    seen_forms: dict[str, str] = {}
    for workflow in app.workflows:
        at = where[("workflows", workflow.workflow)]
        Checker(app, at, problems, broken).workflow(workflow, seen_forms)
    for approval in app.approvals:
        Checker(app, where[("approvals", approval.approval)], problems, broken).approval(approval)
    for automation in app.automations:
        Checker(app, where[("automations", automation.automation)], problems, broken).automation(automation)
    for dashboard in app.dashboards:
        check_dashboard(app, dashboard, where[("dashboards", dashboard.dashboard)], problems, broken)
    return problems


class Checker:
    """Checks one process definition, collecting problems at their positions."""

    def __init__(
        self, app: App, at: FormSource, problems: list[Problem], broken: Broken = NOTHING_BROKEN
    ) -> None:
        self.app = app
        self.at = at
        self.problems = problems
        self.broken = broken

    def written(self, path: PathKey) -> bool:
        """True when `path` exists in the file as written."""
        full = self.at.place(path)
        return full in self.at.source.values or full in self.at.source.keys

    def fail(self, path: PathKey, message: str) -> None:
        """Note a problem at `path` of the definition."""
        self.problems.append(self.at.at(path, message))

    def missing(self, path: PathKey, what: str, name: str, known: list[str]) -> None:
        """Note an unknown name, unless it may name something that failed to load."""
        if not self.broken.quiet(name):
            self.fail(path, self.unknown(what, name, known))

    def scope(self, form: Form | None) -> Scope | None:
        """The expression scope of a form; None when the form failed to load."""
        return scope_for(self.app, form) if form is not None else None

    def workflow_known(self, form_key: str) -> bool:
        """False when the form's workflow failed to load: its states and actions are unknown here."""
        return form_key not in self.broken.workflow_forms and form_key not in self.broken.forms

    # -- the three kinds ---------------------------------------------------------------

    def workflow(self, workflow: Workflow, seen_forms: dict[str, str]) -> None:
        """States match the state field's options; transitions and timers refer to real things."""
        form = self.top_form(workflow.form, ("form",))
        if workflow.form in seen_forms:
            self.fail(("form",), f"form '{workflow.form}' already has workflow '{seen_forms[workflow.form]}'")
        seen_forms[workflow.form] = workflow.workflow
        options: list[str] | None = None
        if form is not None:
            spec = form.field(workflow.field)
            if isinstance(spec, SelectField):
                options = spec.option_keys()
            elif not is_stub(spec):
                self.fail(("field",), f"the state field must be a select field of {form.form}")
        states = self.unique([s.key for s in workflow.states], ("states",), "key", "state")
        for index, state in enumerate(workflow.states):
            if options is not None and state.key not in options:
                self.fail(
                    ("states", index, "key"), f"state '{state.key}' is not an option of {workflow.field}"
                )
        if len([s for s in workflow.states if s.initial]) > 1:
            self.fail(("states",), "only one state can be initial")
        for index, state in enumerate(workflow.states):
            self.material(form, state.material, ("states", index, "material"))
        actions = self.unique([t.action for t in workflow.transitions], ("transitions",), "action", "action")
        scope = self.scope(form)
        for index, transition in enumerate(workflow.transitions):
            path: PathKey = ("transitions", index)
            for i, source in enumerate(transition.from_):
                if source != ANY_STATE and source not in states:
                    self.missing((*path, "from", i), "state", source, states)
            if transition.to not in states:
                self.missing((*path, "to"), "state", transition.to, states)
            self.roles(transition.roles, (*path, "roles"))
            self.condition(transition.allowed, scope, (*path, "allowed"))
            self.condition(transition.guard, scope, (*path, "guard"))
            for key_list in ("fields", "require"):
                for i, key in enumerate(getattr(transition, key_list)):
                    self.writable(form, key, (*path, key_list, i), workflow.field)
            for i, key in enumerate(transition.require):
                if key not in transition.fields:
                    self.fail((*path, "require", i), f"'{key}' must also be listed in fields")
            if transition.auto and (transition.roles or transition.allowed):
                self.fail((*path, "auto"), "an automatic transition is taken by the engine: drop roles")
            self.effects(form, workflow.form, transition.effects, (*path, "effects"), actions, workflow.field)
        self.unique([t.key for t in workflow.timers], ("timers",), "key", "timer")
        for index, timer in enumerate(workflow.timers):
            path = ("timers", index)
            for i, timer_state in enumerate(timer.state):
                if timer_state not in states:
                    self.missing((*path, "state", i), "state", timer_state, states)
            if timer.field is not None and form is not None:
                target = form.field(timer.field)
                if not is_stub(target) and (target is None or target.type not in DATE_TYPES):
                    self.fail(
                        (*path, "field"), f"'{timer.field}' is not a date or datetime field of {form.form}"
                    )
            self.condition(timer.when, scope, (*path, "when"))
            self.effects(form, workflow.form, timer.effects, (*path, "effects"), actions, workflow.field)

    def approval(self, approval: Approval) -> None:
        """Steps, routing conditions, approver sources and outcomes refer to real things."""
        form = self.top_form(approval.form, ("form",))
        scope = self.scope(form)
        self.condition(approval.starts_when, scope, ("starts_when",))
        names = self.unique([s.name for s in approval.steps], ("steps",), "name", "step")
        for index, step in enumerate(approval.steps):
            path: PathKey = ("steps", index)
            self.condition(step.when, scope, (*path, "when"))
            self.recipients(form, step.approvers, (*path, "approvers"))
            self.recipients(form, step.cc, (*path, "cc"), in_step=True)
            self.recipients(form, step.remind_to, (*path, "remind_to"), in_step=True)
            earlier = step.reject_to in ("start", *names[:index])
            if not earlier and not self.broken.quiet(step.reject_to):
                self.fail((*path, "reject_to"), "reject_to must be 'start' or the name of an earlier step")
        self.recipients(form, approval.cc, ("cc",))
        self.material(form, approval.material, ("material",))
        if approval.on_change == "reapprove" and not approval.material:
            self.fail(("on_change",), "on_change: reapprove needs a list of material fields")
        workflow = self.app.workflow_of(approval.form)
        actions = [t.action for t in workflow.transitions] if workflow else []
        states = [s.key for s in workflow.states] if workflow else []
        if workflow is not None or self.workflow_known(approval.form):
            for index, key in enumerate(approval.released_in):
                if key not in states:
                    self.missing(("released_in", index), "state", key, states)
        state_field = workflow.field if workflow else None
        for outcome in ("on_approved", "on_rejected", "on_reapprove", "on_withdrawn"):
            self.effects(form, approval.form, getattr(approval, outcome), (outcome,), actions, state_field)

    def automation(self, automation: Automation) -> None:
        """Trigger options, the condition and the effects refer to real things."""
        form = self.top_form(automation.form, ("form",))
        scope = self.scope(form)
        workflow = self.app.workflow_of(automation.form)
        known = workflow is not None or self.workflow_known(automation.form)
        actions = [t.action for t in workflow.transitions] if workflow else []
        for i, key in enumerate(automation.fields):
            if form is not None and form.field(key) is None:
                self.missing(("fields", i), "field", key, [f.key for f in form.fields])
        self.condition(automation.becomes, scope, ("becomes",))
        self.condition(automation.when, scope, ("when",))
        if automation.trigger == "transitioned" and workflow is None and known:
            self.fail(("trigger",), f"form '{automation.form}' has no workflow to transition")
        if automation.action is not None and automation.action not in actions and known:
            self.missing(("action",), "action", automation.action, actions)
        states = [s.key for s in workflow.states] if workflow else []
        if automation.to is not None and automation.to not in states and known:
            self.missing(("to",), "state", automation.to, states)
        if automation.cron is not None:
            try:
                CronSim(automation.cron, _epoch())
            except CronSimError as exc:
                self.fail(("cron",), f"invalid cron expression: {exc}")
        state_field = workflow.field if workflow else None
        self.effects(form, automation.form, automation.effects, ("effects",), actions, state_field)

    # -- effects -----------------------------------------------------------------------

    def effects(
        self,
        form: Form | None,
        form_key: str,
        effects: list[Effect],
        path: PathKey,
        actions: list[str],
        state_field: str | None,
    ) -> None:
        """Each effect names things that exist, with expressions of the right types.

        `form` is None when the form `form_key` failed to load: what depends on it is skipped.
        """
        scope = self.scope(form)
        for index, effect in enumerate(effects):
            where: PathKey = (*path, index)
            self.condition(effect.when, scope, (*where, "when"))
            check = getattr(self, f"_effect_{effect.kind}")
            check(form, scope, effect, where, actions, state_field, form_key)

    def _effect_set(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *context: Any
    ) -> None:
        state_field = context[1]
        for key, text in (effect.set or {}).items():
            if key == state_field:
                self.fail((*path, "set", key), "the state field changes only through transitions")
                continue
            if form is not None and self.writable(form, key, (*path, "set", key), None):
                self.typed(text, scope, field_type(form.field(key)), (*path, "set", key))

    def _effect_create(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *_: Any
    ) -> None:
        spec = effect.create
        assert spec is not None
        where: PathKey = (*path, "create")
        target = self.top_form(spec.form, (*where, "form"))
        if target is not None:
            self.mapping(target, spec.values, scope, (*where, "values"))
        if spec.store_in is not None and spec.for_each is not None:
            self.fail((*where, "store_in"), "store_in keeps one record: it cannot go with for_each")
        elif spec.store_in is not None and form is not None and target is not None:
            link = form.field(spec.store_in)
            if getattr(link, "to", None) != target.form and not is_stub(link):
                self.fail(
                    (*where, "store_in"),
                    f"'{spec.store_in}' is not a link field of {form.form} to {target.form}",
                )
        if spec.match is not None:
            self.match(form, target, spec.match, spec.for_each is not None, (*where, "match"))
        if spec.for_each is not None:
            child = self.child_form(form, spec.for_each, (*where, "for_each"))
            if child is not None and target is not None:
                self.mapping(target, spec.row_values, scope_for(self.app, child), (*where, "row_values"))
        elif spec.row_values:
            self.fail((*where, "row_values"), "row_values go with for_each")
        for key, copy in spec.children.items():
            target_child = self.child_form(target, key, (*where, "children", key))
            source_child = self.child_form(form, copy.from_, (*where, "children", key, "from"))
            if target_child is not None:
                child_scope = scope_for(self.app, source_child) if source_child is not None else None
                self.mapping(target_child, copy.values, child_scope, (*where, "children", key, "values"))

    def _effect_notify(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *_: Any
    ) -> None:
        spec = effect.notify
        assert spec is not None
        self.recipients(form, spec.to, (*path, "notify", "to"))
        for language in ("zh", "en"):
            text = getattr(spec.message, language)
            if text is None:
                continue
            try:
                TEMPLATES.from_string(text)
            except TemplateSyntaxError as exc:
                self.fail((*path, "notify", "message", language), f"template error: {exc.message}")

    def _effect_webhook(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *_: Any
    ) -> None:
        """The fields a webhook sends must be fields of the form."""
        spec = effect.webhook
        assert spec is not None
        if form is None or spec.fields is None:
            return
        known = [f.key for f in form.fields]
        for index, key in enumerate(spec.fields):
            if key not in known and key not in SYSTEM_COLUMNS:
                self.missing((*path, "webhook", "fields", index), "field", key, known)

    def _effect_start_approval(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *context: Any
    ) -> None:
        form_key = context[2]
        approval = self.app.approval(effect.start_approval or "")
        if approval is None:
            names = [a.approval for a in self.app.approvals]
            self.missing((*path, "start_approval"), "approval", str(effect.start_approval), names)
        elif approval.form != form_key:
            self.fail((*path, "start_approval"), f"approval '{approval.approval}' is on form {approval.form}")

    def _effect_transition(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *context: Any
    ) -> None:
        actions, form_key = context[0], context[2]
        if effect.transition not in actions and (actions or self.workflow_known(form_key)):
            self.missing((*path, "transition"), "action", str(effect.transition), actions)

    def _effect_assign(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *_: Any
    ) -> None:
        spec = effect.assign
        assert spec is not None
        if form is not None:
            target = form.field(spec.field)
            if not is_stub(target) and (target is None or target.type != "user"):
                self.fail((*path, "assign", "field"), f"'{spec.field}' is not a user field of {form.form}")
        self.recipients(form, spec.to, (*path, "assign", "to"))

    def _effect_document(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *context: Any
    ) -> None:
        from runtime.loading.document_checks import check_document_effect

        check_document_effect(self, form, effect, path, context[2])

    def _effect_email(
        self, form: Form | None, scope: Scope | None, effect: Effect, path: PathKey, *_: Any
    ) -> None:
        from runtime.loading.email_checks import check_email_effect

        check_email_effect(self, form, effect, path)

    # -- pieces ------------------------------------------------------------------------

    def recipients(
        self, form: Form | None, recipients: list[Recipient], path: PathKey, *, in_step: bool = False
    ) -> None:
        """Roles are declared, user fields are user fields, expressions give a user;
        `assignees` only where an approval step's open tasks exist (`in_step`)."""
        scope = self.scope(form)
        for index, recipient in enumerate(recipients):
            where: PathKey = (*path, index) if self.written((*path, index)) else path  # one, or a list
            if recipient.role is not None:
                self.roles([recipient.role], (*where, "role"), single=True)
            if (recipient.assignees or recipient.of == ASSIGNEES) and not in_step:
                self.fail(where, "assignees are known only in an approval step's remind_to and cc")
            for key in ("user_field", "of"):
                name = getattr(recipient, key)
                if (
                    form is None
                    or name is None
                    or name == "created_by"
                    or (key == "of" and name == ASSIGNEES)
                ):
                    continue
                spec = form.field(name)
                if not is_stub(spec) and (spec is None or spec.type != "user"):
                    self.fail((*where, key), f"'{name}' is not a user field of {form.form}")
            if recipient.expression is not None:
                self.typed(recipient.expression, scope, REF, (*where, "expression"))

    def material(self, form: Form | None, items: list[str], path: PathKey) -> None:
        """Each material item is a field or table field of the form, or an expression on it."""
        if form is None:
            return
        scope = scope_for(self.app, form)
        for index, item in enumerate(items):
            if form.field(item) is None:
                self.typed(item, scope, ANY, (*path, index))

    def mapping(self, target: Form, values: dict[str, str], scope: Scope | None, path: PathKey) -> None:
        """Each key is a field of the target; each expression (on `scope`, when known) fits it."""
        for key, text in values.items():
            spec = target.field(key)
            if spec is not None and spec.type == "auto_number":
                self.fail((*path, key), f"'{key}' is numbered automatically and cannot be set")
                continue
            if spec is None or isinstance(spec, TableField) or spec.formula is not None:
                keys = [f.key for f in target.stored_fields() if f.formula is None]
                self.missing((*path, key), f"field of {target.form}", key, keys)
                continue
            self.typed(text, scope, field_type(spec), (*path, key))

    def match(self, form: Form | None, target: Form | None, text: str, each: bool, path: PathKey) -> None:
        """A create effect's `match`: a condition on the target form's records, reading the
        source record as `record.field`; it finds one record, so not with `for_each`."""
        if each:
            self.fail(path, "match finds one record to use: it cannot go with for_each")
        elif form is not None and target is not None:
            check_expression(
                text, filter_scope(self.app, target, form), BOOLEAN, path, self.at, self.problems
            )

    def writable(self, form: Form | None, key: str, path: PathKey, state_field: str | None) -> bool:
        """True when `key` is a stored field the engine may set (not judged without the form)."""
        if form is None:
            return False
        spec = form.field(key)
        if spec is None or isinstance(spec, TableField) or key in SYSTEM_COLUMNS:
            self.missing(path, "field", key, [f.key for f in form.stored_fields()])
            return False
        if spec.formula is not None or spec.type == "auto_number":
            self.fail(path, f"'{key}' is computed and cannot be set")
            return False
        if key == state_field:
            self.fail(path, "the state field changes only through transitions")
            return False
        return True

    def condition(self, text: str | None, scope: Scope | None, path: PathKey) -> None:
        """A condition must be a boolean expression."""
        if text is not None:
            self.typed(text, scope, BOOLEAN, path)

    def typed(self, text: str, scope: Scope | None, wanted: Type, path: PathKey) -> None:
        """Check an expression for a value of type `wanted` (not without a scope: its form failed)."""
        if scope is not None:
            check_expression(text, scope, wanted, path, self.at, self.problems)

    def roles(self, names: list[str], path: PathKey, *, single: bool = False) -> None:
        """Every role is declared by the app or built in."""
        declared = [r.key for r in self.app.roles] + list(BUILT_IN_ROLES)
        for index, name in enumerate(names):
            if name not in declared and not self.broken.role_known(name):
                self.fail(path if single else (*path, index), self.unknown("role", name, declared))

    def top_form(self, key: str, path: PathKey) -> Form | None:
        """The top-level form `key`, or None after noting the problem (none for a form that
        failed to load: its own problems are reported where it is written)."""
        form = self.app.form(key)
        if form is None or form.child:
            if form is None and key in self.broken.forms:
                return None
            names = [f.form for f in self.app.top_forms()]
            self.fail(path, self.unknown("form", key, names))
            return None
        return form

    def child_form(self, form: Form | None, key: str, path: PathKey) -> Form | None:
        """The child form under table field `key` of `form`, or None after noting the problem."""
        if form is None:
            return None
        spec = form.field(key)
        child = self.app.form(spec.form) if isinstance(spec, TableField) else None
        if (
            child is None
            and not is_stub(spec)
            and not (isinstance(spec, TableField) and self.broken.quiet(spec.form))
        ):
            self.fail(path, f"'{key}' is not a table field of {form.form}")
        return child

    def unique(self, keys: list[str], path: PathKey, name: str, what: str) -> list[str]:
        """The keys, after noting each one given twice."""
        seen: set[str] = set()
        for index, key in enumerate(keys):
            if key in seen:
                self.fail((*path, index, name), f"{what} '{key}' is given twice")
            seen.add(key)
        return keys

    @staticmethod
    def unknown(what: str, name: str, known: list[str]) -> str:
        """`unknown state 'x' (did you mean 'y'?)`."""
        return f"unknown {what} '{name}'{did_you_mean(name, known)}"


def _epoch() -> dt.datetime:
    return dt.datetime(2000, 1, 1)
