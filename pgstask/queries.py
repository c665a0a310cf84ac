"""One typed wrapper per named query of ``pgstask/sql``; nothing else lives here.

Each wrapper takes an open connection (the caller owns the transaction) and keyword arguments
named like the query's parameters. Batch queries take parallel sequences.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgstask._task_rows import fetch_tasks, task_row
from pgstask.db import Conn
from pgstask.sql import query
from pgstask.task import RunKey, Task

Row = dict[str, Any]

# json.dumps with an option set builds a new encoder on every call.
_OUTCOMES = json.JSONEncoder(allow_nan=False)


def _args(given: dict[str, Any]) -> dict[str, Any]:
    """A wrapper's keyword arguments as query parameters (sequences become lists = arrays)."""
    return {
        k: list(v) if isinstance(v, tuple | list) else v for k, v in given.items() if k != "conn"
    }


def _tasks(conn: Conn, name: str, params: dict[str, Any], binary: bool = False) -> list[Task]:
    """``binary``: results in binary (the query's ``%(name)b`` placeholders do the same for
    its parameters)."""
    with conn.cursor(row_factory=task_row) as cur:
        cur.execute(query(name), params, binary=binary)
        return fetch_tasks(cur)


def _rows(conn: Conn, name: str, params: dict[str, Any]) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(name), params)
        return cur.fetchall() if cur.description else []


def _count(conn: Conn, name: str, params: dict[str, Any]) -> int:
    with conn.cursor() as cur:
        cur.execute(query(name), params)
        return cur.rowcount


# --- tasks -------------------------------------------------------------------------------------


def task_insert_many(
    conn: Conn,
    *,
    identifiers: Sequence[str],
    actions: Sequence[str],
    metas: Sequence[str],
    priorities: Sequence[str],
    start_ats: Sequence[dt.datetime | None],
    max_attempts: Sequence[int],
    started_by: Sequence[int | None],
    dedupe_keys: Sequence[str | None],
) -> list[Task]:
    """``metas`` are JSON texts. Sent and read in binary: large batches skip text quoting."""
    return _tasks(conn, "task_insert_many", _args(locals()), binary=True)


def task_reserve_ids(conn: Conn, *, n: int) -> tuple[dt.datetime, list[int] | None]:
    row = _rows(conn, "task_reserve_ids", {"n": n})[0]
    return row["now"], row["ids"]


class _JsonTextDumper(Dumper):
    """Text that is already JSON, as ``jsonb`` in binary (a version byte, then the text)."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


_COPY_TYPES = (
    *("int8", "text", "text", "jsonb", "text", "timestamptz", "int4", "int8", "text"),
    *("timestamptz", "timestamptz"),
)


def task_copy(conn: Conn, rows: Iterable[Sequence[Any]]) -> None:
    """``rows``: the data the COPY reads (not query parameters), in its column order; ``meta``
    as JSON text."""
    with conn.cursor() as cur:
        cur.adapters.register_dumper(None, _JsonTextDumper)  # this cursor's COPY only
        with cur.copy(query("task_copy")) as copy:
            copy.set_types(list(_COPY_TYPES))
            for row in rows:
                copy.write_row(row)


def task_merge_meta(conn: Conn, *, id: int, patch: Jsonb) -> Task | None:
    found = _tasks(conn, "task_merge_meta", {"id": id, "patch": patch})
    return found[0] if found else None


def task_get(conn: Conn, *, id: int) -> Task | None:
    found = _tasks(conn, "task_get", {"id": id})
    return found[0] if found else None


def task_get_by_dedupe_key(conn: Conn, *, dedupe_key: str) -> Task | None:
    found = _tasks(conn, "task_get_by_dedupe_key", {"dedupe_key": dedupe_key})
    return found[0] if found else None


def task_claim(
    conn: Conn, *, daemon_id: uuid.UUID, identifiers: Sequence[str], limit: int
) -> list[Task]:
    params = {"daemon_id": daemon_id, "identifiers": list(identifiers), "limit": limit}
    return _tasks(conn, "task_claim", params)


def task_next_start_at(conn: Conn, *, identifiers: Sequence[str]) -> float | None:
    """Seconds until the earliest pending task becomes due (0 if due now; ``inf`` for a
    ``start_at`` of infinity); None when nothing is pending."""
    rows = _rows(conn, "task_next_start_at", {"identifiers": list(identifiers)})
    return float(rows[0]["delay"]) if rows else None


def task_complete_many(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    outcomes: Sequence[tuple[int, int, str | None, Any, int | None]],
) -> list[RunKey]:
    """``outcomes``: (id, claims, message, result, peak_memory) each, ``result`` a plain
    JSON-serialisable value; sent as the query's one JSON parameter. Returns the runs written."""
    batch = _OUTCOMES.encode(list(outcomes))
    rows = _rows(conn, "task_complete_many", {"daemon_id": daemon_id, "outcomes": batch})
    return [(r["id"], r["claims"]) for r in rows]


