"""Errors of the records service; the API maps each to a status code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldProblem:
    """One rejected value: the field path (`lines[0].quantity`), a code and a message."""

    field: str | None
    code: str
    message: str
    candidates: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The problem as the API shows it (duplicates also list their candidate ids)."""
        shown: dict[str, Any] = {"field": self.field, "code": self.code, "message": self.message}
        if self.candidates:
            shown["candidates"] = list(self.candidates)
        return shown


class RecordError(Exception):
    """Base of the service's errors; `status` is the HTTP status the API answers."""

    status = 400

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class InvalidRecord(RecordError):
    """The input does not satisfy the form (422)."""

    status = 422


class NotFound(RecordError):
    """No such record (404)."""

    status = 404

    def __init__(self, form: str, record_id: object) -> None:
        super().__init__([FieldProblem(None, "not_found", f"no {form} with id {record_id}")])


def missing(kind: str, key: str) -> NotFound:
    """A NotFound for something named by a key (a dashboard, a widget, an action)."""
    error = NotFound(kind, key)
    error.problems = [FieldProblem(None, "not_found", f"no {kind} '{key}'")]
    return error


class Conflict(RecordError):
    """The record changed meanwhile, or other records still refer to it (409)."""

    status = 409


def invalid(field: str | None, code: str, message: str) -> InvalidRecord:
    """An `InvalidRecord` with a single problem."""
    return InvalidRecord([FieldProblem(field, code, message)])


class Forbidden(RecordError):
    """The caller's roles do not allow this operation on this form (403)."""

    status = 403

    def __init__(self, operation: str, form: str) -> None:
        super().__init__([FieldProblem(None, "forbidden", f"you may not {operation} {form} records")])


class NotAllowed(RecordError):
    """The caller may not take this action (403), with the reason."""

    status = 403

    def __init__(self, message: str) -> None:
        super().__init__([FieldProblem(None, "forbidden", message)])


class Unauthenticated(RecordError):
    """No valid session or token (401)."""

    status = 401

    def __init__(self, message: str = "sign in, or send Authorization: Bearer <token>") -> None:
        super().__init__([FieldProblem(None, "unauthenticated", message)])
