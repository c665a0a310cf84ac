"""The heartbeat: keeps this daemon's ``s_daemons`` row fresh and its view of the world current.

Each beat (every ``heartbeat_interval`` seconds, or when woken by a worker change):

- ``UPDATE s_daemons SET heartbeat_at = now()``; 0 rows means other daemons declared this one
  dead and rescued its tasks, so it registers again and stops the actions it still runs;
- asks which of its running tasks it no longer holds (cancelled, or rescued) and stops them,
  which also covers a missed ``pgstask_cancel`` notification;
- reloads the active flag and settings of its workers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from psycopg_pool import ConnectionPool

from pgstask import queries
from pgstask.db import Conn
from pgstask.runtime.service import Service

_log = logging.getLogger(__name__)


class Heartbeat(Service):
    name = "heartbeat"

    def __init__(
        self,
        *,
        pool: ConnectionPool[Conn],
        daemon_id: uuid.UUID,
        register: Callable[[Conn], None],
        running: Callable[[], Sequence[int]],
        identifiers: Sequence[str],
        on_lost: Callable[[list[int]], None],
        on_workers: Callable[[list[dict[str, Any]]], None],
        interval: float,
    ) -> None:
        super().__init__(interval=interval)
        self.pool = pool
        self.daemon_id = daemon_id
        self._register = register
        self._running = running
        self.identifiers = list(identifiers)
        self._on_lost = on_lost
        self._on_workers = on_workers
        self.beats = 0

    def run_once(self) -> list[int]:
        """One beat; returns the ids of running tasks this daemon no longer holds."""
        with self.pool.connection() as conn:
            if not queries.daemon_heartbeat(conn, id=self.daemon_id):
                _log.warning("daemon %s was declared dead; registering again", self.daemon_id)
                self._register(conn)
            running = list(self._running())
            lost = queries.daemon_lost_tasks(conn, id=self.daemon_id, task_ids=running)
            states = queries.worker_states(conn, identifiers=self.identifiers)
        self.beats += 1
        if lost:
            self._on_lost(lost)
        self._on_workers(states)
        return lost
