"""Files of tasks in PostgreSQL: results a worker stores and uploads a user sends.

A file is a row of ``s_task_files`` plus its bytes in 1 MiB chunks (``s_task_file_chunks``), so
every host reads what any host wrote: a result produced on one daemon host downloads through the
API on another. File names are bare names (no directory, no control characters); nothing here
ever opens a path that came from a request.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import IO, Any

from pgstask import queries
from pgstask.db import Conn
from pgstask.errors import FileTooLargeError, InvalidTaskError, TaskFileNotFoundError

CHUNK_SIZE = 1024 * 1024
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")

#: sTask's download content types, then Python's table, then octet-stream.
CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
    "json": "application/json",
    "xml": "application/xml",
    "txt": "text/plain",
    "zip": "application/zip",
}


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One stored file (without its bytes)."""

    id: int
    task_id: int | None
    identifier: str
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str | None
    complete: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FileInfo:
        """The file of an ``s_task_files`` row, as a query returns it."""
        return cls(**{k: row[k] for k in cls.__slots__})

    def to_dict(self) -> dict[str, Any]:
        """Its fields by name, every value JSON-ready (numbers, texts, booleans, None)."""
        return {k: getattr(self, k) for k in self.__slots__}


def safe_filename(name: str) -> str:
    """The last path component of ``name`` (either slash), without control characters; a
    ``InvalidTaskError`` if nothing usable is left."""
    if not isinstance(name, str):
        raise InvalidTaskError("a file name is a string")
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    if base in ("", ".", "..") or len(base) > 255:
        raise InvalidTaskError(f"{name!r} is not a usable file name")
    return base


def extension(filename: str) -> str:
    """The file name's extension, lower-cased and without the dot (what upload allowlists compare);
    ``''`` when it has none."""
    return filename.rsplit(".", 1)[1].lower() if "." in filename else ""


def content_type(filename: str) -> str:
    """The content type stored with a file and sent with its download: sTask's for the extensions it
    knows, else Python's guess, else ``application/octet-stream``."""
    known = CONTENT_TYPES.get(extension(filename))
    return known or mimetypes.guess_type(filename)[0] or "application/octet-stream"


def store(
    conn: Conn,
    source: IO[bytes],
    *,
    task_id: int | None,
    identifier: str,
    kind: str,
    filename: str,
    max_size: int | None = None,
) -> FileInfo:
    """Copy ``source`` into a new complete file, chunk by chunk, in the caller's transaction."""
    name = safe_filename(filename)
    row = queries.file_create(
        conn,
        task_id=task_id,
        identifier=identifier,
        kind=kind,
        filename=name,
        content_type=content_type(name),
        session_id=None,
        total_chunks=None,
    )
    digest = hashlib.sha256()
    size = seq = 0
    while chunk := source.read(CHUNK_SIZE):
        size += len(chunk)
        if max_size is not None and size > max_size:
            raise FileTooLargeError(f"the file is larger than {max_size} bytes")
        digest.update(chunk)
        queries.file_put_chunk(conn, file_id=row["id"], seq=seq, data=chunk)
        seq += 1
    done = queries.file_finish(conn, id=row["id"], size=size, sha256=digest.hexdigest())
    assert done is not None
    return FileInfo.from_row(done)


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What storing one chunk of an upload session gives: the session's file, the chunks received so
    far, and whether this one completed it."""

    file: FileInfo
    received: int  # chunks stored so far
    finished: bool


def add_chunk(
    conn: Conn,
    *,
    identifier: str,
    session_id: str,
    filename: str,
    index: int,
    total: int,
    data: bytes,
    max_size: int,
) -> ChunkResult:
    """Store chunk ``index`` of ``total`` of an upload session (in the caller's transaction,
    which holds the session's row lock); the last missing chunk completes the file. A session's
    file name and chunk count are fixed by its first chunk; the sum of the chunks may not pass
    ``max_size``."""
    if not SESSION_ID.match(session_id or ""):
        raise InvalidTaskError("session_id must be 8-128 letters, digits, '-' or '_'")
    if not 1 <= total <= 100_000 or not 0 <= index < total:
        raise InvalidTaskError(f"chunk_index {index} of total_chunks {total} is out of range")
    if len(data) > CHUNK_SIZE:
        raise FileTooLargeError(f"a chunk is at most {CHUNK_SIZE} bytes")
    name = safe_filename(filename)
    row = queries.file_get_session(conn, identifier=identifier, session_id=session_id)
    if row is None:
        queries.file_create(
            conn,
            task_id=None,
            identifier=identifier,
            kind="upload",
            filename=name,
            content_type=content_type(name),
            session_id=session_id,
            total_chunks=total,
        )
        row = queries.file_get_session(conn, identifier=identifier, session_id=session_id)
        assert row is not None
    if row["complete"]:
        raise InvalidTaskError(f"upload session {session_id} is already complete")
    if row["total_chunks"] != total or row["filename"] != name:
        raise InvalidTaskError("total_chunks and the file name must not change within a session")
    queries.file_put_chunk(conn, file_id=row["id"], seq=index, data=data)
    summary = queries.file_chunk_summary(conn, file_id=row["id"])
    if summary["size"] > max_size:
        raise FileTooLargeError(f"the upload is larger than {max_size} bytes")
    if summary["chunks"] < total:
        return ChunkResult(FileInfo.from_row(row), summary["chunks"], False)
    digest = hashlib.sha256()
    for seq in range(total):
        chunk = queries.file_chunk(conn, file_id=row["id"], seq=seq)
        assert chunk is not None
        digest.update(chunk)
    done = queries.file_finish(conn, id=row["id"], size=summary["size"], sha256=digest.hexdigest())
    assert done is not None
    return ChunkResult(FileInfo.from_row(done), total, True)


@dataclass(frozen=True, slots=True)
class Usage:
    """What the upload quotas look at (``usage``)."""

    bytes: int  # of every stored file, results and uploads, finished or not
    open_uploads: int  # chunked uploads not finished yet
    session_exists: bool  # the session asked about has a file already


def usage(conn: Conn, *, identifier: str | None = None, session_id: str | None = None) -> Usage:
    """The stored bytes and open chunked uploads; ``session_exists`` for the session of
    ``identifier`` and ``session_id`` when given."""
    row = queries.file_usage(conn, identifier=identifier, session_id=session_id)
    return Usage(int(row["bytes"]), int(row["open_uploads"]), bool(row["session_exists"]))


def chunks(conn_factory: Any, file: FileInfo) -> Iterator[bytes]:
    """The bytes of a complete file, one chunk per query (``conn_factory()`` gives a
    connection context, e.g. ``Client.connection``), so a large file never sits in memory."""
    seq = read = 0
    while True:
        with conn_factory() as conn:
            data = queries.file_chunk(conn, file_id=file.id, seq=seq)
        if data is None:
            check_read_whole(file, read)
            return
        yield data
        read += len(data)
        seq += 1


def check_read_whole(file: FileInfo, read: int) -> None:
    """At the end of a file's chunks, ``read`` bytes in all: a ``TaskFileNotFoundError`` if
    that is less than its size (the file, or its task, was deleted while it was read), so a
    reader never takes part of a file for the whole of it."""
    if read < file.size:
        raise TaskFileNotFoundError(
            f"file {file.id} was deleted while it was read ({read} of {file.size} bytes read)"
        )
