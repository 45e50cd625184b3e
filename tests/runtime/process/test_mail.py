"""SMTP settings from the environment, and sending through a real local SMTP server."""

from __future__ import annotations

import smtplib

import pytest

from runtime.process.mail import MailSettings, send
from tests.runtime.process.smtp import free_port, smtp_server


def test_from_env_is_none_when_the_host_is_unset_or_empty() -> None:
    assert MailSettings.from_env({}) is None
    assert MailSettings.from_env({"FORMLOOM_SMTP_HOST": ""}) is None
    assert MailSettings.from_env({"FORMLOOM_SMTP_PORT": "2525", "FORMLOOM_SMTP_SECURITY": "ssl"}) is None


def test_from_env_reads_os_environ_when_given_no_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "PORT", "USER", "PASSWORD", "FROM", "SECURITY"):
        monkeypatch.delenv(f"FORMLOOM_SMTP_{name}", raising=False)
    assert MailSettings.from_env() is None
    monkeypatch.setenv("FORMLOOM_SMTP_HOST", "mail.example.com")
    assert MailSettings.from_env() == MailSettings(host="mail.example.com")


@pytest.mark.parametrize(
    ("security", "port"),
    [(None, 25), ("none", 25), ("starttls", 587), ("ssl", 465)],
)
def test_from_env_default_port_follows_the_security(security: str | None, port: int) -> None:
    env = {"FORMLOOM_SMTP_HOST": "mail.example.com"}
    if security is not None:
        env["FORMLOOM_SMTP_SECURITY"] = security
    settings = MailSettings.from_env(env)
    assert settings is not None
    assert settings.port == port
    assert settings.security == (security or "none")


def test_from_env_an_explicit_port_wins_over_the_security_default() -> None:
    settings = MailSettings.from_env(
        {
            "FORMLOOM_SMTP_HOST": "mail.example.com",
            "FORMLOOM_SMTP_SECURITY": "ssl",
            "FORMLOOM_SMTP_PORT": "2465",
        }
    )
    assert settings is not None
    assert (settings.port, settings.security) == (2465, "ssl")


def test_from_env_reads_user_password_and_sender_and_empty_credentials_mean_none() -> None:
    full = MailSettings.from_env(
        {
            "FORMLOOM_SMTP_HOST": "mail.example.com",
            "FORMLOOM_SMTP_USER": "robot",
            "FORMLOOM_SMTP_PASSWORD": "s3cret",
            "FORMLOOM_SMTP_FROM": "crm@example.com",
        }
    )
    assert full == MailSettings(
        host="mail.example.com", user="robot", password="s3cret", sender="crm@example.com"
    )
    bare = MailSettings.from_env(
        {"FORMLOOM_SMTP_HOST": "mail.example.com", "FORMLOOM_SMTP_USER": "", "FORMLOOM_SMTP_PASSWORD": ""}
    )
    assert bare is not None
    assert (bare.user, bare.password, bare.sender) == (None, None, "formloom@localhost")


@pytest.mark.parametrize("security", ["tls", "smtps", "yes"])
def test_from_env_rejects_an_unknown_security_with_value_error(security: str) -> None:
    with pytest.raises(ValueError, match="FORMLOOM_SMTP_SECURITY"):
        MailSettings.from_env({"FORMLOOM_SMTP_HOST": "mail.example.com", "FORMLOOM_SMTP_SECURITY": security})


def test_send_delivers_from_to_subject_and_body_to_the_smtp_server() -> None:
    with smtp_server() as (inbox, port):
        settings = MailSettings(host="127.0.0.1", port=port, sender="crm@example.com", timeout=5)
        send(
            settings,
            "ann@example.com",
            "新记录 Alpha",
            "新记录 Alpha\n第二行 second line",
            "email:notification:7",
        )
    assert len(inbox.messages) == 1
    received = inbox.messages[0]
    assert received.sender == "crm@example.com"
    assert received.recipients == ["ann@example.com"]
    message = received.message
    assert message["From"] == "crm@example.com"
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "新记录 Alpha"
    assert message.get_content_type() == "text/plain"
    body = message.get_content().replace("\r\n", "\n")  # SMTP carries CRLF line ends
    assert body == "新记录 Alpha\n第二行 second line\n"


def test_send_derives_the_message_id_from_the_key_so_a_resend_keeps_it() -> None:
    with smtp_server() as (inbox, port):
        settings = MailSettings(host="127.0.0.1", port=port, sender="crm@example.com", timeout=5)
        send(settings, "ann@example.com", "Hello", "first try", "email:notification:7")
        send(settings, "ann@example.com", "Hello", "the retry", "email:notification:7")
        send(settings, "ann@example.com", "Hello", "another one", "email:notification:8")
    first, retry, other = (r.message["Message-ID"] for r in inbox.messages)
    assert first == retry
    assert first != other
    # the key, made safe for a Message-ID, at the sender's domain
    assert first == "<email.notification.7@example.com>"
    assert other == "<email.notification.8@example.com>"


def test_send_raises_when_the_server_refuses_the_message() -> None:
    with smtp_server() as (inbox, port):
        inbox.refuse = True
        settings = MailSettings(host="127.0.0.1", port=port, timeout=5)
        with pytest.raises(smtplib.SMTPDataError):
            send(settings, "ann@example.com", "Hello", "body", "k")
    assert inbox.messages == []


def test_send_raises_when_no_server_listens() -> None:
    settings = MailSettings(host="127.0.0.1", port=free_port(), timeout=5)
    with pytest.raises(OSError):
        send(settings, "ann@example.com", "Hello", "body", "k")
