"""Browser sessions for the tests: one person's tab, signed in, that fails on CSP violations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

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
    ctx.set_default_timeout(30_000)  # generous: the suite must pass on a loaded machine
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


@contextmanager
def previewed(page: Any, sent: dict[str, str]) -> Iterator[None]:
    """Wait, after the block, until the live preview posting `sent` has answered and the page
    has applied its answer (the form's `data-live-answered` caught up with `data-live-sent`)."""

    def posts(request: Any) -> bool:
        if not request.url.endswith("/_live"):
            return False
        fields = parse_qs(request.post_data or "")
        return all(fields.get(name) == [value] for name, value in sent.items())

    with page.expect_request(posts):
        yield
    page.wait_for_function(
        "() => { const form = document.getElementById('record-form');"
        " return form.dataset.liveSent !== undefined"
        " && form.dataset.liveAnswered === form.dataset.liveSent; }"
    )


def value_becomes(page: Any, name: str, expected: str) -> None:
    """Wait until the input named `name` holds `expected`."""
    page.wait_for_function(
        '([name, expected]) => document.querySelector(`[name="${name}"]`).value === expected',
        arg=[name, expected],
    )


def pick(page: Any, name: str, typed: str, choice: str) -> None:
    """Type into the picker of input `name` and pick the record shown as `choice`."""
    page.fill(f'[id="in-{name}"]', typed)
    button = page.locator(f'[id="picks-{name}"] [data-pick-display="{choice}"]')
    button.wait_for()
    button.click()
