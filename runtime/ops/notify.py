"""Push instead of poll on PostgreSQL: publishes and new jobs travel by LISTEN/NOTIFY.

A change that other processes must learn about sends `NOTIFY` in the transaction that
makes it (`notify`), so the message goes out when, and only if, the change commits.
Each server or worker process keeps one `Listener`: a psycopg connection in a background
thread that `LISTEN`s and hands every message to its handlers. When the connection drops
the listener connects again and calls its `on_reconnect` handlers, since messages sent
meanwhile are lost: they do a full check instead.

The channel is named after the schema the connection works in (`formloom_<schema>`), so
several Formloom databases in one PostgreSQL (tests use a schema each) never hear each
other. On SQLite `notify` does nothing; processes there keep a cheap version check.

Messages: `publish` (an app's definition changed) and `job` (a job was queued; workers
look for due work). Token revocations need none: every request reads its token's row
(there is no per-process cache of tokens or sessions), so a revoked token is refused by
every server from the next request on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

PUBLISH, JOB = "publish", "job"
LISTEN_URL_ENV = "FORMLOOM_LISTEN_DB"
LOG = logging.getLogger("formloom.notify")
# the channel, computed where it is used: the same expression on both sides
_CHANNEL = "left('formloom_' || coalesce(current_schema(), 'public'), 63)"
_SENT = "formloom_notified"  # conn.info key: the messages this transaction already sent


def supported(engine: Engine | Connection) -> bool:
    """True when the database can push (PostgreSQL)."""
    return engine.dialect.name == "postgresql"


def notify(conn: Connection, message: str) -> None:
    """Send `message` to every listener when the current transaction commits (PostgreSQL only).

    A message is sent once per transaction however often a change asks for it (PostgreSQL
    also folds repeats, but each would still cost a round trip).
    """
    if not supported(conn):
        return
    # a savepoint rolled back takes its NOTIFY with it: the next savepoint sends again
    within = (conn.get_transaction(), conn.get_nested_transaction())
    sent: dict[str, Any] = conn.info.setdefault(_SENT, {})
    if within[0] is not None and sent.get(message) == within:
        return
    conn.execute(text(f"SELECT pg_notify({_CHANNEL}, :message)"), {"message": message})
    sent[message] = within


def libpq_url(engine: Engine) -> str:
    """The engine's URL as libpq takes it (no SQLAlchemy driver name)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


Handler = Callable[[str], None]


class Listener:
    """One LISTEN connection in a background thread; reconnects when the connection drops."""

    def __init__(self, url: str, *, retry_max: float = 5.0, wait: float = 0.5) -> None:
        self.url = url
        self.retry_max = retry_max
        self.wait = wait  # how often the thread looks at `stopping` while no message comes
        self.handlers: list[Handler] = []
        self.reconnect_handlers: list[Callable[[], None]] = []
        self.listening = threading.Event()  # set while LISTEN is in force
        self.stopping = threading.Event()
        self.connections = 0  # how many times it connected (a reconnect makes it 2, …)
        self.thread: threading.Thread | None = None
        self._conn: Any = None

    def on_message(self, handler: Handler) -> None:
        """Call `handler(message)` for each message (in the listener's thread)."""
        self.handlers.append(handler)

    def on_reconnect(self, handler: Callable[[], None]) -> None:
        """Call `handler()` after each reconnect (messages may have been missed meanwhile)."""
        self.reconnect_handlers.append(handler)

    def start(self, timeout: float = 10.0) -> Listener:
        """Start listening; returns once LISTEN is in force (or after `timeout`)."""
        self.thread = threading.Thread(target=self._run, name="formloom-listener", daemon=True)
        self.thread.start()
        self.listening.wait(timeout)
        return self

    def stop(self) -> None:
        """Stop listening and close the connection."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(self.wait * 4 + 1)

    def drop(self) -> None:
        """Close the connection as if the network had failed (tests)."""
        conn = self._conn
        if conn is not None:
            conn.pgconn.finish()

    def _run(self) -> None:
        delay = 0.05
        while not self.stopping.is_set():
            try:
                self._listen()
                delay = 0.05
            except Exception as exc:  # the connection failed or dropped: try again
                self.listening.clear()
                if self.stopping.is_set():
                    break
                LOG.warning("listener connection lost, reconnecting", extra={"error": str(exc)})
                self.stopping.wait(delay)
                delay = min(self.retry_max, delay * 2)

    def _listen(self) -> None:
        import psycopg

        conn = psycopg.connect(
            self.url,
            autocommit=True,
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        self._conn = conn
        try:
            channel = conn.execute(f"SELECT {_CHANNEL}").fetchone()[0]  # type: ignore[index]
            conn.execute(f'LISTEN "{channel}"')
            self.connections += 1
            self.listening.set()
            if self.connections > 1:
                for handler in self.reconnect_handlers:
                    _safely(handler)
            while not self.stopping.is_set():
                for message in conn.notifies(timeout=self.wait):
                    for each in self.handlers:
                        _safely(each, message.payload)
                if conn.closed or conn.broken:
                    raise ConnectionError("the listener's connection closed")
        finally:
            self._conn = None
            self.listening.clear()
            conn.close()


def _safely(handler: Callable[..., None], *args: Any) -> None:
    try:
        handler(*args)
    except Exception:
        LOG.exception("a notification handler failed")


_PROCESS: dict[str, Listener] = {}
_PROCESS_LOCK = threading.Lock()


def listener_for(engine: Engine) -> Listener:
    """The process's listener for `engine`'s database (started on first use; one per URL).

    $FORMLOOM_LISTEN_DB, when set, is the URL it connects to instead: the database itself
    where the engine goes through a pooler in transaction mode, which cannot LISTEN.
    """
    url = os.environ.get(LISTEN_URL_ENV) or libpq_url(engine)
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with _PROCESS_LOCK:
        found = _PROCESS.get(url)
        if found is None or found.stopping.is_set():
            found = Listener(url).start()
            _PROCESS[url] = found
        return found


def stop_all() -> None:
    """Stop every listener of this process."""
    with _PROCESS_LOCK:
        for each in _PROCESS.values():
            each.stop()
        _PROCESS.clear()
