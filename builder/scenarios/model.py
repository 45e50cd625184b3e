"""The scenario language: a pack's `tests/*.yaml` files, as pydantic models.

A file (a *suite*) sets up people and records and holds scenarios; a scenario runs steps,
each a user's action or a move of the clock, and checks expectations after any step.
docs/scenarios.md is the guide; `formloom schema scenario` prints the JSON Schema.

Steps are told apart by their *kind key* (`create`, `approve`, `advance`, …): the loader
picks the step's model by that key and validates the step with it alone, so a mistake is
reported against the keys that kind accepts.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from runtime.model.process import DURATION_RE, WORKDAY, parse_duration

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class Strict(BaseModel):
    """Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_name(value: str) -> str:
    if not NAME_RE.match(value) or len(value) > 60:
        raise PydanticCustomError(
            "scenario_name",
            "invalid name '{value}': use letters, digits, '_', '.' and '-', starting with a letter",
            {"value": value},
        )
    return value


def _check_duration(value: str) -> str:
    if not DURATION_RE.match(value) or WORKDAY in value:
        raise PydanticCustomError(
            "duration",
            "invalid duration '{value}': use a number and a unit m, h, d or w, such as '20h', "
            "'19h 30m' or '3d'",
            {"value": value},
        )
    return value


def parse_moment(value: str, zone: dt.tzinfo) -> dt.datetime:
    """`2026-12-25T09:00+08:00` as an aware UTC time; without an offset it is read in `zone`,
    and a date alone is its midnight there."""
    text = value.strip()
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


def _check_moment(value: str) -> str:
    try:
        parse_moment(value, dt.UTC)
    except ValueError:
        raise PydanticCustomError(
            "moment",
            "invalid time '{value}': write it as 2026-12-25T09:00+08:00 (without an offset, "
            "in the app's time zone), or a date such as 2026-12-25",
            {"value": value},
        ) from None
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Duration = Annotated[str, AfterValidator(_check_duration)]
Moment = Annotated[str, AfterValidator(_check_moment)]
Values = dict[str, Any]


def advance_of(text: str) -> dt.timedelta:
    """The clock time an `advance` moves by."""
    return parse_duration(text)


# -- people and the setup -----------------------------------------------------------------


class Department(Strict):
    """A department of the org chart: its manager is the manager of the people in it."""

    key: str = Field(min_length=1, max_length=60)
    name: str | None = Field(default=None, max_length=200)
    parent: str | None = None
    manager: str | None = None


class Person(Strict):
    """A user the scenario acts as or expects things of."""

    username: str = Field(min_length=1, max_length=150)
    display_name: str | None = Field(default=None, max_length=200)
    roles: list[str] = []
    department: str | None = None
    language: Literal["zh", "en"] = "zh"
    email: str | None = Field(default=None, max_length=254)


class Setup(Strict):
    """What a suite or a scenario starts from (a scenario's setup comes after its suite's)."""

    start: Moment | None = Field(default=None, description="Where the clock starts")
    as_: str | None = Field(default=None, alias="as", description="Who acts when a step names nobody")
    demo_users: bool | None = Field(default=None, description="Create the pack's demo/users.yaml")
    demo_data: bool | None = Field(default=None, description="Write the pack's demo/data.yaml")
    departments: list[Department] = []
    users: list[Person] = []
    records: dict[str, list[Values]] = Field(
        default={}, description="Form key -> records written in this order (`ref: name` names one)"
    )


class Suite(Setup):
    """A scenario file."""

    suite: str | None = Field(default=None, max_length=200, description="The title (default: the file name)")
    scenarios: list[dict[str, Any]] = Field(min_length=1)


class ScenarioHead(Setup):
    """A scenario: its steps are validated one by one (see STEP_MODELS)."""

    name: str = Field(min_length=1, max_length=200)
    examples: list[dict[str, Any]] = Field(
        default=[], description="Run the scenario once per map, `{{ key }}` replaced by its value"
    )
    steps: list[dict[str, Any]] = Field(min_length=1)


# -- expectations -------------------------------------------------------------------------


class TaskItem(Strict):
    """An open task on a record, at a step of its approval."""

    record: Name
    step: str | None = None


class Sent(Strict):
    """A notification or e-mail that was sent, to whom, containing what."""

    to: str
    contains: str | list[str] | None = None
    subject: str | None = Field(default=None, description="E-mails: the subject contains this")
    attachments: list[str] | None = Field(
        default=None, description="E-mails: the names of the files attached, all of them"
    )


class Webhook(Strict):
    """A webhook call that was made."""

    url: str | None = None
    event: str | None = None
    body: dict[str, Any] | None = Field(default=None, description="Keys the JSON body holds (nested, partly)")


class DashboardRows(Strict):
    """A dashboard widget's rows as a viewer sees them."""

    dashboard: str | None = None
    widget: str
    as_: str = Field(alias="as")
    params: dict[str, Any] = {}
    rows: list[dict[str, Any]]
    ordered: bool = False


class Expect(Strict):
    """What must hold after a step. Every key is optional; all given must hold."""

    record: Name | None = Field(default=None, description="The record `state` and `values` are of")
    state: str | None = None
    values: Values | None = None
    status: int | None = Field(default=None, ge=100, le=599, description="The answer's HTTP status")
    field: str | None = Field(default=None, description="A refusal names this field")
    code: str | None = Field(default=None, description="A refusal has this code")
    message: str | None = Field(default=None, description="A refusal's message contains this")
    tasks: dict[str, list[Name | TaskItem]] | None = None
    notifications: dict[str, list[str]] | list[Sent] | None = None
    emails: dict[str, list[str]] | list[Sent] | None = None
    webhooks: list[Webhook] | None = None
    dashboard: DashboardRows | list[DashboardRows] | None = None


