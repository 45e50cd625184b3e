"""The approval desk of the process tests (tests/runtime/process/approval_pack.py) in the browser's shoes.

`signed_in(desk, name)` signs one of the desk's people in through the web sign-in form; the
`desk` fixture is in conftest.py.
"""

from __future__ import annotations

import re

from runtime.db import write
from runtime.identity.directory import set_password
from tests.runtime.process.approval_pack import Desk
from tests.support import WEB_PASSWORD, WebClient, web_client


def signed_in(desk: Desk, name: str) -> WebClient:
    """A web client signed in as one of the desk's people (in their own language)."""
    with write(desk.runtime.engine) as conn:
        set_password(conn, name, WEB_PASSWORD)
    return web_client(desk.runtime, name)


def approval_of(desk: Desk, record: int) -> int:
    """The id of the record's latest approval."""
    items = desk.clients["rep"].get(f"/api/v1/t/doc/{record}/approvals").json()["items"]
    return int(items[-1]["id"])


def alerts(html: str) -> list[str]:
    """The texts of the page's error notices."""
    found = re.findall(r'class="notice error" role="alert">(.*?)</div>', html, re.S)
    return [re.sub(r"<[^>]+>", " ", text).strip() for text in found]
