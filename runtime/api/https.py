"""Serving behind https: `Secure` cookies and Strict-Transport-Security.

With `FORMLOOM_HTTPS_ONLY=1` (what `formloom serve --https-only` sets) every cookie
the server sets is `Secure` and every answer carries `Strict-Transport-Security`, so
a browser never sends the session over plain http, even when TLS ends at a proxy
that speaks http to the server. Without it, cookies are `Secure` only on requests
that arrived over https — as uvicorn reports the scheme, which believes
`X-Forwarded-Proto` only from the addresses given to `serve --forwarded-allow-ips`.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.requests import Request

HTTPS_ONLY_ENV = "FORMLOOM_HTTPS_ONLY"
HSTS = "max-age=31536000"  # a year; subdomains are left to their own servers


def https_only() -> bool:
    """True when the server is set to be reached over https only."""
    return os.environ.get(HTTPS_ONLY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def secure_cookies(request: Request) -> bool:
    """Whether cookies set in answer to `request` must be `Secure`."""
    return https_only() or request.url.scheme == "https"


class HttpsOnly:
    """ASGI middleware: adds Strict-Transport-Security and makes every Set-Cookie `Secure`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, _secure(v) if k.lower() == b"set-cookie" else v) for k, v in message["headers"]
                ]
                headers = [(k, v) for k, v in headers if k.lower() != b"strict-transport-security"]
                headers.append((b"strict-transport-security", HSTS.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def _secure(cookie: bytes) -> bytes:
    attributes = [part.strip().lower() for part in cookie.split(b";")[1:]]
    return cookie if b"secure" in attributes else cookie + b"; Secure"
