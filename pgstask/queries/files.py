"""Wrappers of ``sql/files.sql``."""

from __future__ import annotations

from pgstask.db import Conn
from pgstask.queries._execute import Row, params_of, rows_of


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
    return rows_of(conn, "file_create", params_of(locals()))[0]


def file_get(conn: Conn, *, id: int) -> Row | None:
    rows = rows_of(conn, "file_get", {"id": id})
    return rows[0] if rows else None


def file_get_session(conn: Conn, *, identifier: str, session_id: str) -> Row | None:
    rows = rows_of(conn, "file_get_session", {"identifier": identifier, "session_id": session_id})
    return rows[0] if rows else None


def file_latest(conn: Conn, *, task_id: int, kind: str) -> Row | None:
    rows = rows_of(conn, "file_latest", {"task_id": task_id, "kind": kind})
    return rows[0] if rows else None


def file_put_chunk(conn: Conn, *, file_id: int, seq: int, data: bytes) -> None:
    rows_of(conn, "file_put_chunk", {"file_id": file_id, "seq": seq, "data": data})


def file_chunk_summary(conn: Conn, *, file_id: int) -> Row:
    return rows_of(conn, "file_chunk_summary", {"file_id": file_id})[0]


def file_chunk(conn: Conn, *, file_id: int, seq: int) -> bytes | None:
    rows = rows_of(conn, "file_chunk", {"file_id": file_id, "seq": seq})
    return bytes(rows[0]["data"]) if rows else None


def file_finish(conn: Conn, *, id: int, size: int, sha256: str) -> Row | None:
    rows = rows_of(conn, "file_finish", {"id": id, "size": size, "sha256": sha256})
    return rows[0] if rows else None


def file_usage(conn: Conn, *, identifier: str | None, session_id: str | None) -> Row:
    return rows_of(conn, "file_usage", {"identifier": identifier, "session_id": session_id})[0]


def file_delete_abandoned(conn: Conn, *, max_age: float) -> int:
    return len(rows_of(conn, "file_delete_abandoned", {"max_age": max_age}))


def file_delete_unattached(conn: Conn, *, max_age: float) -> int:
    return len(rows_of(conn, "file_delete_unattached", {"max_age": max_age}))
