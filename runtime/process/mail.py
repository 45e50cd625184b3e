"""E-mail through SMTP, configured by settings (environment variables).

`FORMLOOM_SMTP_HOST` turns e-mail on; `FORMLOOM_SMTP_PORT`, `FORMLOOM_SMTP_USER`,
`FORMLOOM_SMTP_PASSWORD`, `FORMLOOM_SMTP_FROM` (formloom@localhost) and
`FORMLOOM_SMTP_SECURITY` (`none`, `starttls` or `ssl`; the default port is 25, 587 or 465)
complete it. TLS checks the server's certificate. Mails are sent by
the worker from e-mail jobs; each carries a Message-ID made from its job key, so a
retried send can be recognised by the receiving side.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal, Protocol

Security = Literal["none", "starttls", "ssl"]
# A file sent with a message: (file name, content type, bytes).
Attachment = tuple[str, str, bytes]


class Sender(Protocol):
    """How the worker sends one message: (settings, to, subject, body, message key), and the
    files attached, when there are any. `send` below; `formloom test` passes one that keeps
    the message (an outbox) instead."""

    def __call__(
        self,
        settings: MailSettings,
        to: str,
        subject: str,
        body: str,
        message_key: str,
        /,
        *,
        attachments: Sequence[Attachment] = (),
    ) -> None: ...


DEFAULT_PORTS = {"none": "25", "starttls": "587", "ssl": "465"}


@dataclass(frozen=True)
class MailSettings:
    """Where and how to send e-mail."""

    host: str
    port: int = 25
    user: str | None = None
    password: str | None = None
    sender: str = "formloom@localhost"
    security: Security = "none"
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MailSettings | None:
        """The settings in the environment; None when `FORMLOOM_SMTP_HOST` is not set."""
        values = os.environ if env is None else env
        host = values.get("FORMLOOM_SMTP_HOST")
        if not host:
            return None
        security = values.get("FORMLOOM_SMTP_SECURITY", "none")
        if security not in ("none", "starttls", "ssl"):
            raise ValueError("FORMLOOM_SMTP_SECURITY must be none, starttls or ssl")
        port = values.get("FORMLOOM_SMTP_PORT", DEFAULT_PORTS[security])
        if not port.isdigit():
            raise ValueError(f"FORMLOOM_SMTP_PORT must be a port number, not '{port}'")
        return cls(
            host=host,
            port=int(port),
            user=values.get("FORMLOOM_SMTP_USER") or None,
            password=values.get("FORMLOOM_SMTP_PASSWORD") or None,
            sender=values.get("FORMLOOM_SMTP_FROM", "formloom@localhost"),
            security=security,  # type: ignore[arg-type]
        )


def send(
    settings: MailSettings,
    to: str,
    subject: str,
    body: str,
    message_key: str,
    /,
    *,
    attachments: Sequence[Attachment] = (),
) -> None:
    """Send one plain-text message, with its attachments; raises on any SMTP or network
    failure (the job retries)."""
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    domain = settings.sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{_safe(message_key)}@{domain}>"
    message.set_content(body)
    for name, content_type, content in attachments:
        maintype, _, subtype = content_type.partition("/")
        if not subtype:
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    context = ssl.create_default_context()  # TLS always checks the server's certificate
    smtp: smtplib.SMTP
    if settings.security == "ssl":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with smtp:
        if settings.security == "starttls":
            smtp.starttls(context=context)
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(message)


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in ".-_" else "." for c in key)