def task_fail_many(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    ids: Sequence[int],
    claims: Sequence[int],
    messages: Sequence[str],
    errors: Sequence[str | None],
    retry_delays: Sequence[float | None],
    peak_memory: Sequence[int | None],
) -> list[Row]:
    return _rows(conn, "task_fail_many", _args(locals()))


def task_give_back_many(
    conn: Conn,
    *,
    daemon_id: uuid.UUID,
    ids: Sequence[int],
    claims: Sequence[int],
    messages: Sequence[str | None],
) -> list[RunKey]:
    return [(r["id"], r["claims"]) for r in _rows(conn, "task_give_back_many", _args(locals()))]


def task_give_back_unknown(
    conn: Conn, *, daemon_id: uuid.UUID, ids: Sequence[int], claims: Sequence[int]
) -> list[RunKey]:
    """Give back what ``daemon_id`` holds other than the runs it knows (``ids``/``claims``);
    returns those."""
    params = {"daemon_id": daemon_id, "ids": list(ids), "claims": list(claims)}
    return [(r["id"], r["claims"]) for r in _rows(conn, "task_give_back_unknown", params)]


def task_set_status(conn: Conn, *, id: int, status: int, claims: int, daemon_id: uuid.UUID) -> bool:
    params = {"id": id, "status": status, "claims": claims, "daemon_id": daemon_id}
    return bool(_rows(conn, "task_set_status", params))


def task_rescue(
    conn: Conn, *, stale_after: float, base_delay: float, max_delay: float, limit: int = 1000
) -> list[Row]:
    return _rows(conn, "task_rescue", _args(locals()))


def task_cancel(conn: Conn, *, id: int, message: str) -> Row | None:
    rows = _rows(conn, "task_cancel", {"id": id, "message": message})
    return rows[0] if rows else None


def task_retry(conn: Conn, *, id: int) -> Task | None:
    found = _tasks(conn, "task_retry", {"id": id})
    return found[0] if found else None


def task_notify(conn: Conn) -> None:
    _rows(conn, "task_notify", {})


def task_list(
    conn: Conn,
    *,
    status: int | None,
    identifier: str | None,
    action: str | None,
    priority: str | None,
    created_from: dt.datetime | None,
    created_to: dt.datetime | None,
    before_id: int | None,
    limit: int,
) -> list[Task]:
    return _tasks(conn, "task_list", _args(locals()))


def task_pending(conn: Conn, *, limit: int) -> list[Task]:
    return _tasks(conn, "task_pending", {"limit": limit})


def task_count_by_status(conn: Conn) -> dict[int, int]:
    return {r["status"]: r["count"] for r in _rows(conn, "task_count_by_status", {})}


def task_waiting_for_worker(conn: Conn) -> list[Row]:
    return _rows(conn, "task_waiting_for_worker", {})


def task_delete_finished_before(conn: Conn, *, days: float, limit: int = 5000) -> int:
    return len(_rows(conn, "task_delete_finished_before", {"days": days, "limit": limit}))


# --- progress ----------------------------------------------------------------------------------


def progress_upsert_many(
    conn: Conn,
    *,
    task_ids: Sequence[int],
    statuses: Sequence[int],
    progress: Sequence[int],
    processed: Sequence[int | None],
    totals: Sequence[int | None],
    etas: Sequence[float | None],
    messages: Sequence[str | None],
) -> None:
    _rows(conn, "progress_upsert_many", _args(locals()))


def progress_get(conn: Conn, *, task_id: int) -> Row | None:
    rows = _rows(conn, "progress_get", {"task_id": task_id})
    return rows[0] if rows else None


def progress_delete_many(
    conn: Conn, *, task_ids: Sequence[int], claims: Sequence[int], daemon_id: uuid.UUID
) -> int:
    return _count(conn, "progress_delete_many", _args(locals()))


def progress_delete_orphaned(conn: Conn) -> int:
    return _count(conn, "progress_delete_orphaned", {})


# --- logs --------------------------------------------------------------------------------------


