"""The process part of the definition model: workflows, approvals, timers and automations.

Each kind lives in its own folder of a pack (`workflows/`, `approvals/`, `automations/`)
or in the app file's lists of the same names. Effects — what a transition, a timer, an
approval outcome or an automation does — share one model, `Effect`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, model_validator
from pydantic import Field as Spec
from pydantic_core import PydanticCustomError

from runtime.model.common import Identifier, Label, Labels, Strict
from runtime.model.fields import Expression

DURATION_RE = re.compile(r"^\s*(\d+\s*(wd|[mhdw])\s*)+$")
DURATION_PART = re.compile(r"(\d+)\s*(wd|[mhdw])")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
WORKDAY = "wd"  # working days on the app's calendar
ANY_STATE = "*"


def parse_duration(text: str) -> dt.timedelta:
    """`"20h"`, `"3d"`, `"1d 12h"`, `"90m"` as a timedelta (working days count as days)."""
    workdays, clock = split_duration(text)
    return clock + dt.timedelta(days=workdays)


def split_duration(text: str) -> tuple[int, dt.timedelta]:
    """A duration as working days (`wd`) and clock time (the other units)."""
    workdays, clock = 0, dt.timedelta()
    for amount, unit in DURATION_PART.findall(text):
        if unit == WORKDAY:
            workdays += int(amount)
        else:
            clock += dt.timedelta(**{UNITS[unit]: int(amount)})
    return workdays, clock


def _check_duration(value: str) -> str:
    if not DURATION_RE.match(value):
        raise PydanticCustomError(
            "duration",
            "invalid duration '{value}': use a number and a unit m, h, d, w or wd (working days), "
            "such as '20h', '1d 12h' or '2wd'",
            {"value": value},
        )
    return value


Duration = Annotated[str, BeforeValidator(_check_duration)]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, dict | str) else value


ASSIGNEES = "assignees"  # in an approval step: the users holding its open tasks
RECIPIENT_SOURCES = ("role", "users", "user_field", "manager", "expression", "assignees", "submitter")


class Recipient(Strict):
    """Where users come from: exactly one of role, users, user_field, manager, expression,
    assignees or submitter.

    `manager: N` is the manager N levels up the org chart from the user in `of` (a user
    field of the record, or `assignees` in an approval step), or from the submitter of an
    approval, or else the record's creator. `assignees: true` (approval steps) are the
    users holding the step's open tasks; `submitter: true` is whoever started the approval.
    """

    role: Identifier | None = None
    users: list[str] | None = Spec(default=None, min_length=1)
    user_field: Identifier | None = None
    manager: int | None = Spec(default=None, ge=1, le=10)
    of: Identifier | None = None
    expression: Expression | None = None
    assignees: bool = False
    submitter: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Recipient:
        given = [k for k in RECIPIENT_SOURCES if getattr(self, k)]
        if len(given) != 1:
            raise PydanticCustomError(
                "recipient",
                "give exactly one of role, users, user_field, manager, expression, assignees or submitter",
            )
        if self.of is not None and self.manager is None:
            raise PydanticCustomError("recipient", "'of' goes with 'manager'")
        return self


Recipients = Annotated[list[Recipient], BeforeValidator(_as_list), Spec(min_length=1)]


class ChildCopy(Strict):
    """Child rows of a created record, one per row of a table field of the source record."""

    from_: Identifier = Spec(alias="from")
    values: dict[Identifier, Expression] = Spec(min_length=1)


class CreateSpec(Strict):
    """Create a record of `form` from the current one.

    `values` are expressions over the source record. `store_in` names a link field of the
    source that receives the new record (so later effects can use it). With `for_each` (a
    table field of the source), one record is created per child row; `row_values` are
    expressions over the row. `match`, a condition on the records of `form` that reads the
    source as `record.field` (as a link's `filter` does), finds a record to use instead:
    when one meets it, nothing is created and `store_in` receives that record.
    """

    form: Identifier
    values: dict[Identifier, Expression] = Spec(default_factory=dict)
    store_in: Identifier | None = None
    match: Expression | None = None
    for_each: Identifier | None = None
    row_values: dict[Identifier, Expression] = Spec(default_factory=dict)
    children: dict[Identifier, ChildCopy] = Spec(default_factory=dict)


class NotifySpec(Strict):
    """An in-app notification (and an e-mail with `email: true`) to some users.

    `message` is a Jinja2 template; `record` holds the record's fields.
    """

    to: Recipients
    message: Label
    email: bool = False


# The name of an environment variable holding a webhook's URL or signing secret.
EnvName = Annotated[str, Spec(pattern=r"^[A-Z][A-Z0-9_]{0,99}$")]
# A field of a record as it is read: a field key or a system column such as `created_at`.
FieldName = Annotated[str, Spec(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class WebhookSpec(Strict):
    """POST the record as JSON to a URL, from a job, retried until it answers 2xx.

    The URL is written here (`url`) or read from an environment variable (`url_env`);
    the body is signed with the secret in `secret_env` (else `FORMLOOM_WEBHOOK_SECRET`).
    `fields` limits the record's fields sent (all of them by default).
    """

    url: str | None = Spec(default=None, pattern=r"^https?://\S+$", max_length=2000)
    url_env: EnvName | None = None
    secret_env: EnvName | None = None
    event: Identifier | None = None
    fields: list[FieldName] | None = Spec(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookSpec:
        if (self.url is None) == (self.url_env is None):
            raise PydanticCustomError("webhook_url", "a webhook needs exactly one of url and url_env")
        return self


class AssignSpec(Strict):
    """Set a user field to the first user the recipients give (reassign to the manager)."""

    field: Identifier
    to: Recipients


class DocumentSpec(Strict):
    """Render a document of the record (`documents/`) to PDF and keep it in `store_in`, an
    attachment field of the record: the file sent or signed at this step, as it was then."""

    document: Identifier
    store_in: Identifier


# A path of fields from a record: `contact.email`, `sales_order.contact.language` (each
# part but the last a link field, followed to the record it points at).
FieldPath = Annotated[str, Spec(pattern=r"^[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39}){0,4}$")]


class LongLabels(Labels):
    """Text in Chinese and English, longer than a label: an e-mail's body."""

    zh: str | None = Spec(default=None, min_length=1, max_length=20000)
    en: str | None = Spec(default=None, min_length=1, max_length=20000)


def _long_label_from_text(value: object) -> object:
    return {"en": value} if isinstance(value, str) else value


LongLabel = Annotated[
    LongLabels, BeforeValidator(_long_label_from_text, json_schema_input_type=LongLabels | str)
]


class EmailAddress(Strict):
    """Where a record e-mail goes: the address in `email_field`, a path of fields from the
    record (`contact.email`), written in the language in `language_field` (`contact.language`)."""

    email_field: FieldPath
    language_field: FieldPath | None = None


class EmailSpec(Strict):
    """E-mail people who are not users (a customer contact) at an address the record holds.

    `message` (and `subject`, else the message's first line) are Jinja2 templates rendered
    in each address's language; `attach` lists attachment fields of the record whose files
    go with it (a stored document PDF).
    """

    to: Annotated[list[EmailAddress], BeforeValidator(_as_list), Spec(min_length=1)]
    subject: Label | None = None
    message: LongLabel
    attach: Annotated[list[Identifier], BeforeValidator(_as_list)] = Spec(default_factory=list)


EFFECT_KINDS = (
    "set",
    "create",
    "notify",
    "webhook",
    "start_approval",
    "transition",
    "assign",
    "document",
    "email",
)


class Effect(Strict):
    """One thing to do, with an optional condition: exactly one of the kinds."""

    when: Expression | None = None
    set: dict[Identifier, Expression] | None = Spec(default=None, min_length=1)
    create: CreateSpec | None = None
    notify: NotifySpec | None = None
    webhook: WebhookSpec | None = None
    start_approval: Identifier | None = None
    transition: Identifier | None = None
    assign: AssignSpec | None = None
    document: DocumentSpec | None = None
    email: EmailSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Effect:
        if len([k for k in EFFECT_KINDS if getattr(self, k) is not None]) != 1:
            raise PydanticCustomError("effect", "an effect needs exactly one of " + ", ".join(EFFECT_KINDS))
        return self

    @property
    def kind(self) -> str:
        """Which kind of effect this is."""
        return next(k for k in EFFECT_KINDS if getattr(self, k) is not None)


class State(Strict):
    """A state of a workflow; `initial` marks where new records start.

    `material` lists what may not change while a record is in the state (fields, table
    fields, or expressions whose value may not change); a change is refused with 409
    `material` and `change_message`.
    """

    key: Identifier
    label: Label | None = None
    initial: bool = False
    final: bool = False
    material: list[str] = Spec(default_factory=list)
    change_message: Label | None = None


class Transition(Strict):
    """An action that moves a record from some states to another.

    Who may take it: `roles` and/or `allowed` (an expression that can use CURRENT_USER());
    with neither, anyone who may update the record. `guard` must hold on the record.
    `fields` are values the caller gives with the action (`require` lists the mandatory
    ones). `auto` transitions are taken by the engine as soon as their guard holds;
    `system` ones only by the engine (approval outcomes, timers, automations).
    """

    action: Identifier
    label: Label | None = None
    from_: Annotated[list[str], BeforeValidator(_as_list)] = Spec(alias="from", min_length=1)
    to: Identifier
    roles: list[Identifier] = Spec(default_factory=list)
    allowed: Expression | None = None
    guard: Expression | None = None
    guard_message: Label | None = None
    fields: list[Identifier] = Spec(default_factory=list)
    require: list[Identifier] = Spec(default_factory=list)
    auto: bool = False
    system: bool = False
    effects: list[Effect] = Spec(default_factory=list)


class Repeat(Strict):
    """Fire again every `every`, at most `times` more times."""

    every: Duration
    times: int = Spec(ge=1, le=100)


class Timer(Strict):
    """Something to do at a time while a record stays in `state` (one state or a list).

    The time is `after` entering the state, or `before`/`after` the date in `field`.
    Leaving the state cancels it; `when` is checked when it fires.
    """

    key: Identifier
    state: Annotated[list[Identifier], BeforeValidator(_as_list)] = Spec(min_length=1)
    field: Identifier | None = None
    after: Duration | None = None
    before: Duration | None = None
    repeat: Repeat | None = None
    when: Expression | None = None
    effects: list[Effect] = Spec(min_length=1)

    @model_validator(mode="after")
    def _one_offset(self) -> Timer:
        if (self.after is None) == (self.before is None):
            raise PydanticCustomError("timer", "a timer needs exactly one of 'after' or 'before'")
        if self.before is not None and self.field is None:
            raise PydanticCustomError("timer", "'before' needs a date 'field'")
        return self

    def offset(self) -> dt.timedelta:
        """Signed distance from the reference time (negative: before)."""
        if self.before is not None:
            return -parse_duration(self.before)
        return parse_duration(self.after or "0m")


class Workflow(Strict):
    """States and transitions of a form's records, kept in a select field."""

    workflow: Identifier
    form: Identifier
    field: Identifier
    label: Label | None = None
    states: list[State] = Spec(min_length=1)
    transitions: list[Transition] = Spec(default_factory=list)
    timers: list[Timer] = Spec(default_factory=list)

    def state(self, key: str) -> State | None:
        """The state with this key, if any."""
        return next((s for s in self.states if s.key == key), None)

    def initial(self) -> State:
        """The state new records start in (the first one unless one is marked initial)."""
        return next((s for s in self.states if s.initial), self.states[0])

    def leaving(self, state: str) -> list[Transition]:
        """Transitions that can be taken from `state`."""
        return [t for t in self.transitions if state in t.from_ or ANY_STATE in t.from_]


class ApprovalStep(Strict):
    """One step of an approval: who approves, how many of them, and when the step applies.

    Modes: `any` (或签, the first decision counts), `all` (会签), `percent` (that share of
    the approvers), `count` (that many of them). A rejection goes back to `reject_to`: a
    step before this one, or `start` (the approval ends rejected).
    """

    name: Identifier
    label: Label | None = None
    when: Expression | None = None
    approvers: Recipients
    mode: Literal["any", "all", "percent", "count"] = "any"
    percent: int | None = Spec(default=None, ge=1, le=100)
    count: int | None = Spec(default=None, ge=1, le=100)
    reject_to: str = "start"
    cc: Annotated[list[Recipient], BeforeValidator(_as_list)] = Spec(default_factory=list)
    add_approvers: Literal["none", "before", "after", "both"] = "none"
    remind_after: Duration | None = None
    remind_to: Annotated[list[Recipient], BeforeValidator(_as_list)] = Spec(default_factory=list)
    escalate_after: Duration | None = None
    escalate: Literal["reassign", "add"] = "add"
    auto_after: Duration | None = None
    auto_action: Literal["approve", "reject", "return"] | None = None

    @model_validator(mode="after")
    def _mode_figures(self) -> ApprovalStep:
        if (self.mode == "percent") != (self.percent is not None):
            raise PydanticCustomError("step", "'percent' goes with mode 'percent', and it needs one")
        if (self.mode == "count") != (self.count is not None):
            raise PydanticCustomError("step", "'count' goes with mode 'count', and it needs one")
        if (self.auto_after is None) != (self.auto_action is None):
            raise PydanticCustomError("step", "'auto_after' and 'auto_action' go together")
        if self.remind_to and self.remind_after is None:
            raise PydanticCustomError("step", "'remind_to' goes with 'remind_after'")
        return self

    def deadlines(self) -> list[tuple[str, str]]:
        """(what, after) for each deadline of the step: remind, escalate, auto."""
        found = [("remind", self.remind_after), ("escalate", self.escalate_after), ("auto", self.auto_after)]
        return [(what, after) for what, after in found if after is not None]


class Approval(Strict):
    """Ordered approval steps on a form's records.

    It starts through a `start_approval` effect or, with `starts_when`, after any write
    that makes the condition true. Without `material`, the record is locked while it runs
    (`lock`). With `material`, the approval guards what it approved — fields, table fields
    or expressions — while it runs and after it approved, until the record moves into a
    state of `released_in` (default: the workflow's initial state) or the approval starts
    again: a change is refused (`on_change: refuse`, 409 `material`) or saved and approved
    again (`reapprove`: `on_reapprove` runs, then the approval starts from its first step
    that applies). The submitter may withdraw it while nobody has decided (`on_withdrawn`)
    and nudge the approvers once per `nudge_every`.
    """

    approval: Identifier
    form: Identifier
    label: Label | None = None
    starts_when: Expression | None = None
    steps: list[ApprovalStep] = Spec(min_length=1)
    no_self_approval: bool = True
    distinct_approvers: bool = False
    lock: bool = True
    material: list[str] = Spec(default_factory=list)
    on_change: Literal["refuse", "reapprove"] = "refuse"
    change_message: Label | None = None
    released_in: list[Identifier] = Spec(default_factory=list)
    cc: Annotated[list[Recipient], BeforeValidator(_as_list)] = Spec(default_factory=list)
    withdraw: bool = True
    nudge_every: Duration = "1h"
    on_approved: list[Effect] = Spec(default_factory=list)
    on_rejected: list[Effect] = Spec(default_factory=list)
    on_reapprove: list[Effect] = Spec(default_factory=list)
    on_withdrawn: list[Effect] = Spec(default_factory=list)

    def step_index(self, name: str) -> int | None:
        """The position of a step, if it exists."""
        return next((i for i, s in enumerate(self.steps) if s.name == name), None)


TRIGGERS = ("created", "updated", "transitioned", "schedule")


class Automation(Strict):
    """Effects run when something happens to a form's records, or on a schedule.

    `updated` can be narrowed to changes of some `fields` or to a condition that
    `becomes` true; `transitioned` to an `action` or a target state `to`; `schedule`
    runs at each `cron` time for every record that meets `when`.
    """

    automation: Identifier
    form: Identifier
    label: Label | None = None
    trigger: Literal["created", "updated", "transitioned", "schedule"]
    fields: list[Identifier] = Spec(default_factory=list)
    becomes: Expression | None = None
    action: Identifier | None = None
    to: Identifier | None = None
    cron: str | None = None
    when: Expression | None = None
    effects: list[Effect] = Spec(min_length=1)

    @model_validator(mode="after")
    def _trigger_options(self) -> Automation:
        if (self.trigger == "schedule") != (self.cron is not None):
            raise PydanticCustomError("automation", "'cron' goes with the schedule trigger, which needs it")
        if self.trigger != "updated" and (self.fields or self.becomes):
            raise PydanticCustomError("automation", "'fields' and 'becomes' go with the updated trigger")
        if self.trigger != "transitioned" and (self.action or self.to):
            raise PydanticCustomError("automation", "'action' and 'to' go with the transitioned trigger")
        return self
