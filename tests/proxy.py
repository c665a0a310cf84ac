"""A TCP proxy in front of the test server, for the fault tests: the network, misbehaving.

A daemon given ``Proxy.dsn`` makes every connection through the proxy, which relays bytes both
ways and can:

- ``hold()``: black-hole every connection (nothing is read or forwarded, sockets stay open, as
  when a network path silently drops packets) until ``release()``, after which what was held is
  delivered, as TCP retransmission would;
- ``cut_next_claim_reply()``: on the producer's connection (``application_name`` =
  ``pgstask-producer``), close the connection right after a claim committed (an
  ``UPDATE n`` with n > 0 and the ``ReadyForQuery`` that follows the commit), dropping the reply:
  the daemon never learns which tasks it claimed.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import threading
from collections.abc import Iterator

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_CLAIMED = re.compile(rb"C\x00\x00\x00.UPDATE [1-9]", re.DOTALL)
_READY = b"Z\x00\x00\x00\x05"


class Proxy:
    def __init__(self, upstream_dsn: str) -> None:
        params = conninfo_to_dict(upstream_dsn)
        host = str(params.get("hostaddr") or params.get("host") or "/tmp")
        port = int(params.get("port") or 5432)
        self._upstream: tuple[int, object]
        if host.startswith("/"):
            self._upstream = (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
        else:
            self._upstream = (socket.AF_INET, (host, port))
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        port = self._server.getsockname()[1]
        self.dsn = make_conninfo(
            upstream_dsn, host="127.0.0.1", hostaddr="127.0.0.1", port=str(port), sslmode="disable"
        )
        self._held = threading.Event()
        self._cut = threading.Event()
        self._closing = threading.Event()
        self.cuts = 0
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def hold(self) -> None:
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def cut_next_claim_reply(self) -> None:
        self._cut.set()

    def start(self) -> Proxy:
        thread = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def close(self) -> None:
        self._closing.set()
        self._held.clear()
        for thread in self._threads:
            thread.join(5)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        self._server.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            family, address = self._upstream
            upstream = socket.socket(family, socket.SOCK_STREAM)
            try:
                upstream.connect(address)  # type: ignore[arg-type]
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            thread = threading.Thread(
                target=self._relay, args=(client, upstream), name="proxy-relay", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        producer = False
        reply = b""  # the producer's reply held back while a claim's commit is in sight
        try:
            while not self._closing.is_set():
                if self._held.is_set():
                    self._closing.wait(0.02)
                    continue
                ready, _, _ = select.select([client, upstream], [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        producer = producer or b"pgstask-producer" in data
                        upstream.sendall(data)
                        continue
                    if producer and self._cut.is_set() and (reply or _CLAIMED.search(data)):
                        reply += data
                        if _READY in reply:  # committed: drop the reply, cut the connection
                            self._cut.clear()
                            self.cuts += 1
                            return
                        continue
                    client.sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()


@contextlib.contextmanager
def proxy(upstream_dsn: str) -> Iterator[Proxy]:
    running = Proxy(upstream_dsn).start()
    try:
        yield running
    finally:
        running.close()
