"""The signed time token of a public intake's page.

The page carries `<issued>.<signature>` in a hidden input: the second it was served and
an HMAC-SHA256 of the app, the intake and that second. A post that comes back sooner
than the intake's `min_seconds` was typed by a program, and one older than a day (or
whose signature does not hold, as after a restart without `FORMLOOM_SECRET`) asks the
visitor to reload the page. The key is `FORMLOOM_SECRET`; without it each process makes
a random one, so several servers behind one address need the variable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from typing import Literal

SECRET_ENV = "FORMLOOM_SECRET"
MAX_AGE = dt.timedelta(days=1)
_PROCESS_KEY = secrets.token_bytes(32)
Verdict = Literal["ok", "early", "expired"]


def issue(app: str, intake: str, now: dt.datetime) -> str:
    """A token for a page served at `now`."""
    issued = int(now.timestamp())
    return f"{issued}.{_sign(app, intake, issued)}"


def check(token: str, app: str, intake: str, now: dt.datetime, min_seconds: int) -> Verdict:
    """`ok`; `early` (sent sooner than `min_seconds` after the page was served); or `expired`
    (too old, from the future, malformed or not signed by this server)."""
    issued_text, _, signature = token.partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12:
        return "expired"
    issued = int(issued_text)
    if not hmac.compare_digest(signature.encode(), _sign(app, intake, issued).encode()):
        return "expired"
    age = now.timestamp() - issued
    if age < -60 or age > MAX_AGE.total_seconds():  # a minute of clock skew between servers
        return "expired"
    return "early" if age < min_seconds else "ok"


def _sign(app: str, intake: str, issued: int) -> str:
    secret = os.environ.get(SECRET_ENV)
    key = secret.encode() if secret else _PROCESS_KEY
    return hmac.new(key, f"intake/{app}/{intake}/{issued}".encode(), hashlib.sha256).hexdigest()[:40]