def log_insert_many(
    conn: Conn,
    *,
    task_ids: Sequence[int],
    levels: Sequence[str],
    messages: Sequence[str],
    contexts: Sequence[Jsonb],
) -> int:
    """The number of records stored (those of deleted tasks are skipped)."""
    return _count(conn, "log_insert_many", _args(locals()))


def log_list(conn: Conn, *, task_id: int, limit: int | None, errors_only: bool) -> list[Row]:
    params = {"task_id": task_id, "limit": limit, "errors_only": errors_only}
    return _rows(conn, "log_list", params)


def log_delete_for_task(conn: Conn, *, task_id: int) -> int:
    return _count(conn, "log_delete_for_task", {"task_id": task_id})


def log_delete_older_than(conn: Conn, *, days: float, limit: int = 5000) -> int:
    return _count(conn, "log_delete_older_than", {"days": days, "limit": limit})


# --- workers -----------------------------------------------------------------------------------


def worker_register_many(
    conn: Conn,
    *,
    active: bool,
    identifiers: Sequence[str],
    classes: Sequence[str],
    scopes: Sequence[str],
    titles: Sequence[str],
    descriptions: Sequence[str],
    icons: Sequence[str],
    actions: Sequence[Jsonb],
) -> list[Row]:
    """``actions``: one JSON array of action names per worker."""
    return _rows(conn, "worker_register_many", _args(locals()))


def worker_list(conn: Conn, *, active_only: bool = False) -> list[Row]:
    return _rows(conn, "worker_list", {"active_only": active_only})


def worker_get(conn: Conn, *, identifier: str) -> Row | None:
    rows = _rows(conn, "worker_get", {"identifier": identifier})
    return rows[0] if rows else None


def worker_set_active(conn: Conn, *, identifier: str, active: bool) -> Row | None:
    rows = _rows(conn, "worker_set_active", {"identifier": identifier, "active": active})
    return rows[0] if rows else None


def worker_notify(conn: Conn, *, identifier: str) -> None:
    _rows(conn, "worker_notify", {"identifier": identifier})


def worker_update_settings(conn: Conn, *, identifier: str, settings: Jsonb) -> Row | None:
    rows = _rows(conn, "worker_update_settings", {"identifier": identifier, "settings": settings})
    return rows[0] if rows else None


def worker_delete_many(conn: Conn, *, identifiers: Sequence[str]) -> list[str]:
    rows = _rows(conn, "worker_delete_many", {"identifiers": list(identifiers)})
    return [r["identifier"] for r in rows]


def worker_states(conn: Conn, *, identifiers: Sequence[str]) -> list[Row]:
    return _rows(conn, "worker_states", {"identifiers": list(identifiers)})


def worker_count(conn: Conn) -> Row:
    return _rows(conn, "worker_count", {})[0]


# --- daemons -----------------------------------------------------------------------------------


def daemon_register(
    conn: Conn,
    *,
    id: uuid.UUID,
    hostname: str,
    pid: int,
    concurrency: int,
    identifiers: Sequence[str],
    version: str,
) -> None:
    _rows(conn, "daemon_register", _args(locals()))


def daemon_heartbeat(conn: Conn, *, id: uuid.UUID) -> bool:
    return bool(_rows(conn, "daemon_heartbeat", {"id": id}))


def daemon_lost_tasks(
    conn: Conn, *, id: uuid.UUID, ids: Sequence[int], claims: Sequence[int]
) -> list[RunKey]:
    """Of the runs ``ids``/``claims``, those daemon ``id`` no longer holds."""
    rows = _rows(conn, "daemon_lost_tasks", _args(locals()))
    return [(r["id"], r["claims"]) for r in rows]


def daemon_deregister(conn: Conn, *, id: uuid.UUID) -> None:
    _rows(conn, "daemon_deregister", {"id": id})


def daemon_delete_stale(conn: Conn, *, stale_after: float) -> list[Row]:
    return _rows(conn, "daemon_delete_stale", {"stale_after": stale_after})


def daemon_list(conn: Conn, *, stale_after: float) -> list[Row]:
    return _rows(conn, "daemon_list", {"stale_after": stale_after})


def daemon_try_lock(conn: Conn, *, key: int) -> bool:
    return bool(_rows(conn, "daemon_try_lock", {"key": key})[0]["locked"])


def daemon_listen(conn: Conn) -> None:
    conn.execute(query("daemon_listen"))


def daemon_now(conn: Conn) -> dt.datetime:
    return _rows(conn, "daemon_now", {})[0]["now"]  # type: ignore[no-any-return]