Expectations = Expect | list[Expect]


# -- steps --------------------------------------------------------------------------------


class Step(Strict):
    """Keys every step takes."""

    expect: Expectations | None = None


class UserStep(Step):
    """A step a user takes."""

    as_: str | None = Field(default=None, alias="as", description="The user who takes the step")


class CreateStep(UserStep):
    """Create a record of a form, with values; `ref` names it."""

    create: str = Field(description="The form")
    values: Values = {}
    ref: Name | None = Field(default=None, description="The name later steps use for the record")
    allow_duplicate: bool = False


class UpdateStep(UserStep):
    """Change fields of a record."""

    update: Name = Field(description="The record")
    values: Values
    allow_duplicate: bool = False


class DeleteStep(UserStep):
    """Delete a record."""

    delete: Name = Field(description="The record")


class TransitionStep(UserStep):
    """Take a workflow action on a record, with the action's values and a comment."""

    transition: str = Field(description="The workflow action")
    record: Name
    values: Values = {}
    comment: str | None = None


class ApproveStep(UserStep):
    """Approve the user's open task on a record."""

    approve: Name = Field(description="The record whose open task the user approves")
    step: str | None = Field(default=None, description="The approval step of the task")
    comment: str | None = None


class RejectStep(UserStep):
    """Reject the user's open task on a record (a comment is required)."""

    reject: Name = Field(description="The record whose open task the user rejects")
    step: str | None = None
    comment: str | None = None
    to_step: str | None = Field(default=None, description="Send the approval back to this step")


class DelegateStep(UserStep):
    """Hand the user's open task to another user, who decides on their behalf."""

    delegate: Name = Field(description="The record whose open task the user delegates")
    to: str = Field(description="The user who decides in the user's name")
    step: str | None = None
    comment: str | None = None


class TransferStep(UserStep):
    """Give the user's open task to another user, as their own."""

    transfer: Name = Field(description="The record whose open task the user transfers")
    to: str = Field(description="The user who gets the task")
    step: str | None = None
    comment: str | None = None


class MergeStep(UserStep):
    """Merge records into one (forms with `duplicates`)."""

    merge: Name = Field(description="The record that stays")
    from_: list[Name] = Field(alias="from", min_length=1, description="The records merged into it")
    values: dict[str, Name] = Field(default={}, description="Field -> the record whose value is kept")


class UploadStep(UserStep):
    """Upload a file; values attach it as `{file: name}`."""

    upload: Name = Field(description="The name values use for the file: {file: name}")
    file: str | None = Field(default=None, description="A file of the pack folder")
    content: str | None = Field(default=None, description="The file's text")
    name: str | None = Field(default=None, description="The file name (default: the file's own)")
    type: str | None = Field(default=None, description="The content type (default: guessed from the name)")

    @model_validator(mode="after")
    def _one_source(self) -> UploadStep:
        if (self.file is None) == (self.content is None):
            raise PydanticCustomError("upload_source", "an upload takes either 'file' or 'content'")
        return self


class FindStep(UserStep):
    """Look records up (those the engine made), count them, or name the one found."""

    find: str = Field(description="The form")
    where: str | None = Field(default=None, description="A condition, as the list API's `where=`")
    ref: Name | None = Field(default=None, description="Name the one record found")
    count: int | None = Field(default=None, ge=0, description="How many records must be found")


class AdvanceStep(Step):
    """Move the clock forward by a duration; the worker runs what falls due on the way."""

    advance: Duration = Field(description="Move the clock forward by this much")


class AtStep(Step):
    """Move the clock forward to a time; the worker runs what falls due on the way."""

    at: Moment = Field(description="Move the clock forward to this time")


class CheckStep(Step):
    """Only check expectations."""

    expect: Expectations


STEP_MODELS: dict[str, type[Step]] = {
    "create": CreateStep,
    "update": UpdateStep,
    "delete": DeleteStep,
    "transition": TransitionStep,
    "approve": ApproveStep,
    "reject": RejectStep,
    "delegate": DelegateStep,
    "transfer": TransferStep,
    "merge": MergeStep,
    "upload": UploadStep,
    "find": FindStep,
    "advance": AdvanceStep,
    "at": AtStep,
}
STEP_KINDS = (*STEP_MODELS, "expect")
TIME_KINDS = ("advance", "at")
EXPECT_KINDS = tuple(name for name in Expect.model_fields if name != "record")


def kind_of(step: dict[str, Any]) -> list[str]:
    """The kind keys a step holds (exactly one is right; `expect` alone is a check)."""
    kinds = [key for key in STEP_MODELS if key in step]
    return kinds or (["expect"] if "expect" in step else [])


def model_of(kind: str) -> type[Step]:
    """The model that validates a step of this kind."""
    return STEP_MODELS.get(kind, CheckStep)


# -- the published JSON Schema ------------------------------------------------------------


class _ScenarioSchema(ScenarioHead):
    steps: list[
        CreateStep
        | UpdateStep
        | DeleteStep
        | TransitionStep
        | ApproveStep
        | RejectStep
        | DelegateStep
        | TransferStep
        | MergeStep
        | UploadStep
        | FindStep
        | AdvanceStep
        | AtStep
        | CheckStep
    ] = Field(min_length=1)  # type: ignore[assignment]


class _SuiteSchema(Suite):
    scenarios: list[_ScenarioSchema] = Field(min_length=1)  # type: ignore[assignment]


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file."""
    schema = _SuiteSchema.model_json_schema(by_alias=True)
    schema["title"] = "Formloom scenario file"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://formloom.dev/schema/scenario.json"
    return schema
