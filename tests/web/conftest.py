"""Browser fixtures: the sales pack served over HTTP with demo data, and headless Debian chromium.

Chromium is Debian's package (`/usr/bin/chromium`, installed by `.ci/run`); where it
is missing, browser tests skip with the reason, except under CI=true, where they fail.
Screenshots go to `test-artifacts/screenshots/` (git-ignored).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from runtime.boot import Runtime, start
from runtime.seed import demo_file, seed_demo, seed_users
from tests.support import REPO, SALES

CHROMIUM = Path(os.environ.get("FORMLOOM_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "test-artifacts" / "screenshots"


@dataclass
class LiveServer:
    """The sales pack served on a local port."""

    runtime: Runtime
    url: str
    console: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The sales pack with its demo users and data, served by uvicorn in a thread."""
    runtime = start([SALES], db_url, tmp_path / "files")
    seed_users(runtime.service, demo_file(SALES, "users.yaml"))  # type: ignore[arg-type]
    seed_demo(runtime.service, "sales", demo_file(SALES))  # type: ignore[arg-type]
    with serving(runtime) as server:
        yield server


@contextmanager
def serving(runtime: Runtime) -> Iterator[LiveServer]:
    """`runtime` served by uvicorn on a free local port, in a thread."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(runtime.api, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield LiveServer(runtime, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.engine.dispose()


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless Debian chromium driven by Playwright."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (`.ci/run` does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
