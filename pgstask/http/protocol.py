"""The HTTP/1.1 protocol ``pgstask serve`` runs: uvicorn's h11 protocol, answering a request it
cannot parse (a bad request line, header or framing; headers past h11's size limit) with the
API's JSON error body instead of uvicorn's plain text.

Such a request never reaches the app, so no middleware can answer it: the answer is written by
the protocol, whose ``send_400_response`` is the one place uvicorn writes it. This is uvicorn's
own method with another body (``tests/test_http_errors.py`` sends malformed requests to a real
server, so an upgrade that changes it fails there). A request that passes h11 but not the app's
rules is answered by the app (``errors.JsonAnswers``).

After the answer the connection lingers: its write side is shut (the client reads the answer,
then the end) while what the client still sends is read and dropped, up to ``LINGER_BYTES`` or
``LINGER_SECONDS``. Closing at once with unread data would make the kernel reset the connection,
and a client then often loses the answer it was sent (a header past h11's 16 KiB limit arrives
in pieces, and the rest is still on its way).
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from pgstask.http.errors import NO_STORE, error_body

LINGER_BYTES = 1024 * 1024
LINGER_SECONDS = 5.0
MALFORMED = json.dumps(
    error_body(400, "Bad request", "the request is not valid HTTP/1.1"), separators=(",", ":")
).encode()


class JsonH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a JSON answer to a malformed request, and a lingering close
    after it."""

    _dropping: int | None = None  # bytes still to drop after the answer; None: not answered

    def data_received(self, data: bytes) -> None:
        """As uvicorn's, until the malformed request is answered; then drop what arrives, and
        close once more than ``LINGER_BYTES`` came."""
        if self._dropping is None:
            super().data_received(data)
            return
        self._dropping -= len(data)
        if self._dropping < 0:
            self.transport.close()

    def shutdown(self) -> None:
        """As uvicorn's (the server stops); a connection already answered just closes."""
        if self._dropping is not None:  # answered already: nothing to finish
            self.transport.close()
            return
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        """Answer a request h11 cannot parse with the JSON error body, then linger: shut the
        write side and drop what the client still sends, for at most ``LINGER_SECONDS``."""
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(MALFORMED)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in NO_STORE.items()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=MALFORMED),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._dropping = LINGER_BYTES
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
