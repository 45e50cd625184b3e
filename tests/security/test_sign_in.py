"""Sign-in: throttling that parallel guesses cannot outrun and that locks no one out everywhere,
the same Argon2 work for unknown users, forwarded headers only from named proxies, sessions
that end with a password, a role or the account, and https-only cookies.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from builder.cli import main
from runtime.boot import Runtime, start
from runtime.db import write
from runtime.identity import passwords, throttle
from runtime.identity.directory import create_user, remove_role, set_active, set_password
from runtime.identity.tokens import create_token
from runtime.schema.system import sign_in_counts, tokens
from tests.support import write_pack

PASSWORD = "correct horse battery"
LEAD = """
form: lead
label: Lead
fields:
  - {key: company, type: text}
permissions:
  - {roles: [rep], can: [create, read, update], scope: all}
"""
APP = "app: t\nlabel: T\nversion: 1.0.0\nroles: [{key: rep}]\n"


@pytest.fixture(autouse=True)
def steady_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throttle's clock stands still mid-window, so no test straddles a window's edge."""
    moment = dt.datetime(2026, 12, 1, 9, 7, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(throttle, "utcnow", lambda: moment)


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheaper Argon2 parameters for these tests (real and dummy hashes alike): the counts matter here."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    )
    monkeypatch.setattr(passwords, "_DUMMY", [])


def _pack(root: Path) -> Path:
    pack = write_pack(root, {"lead": LEAD})
    (pack / "app.yaml").write_text(APP, encoding="utf-8")
    return pack


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = start([_pack(tmp_path / "pack")], db_url, tmp_path / "files")
    with write(runtime.engine) as conn:
        for name in ("li", "wang"):
            create_user(conn, name, PASSWORD, roles=("rep",))
        create_user(conn, "gone", PASSWORD, roles=("rep",))
        set_active(conn, "gone", False)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def verifies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Argon2 verification run from now on (the real one, counted)."""
    calls: list[str] = []
    lock = threading.Lock()
    real = PasswordHasher.verify

    def counted(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        with lock:
            calls.append(str(password))
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    return calls


def client_at(api: Any, address: str, **options: Any) -> TestClient:
    return TestClient(api, client=(address, 50000), **options)


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, **headers: str) -> Any:
    token = login_token(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers=headers,
        follow_redirects=False,
    )


def statuses(client: TestClient, username: str, password: str, times: int) -> list[int]:
    return [sign_in(client, username, password).status_code for _ in range(times)]


# -- throttling ------------------------------------------------------------------------------


def test_forty_parallel_guesses_reach_the_password_check_five_times(
    app: Runtime, verifies: list[str]
) -> None:
    gate = threading.Barrier(40)

    def guess(i: int) -> int:
        client = client_at(app.api, "203.0.113.7")
        token = login_token(client)
        gate.wait()
        answer = client.post(
            "/login",
            data={"username": "li", "password": f"guess-{i}", "csrf_token": token},
            follow_redirects=False,
        )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(guess, range(40)))
    assert len(verifies) == 5
    assert sorted(answers) == [401] * 5 + [429] * 35
    assert sign_in(client_at(app.api, "203.0.113.7"), "li").status_code == 429  # the right one waits too
    assert sign_in(client_at(app.api, "198.51.100.1"), "li").status_code == 303  # not elsewhere


def test_a_guessing_address_does_not_lock_out_other_users_behind_it(app: Runtime) -> None:
    office = client_at(app.api, "192.0.2.10")
    assert statuses(office, "li", "wrong password", 5) == [401] * 5
    assert sign_in(office, "li").status_code == 429
    colleague = client_at(app.api, "192.0.2.10")
    assert sign_in(colleague, "wang").status_code == 303


def test_failures_from_another_address_do_not_lock_the_user_out_at_theirs(app: Runtime) -> None:
    attacker = client_at(app.api, "198.51.100.66")
    assert statuses(attacker, "li", "wrong password", 7) == [401] * 5 + [429] * 2
    assert sign_in(client_at(app.api, "192.0.2.10"), "li").status_code == 303


def test_a_user_guessed_from_many_addresses_is_guarded_but_not_locked_out(app: Runtime) -> None:
    for n in range(1, 21):  # 20 failures for li, one from each of 20 addresses
        assert sign_in(client_at(app.api, f"198.51.100.{n}"), "li", "wrong password").status_code == 401
    # the addresses that failed are refused now, even with the right password
    assert sign_in(client_at(app.api, "198.51.100.1"), "li").status_code == 429
    # a fresh address gets one try, not five
    fresh = client_at(app.api, "198.51.100.200")
    assert statuses(fresh, "li", "wrong password", 2) == [401, 429]
    # the real user, at an address where they have not failed, still signs in
    assert sign_in(client_at(app.api, "192.0.2.10"), "li").status_code == 303
    # other users are not guarded
    assert sign_in(client_at(app.api, "198.51.100.1"), "wang").status_code == 303


def test_refused_attempts_count_nothing_and_a_good_sign_in_clears_the_address(app: Runtime) -> None:
    home = client_at(app.api, "192.0.2.10")
    assert statuses(home, "li", "wrong password", 4) == [401] * 4
    assert sign_in(home, "li").status_code == 303
    assert statuses(home, "li", "wrong password", 5) == [401] * 5  # the typos before were forgiven
    assert statuses(home, "li", "wrong password", 3) == [429] * 3
    with app.engine.connect() as conn:
        rows = {
            r.scope: r.failures
            for r in conn.execute(select(sign_in_counts.c.scope, sign_in_counts.c.failures))
            if r.scope in ("pair", "address")
        }
    assert rows == {"pair": 5, "address": 9}  # 4 + 5 failures; the success and the refusals not


def test_the_limits_slide_with_time(db_url: str, tmp_path: Path) -> None:
    runtime = start([_pack(tmp_path / "pack")], db_url, tmp_path / "files")
    start_at = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)  # the start of a 15-minute window

    def attempt(minutes: float) -> bool:
        moment = start_at + dt.timedelta(minutes=minutes)
        return throttle.reserve(runtime.engine, "li", "192.0.2.1", now=moment).allowed

    assert [attempt(1) for _ in range(6)] == [True] * 5 + [False]
    assert not attempt(16)  # 14/15 of the five earlier failures still count
    verdict = throttle.reserve(runtime.engine, "li", "192.0.2.1", now=start_at + dt.timedelta(minutes=16))
    assert not verdict.allowed and 0 < verdict.retry_after <= 15 * 60
    assert attempt(31)  # two windows on, they are gone
    runtime.engine.dispose()


# -- the same work for unknown users ----------------------------------------------------------


def test_unknown_and_inactive_users_cost_the_same_argon2_check(app: Runtime, verifies: list[str]) -> None:
    client = client_at(app.api, "192.0.2.10")
    for username in ("li", "nobody", "gone"):
        verifies.clear()
        assert sign_in(client, username, "wrong password").status_code == 401
        assert verifies == ["wrong password"], username
    verifies.clear()
    assert sign_in(client, "gone", PASSWORD).status_code == 401  # right password, deactivated
    assert verifies == [PASSWORD]


# -- forwarded headers ------------------------------------------------------------------------


def _served(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, *options: str
) -> tuple[Any, Runtime]:
    """`formloom serve` with `options`, up to the point uvicorn would start: its app, as uvicorn loads it."""
    captured: dict[str, Any] = {}

    def run(app: Any, **kwargs: Any) -> None:
        captured.update(app=app, **kwargs)

    monkeypatch.setattr(uvicorn, "run", run)
    # `serve` writes some of these into os.environ: set each first, so that the test's end
    # takes away whatever the command left (delenv alone records nothing for an unset name)
    for name in ("FORWARDED_ALLOW_IPS", "FORMLOOM_FORWARDED_ALLOW_IPS", "FORMLOOM_HTTPS_ONLY"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    pack = _pack(tmp_path / "pack")
    args = [
        "serve",
        str(pack),
        "--db",
        db_url,
        "--files",
        str(tmp_path / "f"),
        "--backups",
        str(tmp_path / "b"),
    ]
    assert main([*args, *options]) == 0
    app = captured.pop("app")
    config = uvicorn.Config(app, **captured)
    config.load()
    with write(app.engine) as conn:
        create_user(conn, "li", PASSWORD, roles=("rep",))
    return config.loaded_app, app


def _counted_addresses(engine: Any) -> set[str]:
    with engine.connect() as conn:
        stmt = select(sign_in_counts.c.address).where(sign_in_counts.c.scope == "address")
        return set(conn.execute(stmt).scalars())


def test_forwarded_headers_are_ignored_without_configured_proxies(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, app = _served(tmp_path, db_url, monkeypatch)
    local = client_at(server, "127.0.0.1")  # uvicorn's own default trusted loopback
    spoofed = {"X-Forwarded-For": "203.0.113.99", "X-Forwarded-Proto": "https"}
    assert sign_in(local, "li", "wrong password", **spoofed).status_code == 401
    assert _counted_addresses(app.engine) == {"127.0.0.1"}
    answer = sign_in(local, "li", PASSWORD, **spoofed)
    assert answer.status_code == 303
    assert "secure" not in answer.headers["set-cookie"].lower()  # the request came over http
    app.engine.dispose()


def test_forwarded_headers_are_believed_only_from_the_allowed_proxies(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, app = _served(tmp_path, db_url, monkeypatch, "--forwarded-allow-ips", "10.0.0.1, 10.0.1.0/24")
    forwarded = {"X-Forwarded-For": "203.0.113.99", "X-Forwarded-Proto": "https"}
    stranger = client_at(server, "10.0.0.2")
    assert sign_in(stranger, "li", "wrong password", **forwarded).status_code == 401
    assert _counted_addresses(app.engine) == {"10.0.0.2"}
    for proxy in ("10.0.0.1", "10.0.1.7"):
        assert sign_in(client_at(server, proxy), "li", "wrong password", **forwarded).status_code == 401
    assert _counted_addresses(app.engine) == {"10.0.0.2", "203.0.113.99"}
    # the proxy's client address is throttled on its own: 5 failures lock that address, not the proxy
    for _ in range(3):
        sign_in(client_at(server, "10.0.0.1"), "li", "wrong password", **forwarded)
    assert sign_in(client_at(server, "10.0.0.1"), "li", PASSWORD, **forwarded).status_code == 429
    other = {"X-Forwarded-For": "198.51.100.5", "X-Forwarded-Proto": "https"}
    answer = sign_in(client_at(server, "10.0.0.1"), "li", PASSWORD, **other)
    assert answer.status_code == 303
    assert "secure" in answer.headers["set-cookie"].lower()  # https, as the trusted proxy says
    app.engine.dispose()


# -- sessions end with the password, a role, the account --------------------------------------


def _signed_in(app: Runtime, username: str = "li") -> TestClient:
    client = client_at(app.api, "192.0.2.10")
    assert sign_in(client, username).status_code == 303
    assert client.get("/api/v1/t/lead").status_code == 200
    return client


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda conn: set_password(conn, "li", "another password"), id="password"),
        pytest.param(lambda conn: remove_role(conn, "li", "rep"), id="role"),
        pytest.param(lambda conn: set_active(conn, "li", False), id="deactivated"),
    ],
)
def test_changes_to_a_user_end_their_sessions(app: Runtime, change: Callable[[Any], None]) -> None:
    client, other = _signed_in(app), _signed_in(app, "wang")
    with write(app.engine) as conn:
        change(conn)
    assert client.get("/api/v1/t/lead").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303  # to the sign-in page
    assert other.get("/api/v1/t/lead").status_code == 200


def test_deactivating_a_user_revokes_their_tokens_for_good(app: Runtime) -> None:
    with write(app.engine) as conn:
        token = create_token(conn, "li", "erp")
    auth = {"Authorization": f"Bearer {token}"}
    client = client_at(app.api, "192.0.2.10")
    assert client.get("/api/v1/t/lead", headers=auth).status_code == 200
    with write(app.engine) as conn:
        set_active(conn, "li", False)
        set_active(conn, "li", True)
    assert client.get("/api/v1/t/lead", headers=auth).status_code == 401
    with app.engine.connect() as conn:
        assert conn.execute(select(tokens.c.revoked_at).where(tokens.c.name == "erp")).scalar_one()
    assert sign_in(client, "li").status_code == 303  # the user signs in again


def test_the_user_commands_end_sessions(
    app: Runtime, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (
        ["user", "password", "li", "--password", "another password"],
        ["user", "role", "li", "rep", "--remove"],
        ["user", "deactivate", "li"],
    ):
        client = _signed_in(app)
        with write(app.engine) as conn:
            set_active(conn, "li", True)
            create_token(conn, "li", "cli")
        assert main([*command, "--db", db_url]) == 0
        assert "sessions have ended" in capsys.readouterr().out
        assert client.get("/api/v1/t/lead").status_code == 401
        with write(app.engine) as conn:
            set_password(conn, "li", PASSWORD)
            from runtime.identity.directory import add_role

            add_role(conn, "li", "rep")
    assert main(["user", "activate", "li", "--db", db_url]) == 0
    assert sign_in(client_at(app.api, "192.0.2.11"), "li").status_code == 303


# -- https only -------------------------------------------------------------------------------


def _set_cookies(answer: Any) -> dict[str, str]:
    return {value.split("=", 1)[0]: value for value in answer.headers.get_list("set-cookie")}


def _sign_in_by_hand(client: TestClient) -> Any:
    """Sign in over http, sending the login cookie by hand (a Secure cookie is not sent back over http)."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(
        "/login",
        data={"username": "li", "password": PASSWORD, "csrf_token": token.group(1)},
        headers={"cookie": f"formloom_login_csrf={token.group(1)}"},
        follow_redirects=False,
    ), page


