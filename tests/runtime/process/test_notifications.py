"""Notifications: a notify effect writes one row per recipient in their language, the inbox API
lists and marks them, and e-mails leave as jobs that a worker delivers (and retries) over SMTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select, update

from runtime.boot import Runtime
from runtime.db import write
from runtime.identity.directory import create_user
from runtime.identity.tokens import create_token
from runtime.model.common import Labels
from runtime.process.engine import ProcessEngine
from runtime.process.mail import MailSettings
from runtime.process.notifications import notify
from runtime.process.worker import Worker
from runtime.schema.system import jobs, notifications, users
from runtime.schema.types import utcnow
from tests.runtime.process.smtp import free_port, smtp_server
from tests.support import serve, write_files, write_pack

APP = """\
app: t
label: {zh: 测试, en: Test}
version: 1.0.0
roles:
  - {key: reviewer}
"""
FORM = """\
form: f
label: {zh: 记录, en: Record}
title_field: title
fields:
  - {key: title, type: text}
  - {key: owner, type: user}
"""
AUTOMATION = """\
automation: k
form: f
trigger: created
effects:
  - notify:
      to: [{user_field: owner}, {role: reviewer}]
      message: {zh: "新记录 {{ record.title }}", en: "New record {{ record.title }}"}
      email: true
