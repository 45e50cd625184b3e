"""A real HTTP server on 127.0.0.1 that keeps the webhooks it receives, for webhook tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    """One request received."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the server received; `answers` are the statuses of the next requests (then 200)."""

    url: str = ""
    calls: list[Call] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, call: Call) -> int:
        with self.lock:
            self.calls.append(call)
            return self.answers.pop(0) if self.answers else 200

    def keys(self) -> list[str]:
        """The Idempotency-Key of every call, in order."""
        return [c.headers.get("idempotency-key", "") for c in self.calls]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """Serve on a free port of 127.0.0.1 until the block ends."""
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = received.answer(Call(self.path, headers, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/marketing?token=abc"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
