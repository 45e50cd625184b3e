"""Public intakes: a form anyone may submit without signing in (web-to-lead).

An intake names a form, the few fields a visitor may fill, fixed values for others,
whose permissions the write runs with, and the defences of a public door: a honeypot
input, a per-address rate, a signed time token on the page and the origins allowed to
embed the page or post to it. See docs/definitions.md#public-intakes.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, field_validator, model_validator
from pydantic import Field as Spec
from pydantic_core import PydanticCustomError

from runtime.model.common import Identifier, Label, Strict
from runtime.model.fields import VALUE_TYPES

RATE = re.compile(r"^([1-9][0-9]{0,5})/(second|minute|hour|day)$")
PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
ORIGIN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$"
USER_NAME = r"^[A-Za-z0-9_.@-]{1,150}$"
# The field types a visitor may fill: plain values, never references to other records.
INTAKE_TYPES = VALUE_TYPES
# A literal value of `defaults` and `flag` (converted by the field, as an API value would be).
FixedValue = str | int | float | bool | list[str] | None


def _check_origin(value: str) -> str:
    if not re.match(ORIGIN, value):
        raise PydanticCustomError(
            "origin",
            "invalid origin '{value}': write scheme and host only, such as https://www.example.com",
            {"value": value},
        )
    return value


# A web origin: scheme, host and port, as browsers send it in `Origin`.
Origin = Annotated[str, AfterValidator(_check_origin)]


class Intake(Strict):
    """A form made publicly submittable, at `/public/{app}/{intake}` and `/api/v1/public/{app}/{intake}`."""

    intake: Identifier
    form: Identifier
    label: Label | None = None
    description: Label | None = None
    fields: list[Identifier] = Spec(min_length=1, max_length=50)
    hidden: list[Identifier] = Spec(default_factory=list)
    defaults: dict[Identifier, FixedValue] = Spec(default_factory=dict)
    as_role: Identifier | None = None
    as_user: str | None = Spec(default=None, pattern=USER_NAME)
    honeypot: Identifier = "homepage"
    rate: str = "10/minute"
    min_seconds: int = Spec(default=3, ge=0, le=3600)
    require_token: bool = False
    on_duplicate: Literal["keep", "merge", "drop"] = "keep"
    flag: dict[Identifier, FixedValue] = Spec(default_factory=dict)
    thank_you: Label | None = None
    redirect: str | None = Spec(default=None, pattern=r"^https?://\S+$", max_length=2000)
    allowed_origins: list[Origin] = Spec(default_factory=list, max_length=50)

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        if not RATE.match(value):
            raise PydanticCustomError(
                "rate",
                "invalid rate '{value}': write a count per period, such as 10/minute",
                {"value": value},
            )
        return value

    @model_validator(mode="after")
    def _one_actor(self) -> Intake:
        if self.as_role is not None and self.as_user is not None:
            raise PydanticCustomError("intake_actor", "give as_role or as_user, not both")
        return self

    @property
    def key(self) -> str:
        """The intake's key (a part of its URLs)."""
        return self.intake

    def limit(self) -> tuple[int, int]:
        """The rate as (attempts, window in seconds)."""
        found = RATE.match(self.rate)
        assert found is not None
        return int(found.group(1)), PERIOD_SECONDS[found.group(2)]
