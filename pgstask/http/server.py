"""How ``pgstask serve`` runs uvicorn: its settings, and the guard on slow request heads.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` and answers 503 once
``limit_concurrency`` connections are open, but it waits for a request head or body for ever: a
client that sends half a request line, one header line every few seconds, or a body that stops,
holds its connection (and a file descriptor) as long as it likes. ``GuardedH11Protocol`` adds the
missing bounds to uvicorn's own h11 protocol, and nothing else:

- a whole request head must arrive within ``header_timeout`` seconds of the connection's start,
  or of the end of the previous response on a kept-alive connection; otherwise the connection is
  closed. The clock does not restart when a byte arrives, so dripping a header line at a time
  does not help;
- a request body must not stall: ``body_timeout`` seconds without a byte of it, while uvicorn is
  reading, close the connection (a slow upload that keeps sending is fine, and so is an app
  that reads slowly: uvicorn then stops reading and the clock waits);
- a connection beyond ``max_connections`` is answered 503 and closed as soon as it is accepted,
  before it can sit waiting for its head (uvicorn's own check runs only once a head has arrived).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from uvicorn.server import ServerState

from pgstask.http.config import HttpSettings
from pgstask.http.protocol import JsonH11Protocol

#: Seconds uvicorn waits for open requests (progress streams, uploads) after SIGTERM/SIGINT
#: before it cancels them.
GRACEFUL_SHUTDOWN = 5

_BUSY_BODY = json.dumps(
    {
        "success": False,
        "code": 503,
        "error": "Service unavailable",
        "message": "too many connections; try again shortly",
    }
).encode()
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


class GuardedH11Protocol(JsonH11Protocol):
    """uvicorn's h11 protocol (answering malformed requests as JSON, ``JsonH11Protocol``) with
    deadlines for request heads and bodies, and a connection cap.

    One timer per connection, armed for the state the client is in: waiting for a head (not
    restarted by data: the whole head must arrive in time), sending a body (restarted by each
    piece of it, and only judged while uvicorn is reading), or neither (no timer). The settings
    are class attributes: uvicorn makes a protocol per connection from a class, so
    ``guarded_protocol`` makes a subclass with them."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 500

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: refused with a 503 past ``max_connections``, else given
        ``header_timeout`` for its first request head."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.logger.warning("Refused a connection: %d open", len(self.connections) - 1)
            transport.write(BUSY)
            transport.close()
            return
        self._arm(self.header_timeout)

    def data_received(self, data: bytes) -> None:
        """Each piece of a body restarts the body timer; a request read whole stops it."""
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm(self.body_timeout)  # a piece of the body: the client is alive
        elif state is not h11.IDLE:  # the whole request is in
            self._disarm()

    def on_response_complete(self) -> None:
        """An answer is sent: time the next request's head on a kept-alive connection, or the
        rest of a body uvicorn has not read."""
        super().on_response_complete()
        state = self.conn.their_state
        if state is h11.IDLE:
            self._arm(self.header_timeout)  # the next request's head, on a kept-alive connection
        elif state is h11.SEND_BODY:
            self._arm(self.body_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: its timer with it."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        state = self.conn.their_state
        if state is h11.SEND_BODY and self.flow.read_paused:
            self._arm(self.body_timeout)  # uvicorn stopped reading: the app is slow, not the client
        elif state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(
    *, header_timeout: float, body_timeout: float, max_connections: int
) -> type[GuardedH11Protocol]:
    """A ``GuardedH11Protocol`` class with these settings, for ``uvicorn.Config(http=…)``."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "max_connections": max_connections,
        },
    )


def uvicorn_config(app: Any, *, host: str, port: int, http: HttpSettings) -> uvicorn.Config:
    """The uvicorn configuration of ``pgstask serve``.

    Forwarded headers (``X-Forwarded-For``, ``-Proto``) are believed only from the proxies of
    ``http.forwarded_allow_ips`` (by default from nobody: uvicorn's own default would believe
    any process on the host). uvicorn's ``limit_concurrency`` is one more than the connection
    cap: the guard has refused the connections beyond the cap already, and uvicorn counts the
    connection that asks as well."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        http=guarded_protocol(
            header_timeout=http.header_timeout,
            body_timeout=http.body_timeout,
            max_connections=http.max_connections,
        ),
        ws="none",
        timeout_keep_alive=http.keep_alive,
        limit_concurrency=http.max_connections + 1,
        proxy_headers=bool(http.forwarded_allow_ips),
        forwarded_allow_ips=list(http.forwarded_allow_ips),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
