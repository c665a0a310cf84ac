"""The listener: a dedicated autocommit connection that LISTENs for pgstask's channels.

- ``pgstask_tasks``: new runnable tasks → wake the producer;
- ``pgstask_cancel`` (payload: ``<task id>:<claims>``) → stop that run of the task if it runs here;
- ``pgstask_workers``: a worker was activated, deactivated or reconfigured → reload;
- ``pgstask_schedules``: a schedule was added, changed, paused or resumed → the scheduler.

NOTIFY is a hint; polling is the truth. A dead connection is detected (errors, and a ``SELECT 1``
probe every ``probe_interval`` seconds, since a half-open socket gives no error) and replaced;
after every (re)connect the producer is woken, because notifications sent meanwhile are lost.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import psycopg

from pgstask import queries
from pgstask.db import Conn, connect
from pgstask.runtime.service import Clock, Service

_log = logging.getLogger(__name__)


class Listener(Service):
    """Turns pgstask's notifications into wake-ups of the producer and the heartbeat, and stops
    cancelled runs."""

    name = "listener"

    def __init__(
        self,
        *,
        dsn: str,
        on_tasks: Callable[[], None],
        on_cancel: Callable[[int, int | None], None],
        on_workers: Callable[[], None],
        on_schedules: Callable[[], None] = lambda: None,
        probe_interval: float = 10.0,
        reconnect_delay: float = 0.5,
        clock: Clock = time.monotonic,
    ) -> None:
        """``on_tasks``: the producer's ``wake``; ``on_cancel``: the run table's ``cancel``;
        ``on_workers``: the heartbeat's ``wake`` (it reloads the workers' settings);
        ``on_schedules``: the scheduler's ``wake``."""
        super().__init__(interval=reconnect_delay, clock=clock)
        self.dsn = dsn
        self._on_tasks = on_tasks
        self._on_cancel = on_cancel
        self._on_workers = on_workers
        self._on_schedules = on_schedules
        self.probe_interval = probe_interval
        self._conn: Conn | None = None
        self.connected_count = 0
        self._delay = reconnect_delay

    def step(self) -> int:
        """Listen until the connection fails or the service stops; returns notifications seen."""
        seen = 0
        try:
            conn = self._connect()
            last_probe = self.clock()
            while not self.stopping:
                for notify in conn.notifies(timeout=0.5):
                    seen += 1
                    self._dispatch(notify.channel, notify.payload)
                    if self.stopping:
                        break
                if self.clock() - last_probe >= self.probe_interval:
                    queries.server_now(conn)
                    last_probe = self.clock()
        except (psycopg.Error, OSError) as exc:
            _log.warning("listener connection lost (%s); reconnecting", str(exc).strip())
            self._delay = min(self._delay * 2, 5.0)
        finally:
            self._close()
        return seen

    def next_delay(self, result: object) -> float:
        """The reconnect delay: doubled after each failure up to 5 s, reset on a connect."""
        return self._delay

    def _connect(self) -> Conn:
        conn = connect(self.dsn, autocommit=True, name="pgstask-listener")
        queries.channel_listen(conn)
        self._conn = conn
        self.connected_count += 1
        self._delay = self.interval
        self._on_tasks()  # anything inserted while we were not listening
        self._on_workers()
        self._on_schedules()
        return conn

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == "pgstask_tasks":
            self._on_tasks()
        elif channel == "pgstask_cancel":
            # '<task id>:<claims>' names the cancelled run; a bare id (a pgstask before
            # revision 0005, or a hand-written NOTIFY) stops every run of the task here.
            task_id, _, claims = payload.partition(":")
            try:
                self._on_cancel(int(task_id), int(claims) if claims else None)
            except ValueError:
                _log.warning("ignoring pgstask_cancel notification with payload %r", payload)
        elif channel == "pgstask_workers":
            self._on_workers()
        elif channel == "pgstask_schedules":
            self._on_schedules()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop listening and close the connection."""
        super().stop(timeout)
        self._close()