"""
# name: (language, roles, e-mail address)
PEOPLE: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "ann": ("zh", ("reviewer",), "ann@example.com"),  # the owner, and a reviewer too
    "bob": ("en", ("reviewer",), "bob@example.com"),
    "cy": ("en", ("reviewer",), None),  # no address: notified in the app only
    "dan": ("zh", (), "dan@example.com"),  # neither owner nor reviewer
}
SENDER = "crm@example.com"


class Site:
    """The pack served on a database, its users with tokens, and helpers to read notifications."""

    def __init__(self, db_url: str, root: Path) -> None:
        pack = write_pack(root / "pack", {"f": FORM})
        write_files(pack, {"app.yaml": APP, "automations/k.yaml": AUTOMATION})
        self.runtime: Runtime
        self.runtime, self.admin = serve(pack, db_url, root / "files")
        self.engine.mail = None  # no SMTP unless a test configures it
        self.ids: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        with write(self.db) as conn:
            for name, (language, roles, address) in PEOPLE.items():
                self.ids[name] = create_user(conn, name, None, roles=roles, language=language)
                conn.execute(update(users).where(users.c.id == self.ids[name]).values(email=address))
                self.tokens[name] = create_token(conn, name, "test")
        self.anonymous = TestClient(self.runtime.api)

    @property
    def db(self) -> Any:
        return self.runtime.engine

    @property
    def engine(self) -> ProcessEngine:
        hooks = self.runtime.service.hooks
        assert isinstance(hooks, ProcessEngine)
        return hooks

    def client(self, name: str) -> TestClient:
        return TestClient(self.runtime.api, headers={"Authorization": f"Bearer {self.tokens[name]}"})

    def create(self, title: str, owner: str = "ann") -> int:
        response = self.admin.post("/api/v1/t/f", json={"title": title, "owner": self.ids[owner]})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def messages(self, name: str) -> list[str]:
        """The stored notification messages of a user, oldest first."""
        with self.db.connect() as conn:
            stmt = (
                select(notifications.c.message)
                .where(notifications.c.user_id == self.ids[name])
                .order_by(notifications.c.id)
            )
            return list(conn.execute(stmt).scalars())

    def inbox(self, name: str, query: str = "") -> dict[str, Any]:
        response = self.client(name).get(f"/api/v1/notifications{query}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def email_jobs(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            stmt = select(jobs).where(jobs.c.kind == "email").order_by(jobs.c.id)
            return [dict(row) for row in conn.execute(stmt).mappings()]

    def smtp(self, port: int) -> MailSettings:
        return MailSettings(host="127.0.0.1", port=port, sender=SENDER, timeout=5)


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    built = Site(db_url, tmp_path)
    yield built
    built.runtime.engine.dispose()


# -- the notify effect -------------------------------------------------------------------


def test_each_recipient_is_notified_once_in_their_language_with_record_fields(site: Site) -> None:
    site.create("Alpha")
    assert site.messages("ann") == ["新记录 Alpha"]  # owner and reviewer: still one notification
    assert site.messages("bob") == ["New record Alpha"]
    assert site.messages("cy") == ["New record Alpha"]
    assert site.messages("dan") == []


def test_the_recipient_list_follows_the_record_owner(site: Site) -> None:
    site.create("Beta", owner="dan")
    assert site.messages("dan") == ["新记录 Beta"]
    assert site.messages("ann") == ["新记录 Beta"]  # as a reviewer


def test_a_notification_links_to_its_record(site: Site) -> None:
    record_id = site.create("Alpha")
    (item,) = site.inbox("bob")["items"]
    assert item["message"] == "New record Alpha"
    assert item["record"] == f"/api/v1/t/f/{record_id}"
    assert item["read_at"] is None
    assert item["created_at"].endswith("Z")


# -- the inbox API -------------------------------------------------------------------------


def test_inbox_lists_newest_first_with_the_unread_count(site: Site) -> None:
    for title in ("One", "Two", "Three"):
        site.create(title)
    page = site.inbox("bob")
    assert [i["message"] for i in page["items"]] == ["New record Three", "New record Two", "New record One"]
    assert page["unread"] == 3
    assert page["next_offset"] is None


def test_inbox_pages_with_limit_and_offset(site: Site) -> None:
    for title in ("One", "Two", "Three"):
        site.create(title)
    first = site.inbox("bob", "?limit=2")
    assert [i["message"] for i in first["items"]] == ["New record Three", "New record Two"]
    assert first["next_offset"] == 2
    second = site.inbox("bob", "?limit=2&offset=2")
    assert [i["message"] for i in second["items"]] == ["New record One"]
    assert second["next_offset"] is None
    assert first["unread"] == second["unread"] == 3


def test_marking_one_read_lowers_the_unread_count_and_unread_true_leaves_it_out(site: Site) -> None:
    for title in ("One", "Two", "Three"):
        site.create(title)
    items = site.inbox("bob")["items"]
    two = next(i for i in items if i["message"] == "New record Two")
    answer = site.client("bob").post(f"/api/v1/notifications/{two['id']}/read")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"read": 1}

    everything = site.inbox("bob")
    assert everything["unread"] == 2
    marked = next(i for i in everything["items"] if i["id"] == two["id"])
    assert marked["read_at"] is not None
    unread = site.inbox("bob", "?unread=true")
    assert [i["message"] for i in unread["items"]] == ["New record Three", "New record One"]
    assert unread["unread"] == 2
    # marking it again changes nothing
    assert site.client("bob").post(f"/api/v1/notifications/{two['id']}/read").json() == {"read": 0}


def test_read_all_marks_every_notification_of_the_caller_and_no_one_elses(site: Site) -> None:
    for title in ("One", "Two"):
        site.create(title)
    answer = site.client("bob").post("/api/v1/notifications/read-all")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"read": 2}
    assert site.inbox("bob")["unread"] == 0
    assert site.inbox("bob", "?unread=true")["items"] == []
    assert all(i["read_at"] is not None for i in site.inbox("bob")["items"])
    assert site.inbox("ann")["unread"] == 2
    assert site.inbox("cy")["unread"] == 2


def test_a_user_cannot_mark_another_users_notification_read(site: Site) -> None:
    site.create("Alpha")
    (ann_item,) = site.inbox("ann")["items"]
    answer = site.client("bob").post(f"/api/v1/notifications/{ann_item['id']}/read")
    assert answer.status_code == 404, answer.text
    assert site.inbox("ann")["unread"] == 1
    assert site.inbox("ann")["items"][0]["read_at"] is None
    assert site.client("bob").post("/api/v1/notifications/999999/read").status_code == 404


def test_inbox_only_shows_the_callers_own_notifications(site: Site) -> None:
    site.create("Alpha")
    assert site.inbox("dan") == {"items": [], "unread": 0, "next_offset": None}
    assert [i["message"] for i in site.inbox("ann")["items"]] == ["新记录 Alpha"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/v1/notifications"),
        ("GET", "/api/v1/notifications?unread=true"),
        ("POST", "/api/v1/notifications/1/read"),
        ("POST", "/api/v1/notifications/read-all"),
    ],
)
def test_notification_routes_answer_401_without_a_token(site: Site, method: str, url: str) -> None:
    site.create("Alpha")
    assert site.anonymous.request(method, url).status_code == 401
    assert site.inbox("ann")["unread"] == 1


# -- e-mail --------------------------------------------------------------------------------


def test_without_smtp_settings_no_email_job_is_queued(site: Site) -> None:
    site.create("Alpha")
    assert site.email_jobs() == []
    assert site.messages("bob") == ["New record Alpha"]


def test_with_smtp_an_email_job_is_queued_for_each_recipient_with_an_address(site: Site) -> None:
    site.engine.mail = site.smtp(free_port())
    site.create("Alpha")
    queued = site.email_jobs()
    assert sorted((j["payload"]["to"], j["payload"]["subject"], j["payload"]["body"]) for j in queued) == [
        ("ann@example.com", "新记录 Alpha", "新记录 Alpha"),
        ("bob@example.com", "New record Alpha", "New record Alpha"),
    ]
    assert {j["status"] for j in queued} == {"pending"}
    assert {j["attempts"] for j in queued} == {0}


def test_the_worker_delivers_exactly_the_queued_emails_to_the_smtp_server(site: Site) -> None:
    with smtp_server() as (inbox, port):
        site.engine.mail = site.smtp(port)
        site.create("Alpha")
        assert inbox.messages == []  # queued in the transaction, sent only by the worker
        stats = Worker(site.engine).run_until_idle()
        assert stats.by_kind == {"email": 2}
        assert stats.failed == 0
        delivered = sorted(
            (r.recipients[0], r.message["To"], r.message["Subject"], r.message["From"])
            for r in inbox.messages
        )
        assert delivered == [
            ("ann@example.com", "ann@example.com", "新记录 Alpha", SENDER),
            ("bob@example.com", "bob@example.com", "New record Alpha", SENDER),
        ]
        # each carries the Message-ID of its job key, so a resend is recognisable
        keys = {j["payload"]["to"]: j["key"] for j in site.email_jobs()}
        for received in inbox.messages:
            safe = keys[received.recipients[0]].replace(":", ".")
            assert received.message["Message-ID"] == f"<{safe}@example.com>"
        assert {j["status"] for j in site.email_jobs()} == {"done"}

        # nothing is sent twice
        assert Worker(site.engine).run_until_idle().done == 0
        assert len(inbox.messages) == 2


@pytest.mark.parametrize("trouble", ["refused", "down"])
def test_an_email_the_smtp_server_does_not_take_is_retried_later_not_lost(site: Site, trouble: str) -> None:
    with smtp_server() as (inbox, port):
        if trouble == "refused":
            inbox.refuse = True
            site.engine.mail = site.smtp(port)
        else:
            site.engine.mail = site.smtp(free_port())  # nothing listens there
        site.create("Alpha", owner="dan")  # dan (owner), ann and bob have addresses: three e-mails
        started = utcnow()
        stats = Worker(site.engine).run_until_idle()
        assert (stats.done, stats.failed) == (0, 3)
        assert inbox.messages == []
        failed = site.email_jobs()
        assert len(failed) == 3
        for job in failed:
            assert job["status"] == "pending"
            assert job["attempts"] == 1
            assert job["due_at"] > started
            assert job["last_error"]
            assert job["lease_owner"] is None
            assert job["finished_at"] is None
        # not due yet: an immediate second run leaves them alone
        assert Worker(site.engine).run_until_idle().failed == 0

        # once the server takes mail again and the retry is due, every e-mail arrives, once
        inbox.refuse = False
        site.engine.mail = site.smtp(port)
        later = max(j["due_at"] for j in failed) + dt.timedelta(seconds=1)
        site.engine.clock = lambda: later
        assert Worker(site.engine).run_until_idle().done == 3
        assert sorted(r.recipients[0] for r in inbox.messages) == [
            "ann@example.com",
            "bob@example.com",
            "dan@example.com",
        ]
        retried = site.email_jobs()
        assert {(j["status"], j["attempts"], j["last_error"]) for j in retried} == {("done", 2, None)}


def test_an_unset_smtp_at_send_time_fails_the_job_for_a_retry(site: Site) -> None:
    site.engine.mail = site.smtp(free_port())
    site.create("Alpha")
    site.engine.mail = None  # configured when queued, gone when sent
    stats = Worker(site.engine).run_until_idle()
    assert stats.failed == 2
    for job in site.email_jobs():
        assert job["status"] == "pending"
        assert "FORMLOOM_SMTP_HOST" in job["last_error"]


# -- idempotency under a key ---------------------------------------------------------------


def _notify(conn: Connection, site: Site, key: str | None, email: MailSettings | None = None) -> int:
    return notify(
        conn,
        [site.ids["ann"], site.ids["bob"]],
        Labels(zh="提醒 {{ record.title }}", en="Reminder {{ record.title }}"),
        {"title": "Alpha"},
        utcnow(),
        where=("t", "f", 1),
        key=key,
        email=email,
    )


def test_a_retried_notify_under_the_same_key_notifies_nobody_twice(site: Site) -> None:
    with write(site.db) as conn:
        assert _notify(conn, site, "schedule:t:k:1") == 2
        assert _notify(conn, site, "schedule:t:k:1") == 0
    with write(site.db) as conn:  # a retried job: a later transaction, the same key
        assert _notify(conn, site, "schedule:t:k:1") == 0
    assert site.messages("ann") == ["提醒 Alpha"]
    assert site.messages("bob") == ["Reminder Alpha"]


def test_a_retried_notify_under_the_same_key_queues_no_second_email(site: Site) -> None:
    settings = site.smtp(free_port())
    with write(site.db) as conn:
        assert _notify(conn, site, "timer:1", settings) == 2
        assert _notify(conn, site, "timer:1", settings) == 0
    assert sorted(j["payload"]["to"] for j in site.email_jobs()) == ["ann@example.com", "bob@example.com"]


def test_another_key_or_no_key_notifies_again(site: Site) -> None:
    with write(site.db) as conn:
        assert _notify(conn, site, "timer:1") == 2
        assert _notify(conn, site, "timer:2") == 2
        assert _notify(conn, site, None) == 2
        assert _notify(conn, site, None) == 2
    assert site.messages("bob") == ["Reminder Alpha"] * 4


def test_notify_of_nobody_writes_nothing(site: Site) -> None:
    with write(site.db) as conn:
        assert notify(conn, [], Labels(en="x"), {}, utcnow(), key="k") == 0
    assert site.messages("ann") == []
