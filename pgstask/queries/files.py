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
    """Add the row of a file to be stored in chunks (a result or an upload; with ``session_id`` and
    ``total_chunks``, a chunked upload session); complete only after ``file_finish``."""
    return rows_of(conn, "file_create", params_of(locals()))[0]


def file_get(conn: Conn, *, id: int) -> Row | None:
    """The file row ``id``, or None."""
    rows = rows_of(conn, "file_get", {"id": id})
    return rows[0] if rows else None


def file_get_session(conn: Conn, *, identifier: str, session_id: str) -> Row | None:
    """The file that the chunked upload session ``session_id`` of worker ``identifier`` builds,
    locked until the transaction ends (chunks are added one at a time); None before the session
    started."""
    rows = rows_of(conn, "file_get_session", {"identifier": identifier, "session_id": session_id})
    return rows[0] if rows else None


def file_latest(conn: Conn, *, task_id: int, kind: str) -> Row | None:
    """The newest complete file of ``kind`` attached to task ``task_id``, or None."""
    rows = rows_of(conn, "file_latest", {"task_id": task_id, "kind": kind})
    return rows[0] if rows else None


def file_put_chunk(conn: Conn, *, file_id: int, seq: int, data: bytes) -> None:
    """Store chunk ``seq`` of a file (a chunk sent again replaces the first copy) and move the
    file's ``updated_at`` to now."""
    rows_of(conn, "file_put_chunk", {"file_id": file_id, "seq": seq, "data": data})


def file_chunk_summary(conn: Conn, *, file_id: int) -> Row:
    """What a file's chunks add up to: ``chunks`` stored, ``size`` in bytes, ``last_seq`` (-1
    without any)."""
    return rows_of(conn, "file_chunk_summary", {"file_id": file_id})[0]


def file_chunk(conn: Conn, *, file_id: int, seq: int) -> bytes | None:
    """The bytes of chunk ``seq`` of a file, or None."""
    rows = rows_of(conn, "file_chunk", {"file_id": file_id, "seq": seq})
    return bytes(rows[0]["data"]) if rows else None


def file_finish(conn: Conn, *, id: int, size: int, sha256: str) -> Row | None:
    """Mark a file complete with its ``size`` and ``sha256``; its row, or None when it already was
    complete."""
    rows = rows_of(conn, "file_finish", {"id": id, "size": size, "sha256": sha256})
    return rows[0] if rows else None


def file_usage(conn: Conn, *, identifier: str | None, session_id: str | None) -> Row:
    """What the upload quotas judge: the ``bytes`` of every stored file, the chunked uploads still
    open (``open_uploads``), and whether worker ``identifier``'s session ``session_id`` exists."""
    return rows_of(conn, "file_usage", {"identifier": identifier, "session_id": session_id})[0]


def file_delete_abandoned(conn: Conn, *, max_age: float) -> int:
    """Delete uploads never completed whose last chunk (or start) is older than ``max_age`` seconds;
    returns how many."""
    return len(rows_of(conn, "file_delete_abandoned", {"max_age": max_age}))


def file_delete_unattached(conn: Conn, *, max_age: float) -> int:
    """Delete uploads that no task took, ``max_age`` seconds after they were created; returns how
    many."""
    return len(rows_of(conn, "file_delete_unattached", {"max_age": max_age}))