def task_claim_by_id(conn: Conn, *, daemon_id: uuid.UUID, id: int) -> Task | None:
    found = _tasks(conn, "task_claim_by_id", {"daemon_id": daemon_id, "id": id})
    return found[0] if found else None


# --- schema ------------------------------------------------------------------------------------


def schema_has_version_table(conn: Conn) -> bool:
    return bool(_rows(conn, "schema_has_version_table", {})[0]["present"])


def schema_version(conn: Conn) -> str | None:
    """Call only when ``schema_has_version_table``: the query reads that table."""
    rows = _rows(conn, "schema_version", {})
    return str(rows[0]["version_num"]) if rows else None


def schema_lock(conn: Conn, *, key: int) -> None:
    _rows(conn, "schema_lock", {"key": key})


def schema_unlock(conn: Conn, *, key: int) -> bool:
    """False when the lock was not held."""
    return bool(_rows(conn, "schema_unlock", {"key": key})[0]["pg_advisory_unlock"])


# --- files -------------------------------------------------------------------------------------


def file_create(
    conn: Conn,
    *,
    task_id: int | None,
    identifier: str,
    kind: str,
    filename: str,
    content_type: str,
    session_id: str | None,
    total_chunks: int | None,
) -> Row:
    return _rows(conn, "file_create", _args(locals()))[0]


def file_get(conn: Conn, *, id: int) -> Row | None:
    rows = _rows(conn, "file_get", {"id": id})
    return rows[0] if rows else None


def file_get_session(conn: Conn, *, identifier: str, session_id: str) -> Row | None:
    rows = _rows(conn, "file_get_session", {"identifier": identifier, "session_id": session_id})
    return rows[0] if rows else None


def file_latest(conn: Conn, *, task_id: int, kind: str) -> Row | None:
    rows = _rows(conn, "file_latest", {"task_id": task_id, "kind": kind})
    return rows[0] if rows else None


def file_put_chunk(conn: Conn, *, file_id: int, seq: int, data: bytes) -> None:
    _rows(conn, "file_put_chunk", {"file_id": file_id, "seq": seq, "data": data})


def file_chunk_summary(conn: Conn, *, file_id: int) -> Row:
    return _rows(conn, "file_chunk_summary", {"file_id": file_id})[0]


def file_chunk(conn: Conn, *, file_id: int, seq: int) -> bytes | None:
    rows = _rows(conn, "file_chunk", {"file_id": file_id, "seq": seq})
    return bytes(rows[0]["data"]) if rows else None


def file_finish(conn: Conn, *, id: int, size: int, sha256: str) -> Row | None:
    rows = _rows(conn, "file_finish", {"id": id, "size": size, "sha256": sha256})
    return rows[0] if rows else None


def file_usage(conn: Conn, *, identifier: str | None, session_id: str | None) -> Row:
    return _rows(conn, "file_usage", {"identifier": identifier, "session_id": session_id})[0]


def file_delete_abandoned(conn: Conn, *, max_age: float) -> int:
    return len(_rows(conn, "file_delete_abandoned", {"max_age": max_age}))


def file_delete_unattached(conn: Conn, *, max_age: float) -> int:
    return len(_rows(conn, "file_delete_unattached", {"max_age": max_age}))


# --- metrics -----------------------------------------------------------------------------------


def metrics_queue(conn: Conn) -> list[Row]:
    return _rows(conn, "metrics_queue", {})


def metrics_finished(conn: Conn, *, window_seconds: float) -> list[Row]:
    return _rows(conn, "metrics_finished", {"window_seconds": window_seconds})


def metrics_summary(conn: Conn, *, hours: float) -> Row:
    return _rows(conn, "metrics_summary", {"hours": hours})[0]


def metrics_workers(conn: Conn, *, hours: float, identifier: str | None) -> list[Row]:
    return _rows(conn, "metrics_workers", {"hours": hours, "identifier": identifier})


def metrics_errors(conn: Conn, *, hours: float, limit: int) -> list[Row]:
    return _rows(conn, "metrics_errors", {"hours": hours, "limit": limit})


def metrics_unserved(conn: Conn, *, stale_after: float) -> list[Row]:
    return _rows(conn, "metrics_unserved", {"stale_after": stale_after})


def metrics_stuck(conn: Conn, *, seconds: float, limit: int) -> list[Row]:
    return _rows(conn, "metrics_stuck", {"seconds": seconds, "limit": limit})


def metrics_timeline(conn: Conn, *, hours: float, bucket_seconds: int) -> list[Row]:
    return _rows(conn, "metrics_timeline", {"hours": hours, "bucket_seconds": bucket_seconds})