def test_https_only_makes_every_cookie_secure_and_sends_hsts(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORMLOOM_HTTPS_ONLY", "1")
    runtime = start([_pack(tmp_path / "pack")], db_url, tmp_path / "files")
    with write(runtime.engine) as conn:
        create_user(conn, "li", PASSWORD, roles=("rep",))
    client = TestClient(runtime.api)  # TLS ends at a proxy: the server sees http
    answer, page = _sign_in_by_hand(client)
    assert answer.status_code == 303
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    cookies = {**_set_cookies(page), **_set_cookies(answer)}
    assert {"formloom_login_csrf", "formloom_session", "formloom_language"} <= set(cookies)
    for name, value in cookies.items():
        assert "; secure" in value.lower(), name
    assert client.get("/api/v1/apps").headers["strict-transport-security"] == "max-age=31536000"
    runtime.engine.dispose()


def test_without_https_only_http_cookies_are_not_secure_and_there_is_no_hsts(app: Runtime) -> None:
    client = TestClient(app.api)
    answer, page = _sign_in_by_hand(client)
    assert answer.status_code == 303
    assert "strict-transport-security" not in page.headers
    for value in [*_set_cookies(page).values(), *_set_cookies(answer).values()]:
        assert "secure" not in value.lower()


def test_serve_https_only_turns_the_setting_on(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, app = _served(tmp_path, db_url, monkeypatch, "--https-only")
    answer, page = _sign_in_by_hand(client_at(server, "192.0.2.10"))
    assert answer.status_code == 303
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    assert "; secure" in _set_cookies(answer)["formloom_session"].lower()
    app.engine.dispose()
