"""What a request may carry: a body within its size limit, and text every database can store.

`RequestLimits` is a pure ASGI middleware in front of every route (API, web pages, designer):

- **Size.** A body may hold at most `max_body` bytes (`FORMLOOM_MAX_BODY`, `serve
  --max-body`; 2 MiB by default) — JSON, form posts, anything — or, when it is
  `multipart/form-data` (an upload, or a web form with attachments), the file limit plus
  room for the multipart framing (`FORMLOOM_MAX_UPLOAD`, `serve --max-upload`; 50 MiB by
  default). A declared `Content-Length` over the limit is answered 413 before a byte is
  read; otherwise the bytes are counted as they stream in, and reading stops with 413 at
  the limit, so an upload is never spooled whole first.
- **Text.** NUL characters and unpaired surrogates (runtime/records/text.py) are refused
  with 422 naming where they are: the JSON path of a body value or key (`lines[0].name`),
  the form field, the query parameter (`query.where`) or the header; a path holding NUL
  is no route (404). JSON and form bodies are read whole (they are small) and parsed
  again only when their raw bytes hold a `\\u0000` or surrogate escape or a `%00`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser

from runtime.records.files import DEFAULT_MAX_SIZE
from runtime.records.text import BAD_TEXT, BAD_TEXT_MESSAGE, shown

MAX_BODY_ENV = "FORMLOOM_MAX_BODY"
MAX_UPLOAD_ENV = "FORMLOOM_MAX_UPLOAD"
DEFAULT_MAX_BODY = 2 * 1024 * 1024
MULTIPART_FRAMING = 1024 * 1024  # part headers, boundaries and the form's other fields
SUFFIXES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
SIZE = re.compile(r"\s*([0-9]{1,15})\s*([kmg]?)(?:i?b)?\s*", re.IGNORECASE)
# Raw JSON that may hide bad text: a \u0000 escape or a surrogate escape (paired ones too).
SUSPECT_JSON = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF][0-9a-fA-F]{2})")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_size(text: str) -> int:
    """`2097152`, `512k`, `2M`, `2MiB`, `1g` → bytes; ValueError otherwise."""
    found = SIZE.fullmatch(text)
    if found is None:
        raise ValueError(f"not a size: {text!r} (write bytes, or a number with k, M or G)")
    return int(found.group(1)) * SUFFIXES[found.group(2).lower()]


def max_body() -> int:
    """The limit of a request body that is not an upload (`FORMLOOM_MAX_BODY`)."""
    return _size_from_env(MAX_BODY_ENV, DEFAULT_MAX_BODY)


def max_upload() -> int:
    """The limit of one uploaded file (`FORMLOOM_MAX_UPLOAD`)."""
    return _size_from_env(MAX_UPLOAD_ENV, DEFAULT_MAX_SIZE)


def _size_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return parse_size(raw) if raw else default


class BodyTooLarge(HTTPException):
    """Raised by the counting `receive` when a streamed body passes its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may hold at most {limit} bytes")


class RequestLimits:
    """ASGI middleware: body size limits, and no NUL or unpaired surrogate in what is read."""

    def __init__(
        self, app: App, max_body: int = DEFAULT_MAX_BODY, max_upload: int = DEFAULT_MAX_SIZE
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", ""):
            await _answer(send, 404, None, "not_found", "Not Found")
            return
        raw_headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        headers = {k.decode("latin-1").lower(): v for k, v in raw_headers}
        problem = _query_problem(scope.get("query_string", b"")) or _header_problem(raw_headers)
        if problem is not None:
            await _answer(send, 422, problem, "invalid", BAD_TEXT_MESSAGE)
            return
        media = headers.get("content-type", b"").split(b";")[0].strip().lower()
        limit = self.max_upload + MULTIPART_FRAMING if media == b"multipart/form-data" else self.max_body
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        if media == b"application/x-www-form-urlencoded" or _is_json(media):
            await self._checked(scope, receive, send, limit, media)
        else:
            await self._counted(scope, receive, send, limit)

    async def _checked(self, scope: Scope, receive: Receive, send: Send, limit: int, media: bytes) -> None:
        """Read a JSON or form body whole, check its text, then hand it on."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        problem = _json_problem(body) if _is_json(media) else _form_problem(body)
        if problem is not None:
            field, code, message_text = problem
            await _answer(send, 422, field, code, message_text)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Stream any other body through, stopping at the limit."""
        size = 0
        started = False

        async def counting() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise BodyTooLarge(limit)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(send, limit)


def _is_json(media: bytes) -> bool:
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _content_length(headers: dict[str, bytes]) -> int | None:
    raw = headers.get("content-length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def _query_problem(query: bytes) -> str | None:
    if b"%00" not in query and b"\x00" not in query:
        return None  # starlette decodes the rest with replacement characters: no surrogates
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return f"query.{shown(name)}"
    return "query"


def _header_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    for raw_name, value in headers:
        name = raw_name.decode("latin-1").lower()
        if b"\x00" in value:
            return f"header.{shown(name)}"
        if name == "cookie" and b"\\" in value:  # a quoted cookie may escape NUL as \000
            for key, text in cookie_parser(value.decode("latin-1")).items():
                if BAD_TEXT.search(text):
                    return f"cookie.{shown(key)}"
    return None


def _json_problem(body: bytes) -> tuple[str | None, str, str] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, "json_invalid", f"the JSON body is not UTF-8 (byte {error.start})"
    if SUSPECT_JSON.search(body) is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None  # not JSON: the route answers that
    path = _bad_text_path(data)
    return None if path is None else (path, "invalid", BAD_TEXT_MESSAGE)


def _bad_text_path(data: Any) -> str | None:
    """The path (`lines[0].name`) of the first key or text holding bad text, else None."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if BAD_TEXT.search(value):
                return path or None
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{shown(key)}" if path else shown(key)
                if BAD_TEXT.search(key):
                    return where
                stack.append((item, where))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
    return None


def _form_problem(body: bytes) -> tuple[str | None, str, str] | None:
    if b"%00" not in body and b"\x00" not in body:
        return None
    for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return shown(name), "invalid", BAD_TEXT_MESSAGE
    return None


async def _too_large(send: Send, limit: int) -> None:
    message = f"the request body may hold at most {limit} bytes"
    await _answer(send, 413, None, "too_large", message, close=True)


async def _answer(
    send: Send, status: int, field: str | None, code: str, message: str, close: bool = False
) -> None:
    body = orjson.dumps({"errors": [{"field": field, "code": code, "message": message}]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
