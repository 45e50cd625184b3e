"""What a webhook job sends: its URL, its JSON body and its signed headers.

The signature follows the scheme receivers know from payment providers:
`X-Formloom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Signing the
time with the body lets a receiver refuse a replayed request (one whose `t` is older than a
few minutes) as well as a forged one. The secret is read by the worker from the variable
the webhook names (`secret_env`), else from `FORMLOOM_WEBHOOK_SECRET`; a webhook that names
a variable which is not set is not sent unsigned but fails (and is retried), as is one
whose `url_env` is not set in the worker. `verify` is the receiver's side, as
docs/processes.md#verifying-a-signature shows it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from runtime.model.process import Effect

SIGNATURE_HEADER = "X-Formloom-Signature"
DEFAULT_SECRET_ENV = "FORMLOOM_WEBHOOK_SECRET"
TOLERANCE = dt.timedelta(minutes=5)


class NotConfigured(RuntimeError):
    """The worker's environment lacks a variable the webhook names."""


@dataclass(frozen=True)
class Delivery:
    """One POST: where, what, and with which headers."""

    url: str
    body: bytes
    headers: dict[str, str]


def delivery(
    payload: dict[str, Any], key: str, where: dict[str, Any], record: Any, now: dt.datetime
) -> Delivery:
    """The request of a webhook job (`payload` as the effect queued it, `where` its app, form, id)."""
    url = payload.get("url") or _variable(payload.get("url_env"), "URL")
    fields = payload.get("fields")
    if isinstance(record, dict) and isinstance(fields, list):
        record = {name: record[name] for name in ["id", *fields] if name in record}
    body = json.dumps(
        {"event": payload.get("event"), **where, "record": record}, default=str, ensure_ascii=False
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Formloom-Event": str(payload.get("event")),
    }
    named = payload.get("secret_env")
    secret = _variable(named, "secret") if named else os.environ.get(DEFAULT_SECRET_ENV)
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body, int(now.timestamp()))
    return Delivery(str(url), body, headers)


def switched_on(effect: Effect) -> bool:
    """False for a webhook whose `url_env` is not set here: it is off, and nothing is queued."""
    spec = effect.webhook
    return spec is None or spec.url_env is None or bool(os.environ.get(spec.url_env))


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>." + body>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, body: bytes, header: str, now: dt.datetime, tolerance: dt.timedelta = TOLERANCE
) -> bool:
    """The receiver's check: the signature holds for this body and was made within `tolerance`."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    stamp = parts.get("t", "")
    if not stamp.isdigit() or abs(now.timestamp() - int(stamp)) > tolerance.total_seconds():
        return False
    expected = signature(secret, body, int(stamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _variable(name: Any, what: str) -> str:
    value = os.environ.get(str(name)) if name else None
    if not value:
        raise NotConfigured(f"the webhook's {what} variable {name} is not set in the worker")
    return value
