"""Browser sessions for the tests: one person's tab, signed in, that fails on CSP violations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.web.conftest import SHOTS, LiveServer

DEMO_PASSWORD = "formloom-demo"


class Session:
    """One person's browser tab, with the problems the page reported."""

    def __init__(self, page: Any, server: LiveServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def _console(self, message: Any) -> None:
        text = message.text
        if (message.type == "error" and "Content Security Policy" in text) or "Refused to" in text:
            self.problems.append(f"CSP: {text}")
        elif message.type == "error" and "status of 4" not in text:
            self.problems.append(f"console error: {text}")

    def go(self, path: str) -> None:
        self.page.goto(self.server.url + path)

    def shot(self, label: str) -> None:
        folder = SHOTS / self.server.runtime.engine.dialect.name
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{label}.png"), full_page=True)


@contextmanager
def signed_in(
    chromium: Any, server: LiveServer, username: str, password: str = DEMO_PASSWORD, **context: Any
) -> Iterator[Session]:
    """A fresh browser context signed in as `username` through the sign-in form."""
    ctx = chromium.new_context(locale="zh-CN", **context)
    ctx.set_default_timeout(10_000)
    session = Session(ctx.new_page(), server, username)
    session.go("/")
    session.page.fill("#username", username)
    session.page.fill("#password", password)
    session.page.click("button[type=submit]")
    session.page.wait_for_url(server.url + "/")
    try:
        yield session
    finally:
        ctx.close()
    assert session.problems == [], session.problems
