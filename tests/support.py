"""Small helpers for tests: write a pack to a folder, serve it, count queries."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event

from runtime.boot import Runtime, start
from runtime.live import LIVE_CHECK


class ManualClock:
    """A clock a test moves by hand: `clock.now = …`; pass it where a clock is injected."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


APP_YAML = """\
app: {key}
label: {{zh: 测试, en: Test}}
version: 1.0.0
"""


def write_pack(root: Path, forms: dict[str, str], app_key: str = "t") -> Path:
    """A pack folder with app.yaml and one forms/<name>.yaml per entry (text is dedented)."""
    (root / "forms").mkdir(parents=True, exist_ok=True)
    (root / "app.yaml").write_text(APP_YAML.format(key=app_key), encoding="utf-8")
    for name, body in forms.items():
        (root / "forms" / f"{name}.yaml").write_text(textwrap.dedent(body), encoding="utf-8")
    return root


def write_files(root: Path, files: dict[str, str]) -> Path:
    """Write more files into a pack folder: `{"workflows/doc.yaml": "..."}` (text is dedented)."""
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body), encoding="utf-8")
    return root


def serve(pack: Path | str, db_url: str, files: Path) -> tuple[Runtime, TestClient]:
    """Start a runtime for one pack and a test client on its API, signed in as an admin."""
    runtime = start([pack], db_url, files)
    token = admin_token(runtime.engine)
    return runtime, TestClient(runtime.api, headers={"Authorization": f"Bearer {token}"})


def admin_token(engine: Engine, username: str = "admin") -> str:
    """A token of an admin user (created when missing)."""
    return user_token(engine, username, ("admin",))


def user_token(engine: Engine, username: str, roles: tuple[str, ...], department: str | None = None) -> str:
    """A token of a user with these roles (created when missing)."""
    from runtime.db import write
    from runtime.identity.directory import DirectoryError, create_user
    from runtime.identity.tokens import create_token

    with write(engine) as conn:
        with suppress(DirectoryError):
            create_user(conn, username, None, roles=roles, department=department)
        return create_token(conn, username, "test")


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL statements `engine` runs inside the block for the work being measured.

    The running server's publish check (`runtime.live`, at most once a second, inside
    whichever request comes next) is left out: when it lands inside the block depends on
    the clock, not on the request.
    """
    statements: list[str] = []

    def record(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.get_execution_options().get(LIVE_CHECK):
            return
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


REPO = Path(__file__).resolve().parents[1]
SALES = REPO / "definitions" / "sales"


WEB_PASSWORD = "correct horse battery 42"


def web_client(
    runtime: Runtime, username: str, roles: tuple[str, ...] = (), language: str = "en"
) -> WebClient:
    """A test client signed in through the web sign-in form (a user is created when missing)."""
    from runtime.db import write
    from runtime.identity.directory import DirectoryError, create_user

    with write(runtime.engine) as conn, suppress(DirectoryError):
        create_user(conn, username, WEB_PASSWORD, roles=roles, language=language)
    client = WebClient(runtime.api)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"username": username, "password": WEB_PASSWORD, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    client.csrf = client.token_on("/")
    return client


class WebClient(TestClient):
    """A TestClient with a web session; `post_form` adds the page's CSRF token."""

    csrf = ""

    def token_on(self, path: str) -> str:
        """The CSRF token a page carries."""
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).text)
        assert found is not None, f"no CSRF token on {path}"
        return found.group(1)

    def post_form(self, path: str, data: Any, **kwargs: Any) -> Any:
        """POST a form as the page would, with the session's CSRF token."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        body = [("csrf_token", self.csrf), *pairs]
        headers = {"content-type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})}
        return self.post(
            path, content=urlencode(body, doseq=True), headers=headers, follow_redirects=False, **kwargs
        )
