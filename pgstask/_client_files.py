"""The ``Client``'s files of tasks: storing results and uploads in PostgreSQL (where every host
can read them), reading and fetching them. The storage itself is ``pgstask/files.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from psycopg.types.json import Jsonb

from pgstask import files, queries
from pgstask._client_base import ClientBase, _task_id
from pgstask.errors import (
    InvalidTaskError,
    TaskFileNotFoundError,
    TaskNotFoundError,
    TaskStateError,
)
from pgstask.files import FileInfo
from pgstask.task import Status, Task


class TaskFiles(ClientBase):
    """The file methods of ``Client``."""

    def store_file(
        self,
        task: Task | int,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = None,
        kind: str = "result",
    ) -> FileInfo:
        """Store a file for a task (a path, or a binary stream and its ``filename``) in the
        database, where every host can read it. ``kind`` is ``result`` (what the download
        endpoint serves: the newest one) or ``upload``."""
        current = self.get(task)
        if kind not in ("result", "upload"):
            raise InvalidTaskError(f"kind is 'result' or 'upload', not {kind!r}")
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            with open(path, "rb") as fh, self.connection() as c:
                return files.store(
                    c,
                    fh,
                    task_id=current.id,
                    identifier=current.identifier,
                    kind=kind,
                    filename=filename or path.name,
                )
        if filename is None:
            raise InvalidTaskError("give the filename of a stream")
        with self.connection() as c:
            return files.store(
                c,
                source,
                task_id=current.id,
                identifier=current.identifier,
                kind=kind,
                filename=filename,
            )

    def upload_to_task(
        self, task: Task | int, source: IO[bytes], filename: str, *, max_size: int | None = None
    ) -> tuple[FileInfo, Task]:
        """Store an upload for a task that has not started and add to its options
        ``uploaded_file_id``, ``original_filename``, ``file_size`` and ``uploaded_at`` (one
        transaction). ``TaskStateError`` once the task runs or finished."""
        task_id = _task_id(task)
        with self.connection() as c:
            current = queries.task_get(c, id=task_id)
            if current is None:
                raise TaskNotFoundError(task_id)
            if current.status not in (Status.PENDING, Status.PREPARING):
                raise TaskStateError(
                    f"task {task_id} is {current.status_text}; files are attached to pending "
                    "or preparing tasks"
                )
            info = files.store(
                c,
                source,
                task_id=task_id,
                identifier=current.identifier,
                kind="upload",
                filename=filename,
                max_size=max_size,
            )
            patch = {
                "uploaded_file_id": info.id,
                "original_filename": info.filename,
                "file_size": info.size,
                "uploaded_at": queries.server_now(c).isoformat(),
            }
            updated = queries.task_merge_meta(c, id=task_id, patch=Jsonb(patch))
            if updated is None:  # it started between the read and the update
                raise TaskStateError(f"task {task_id} started; the file was not attached")
        return info, updated

    def upload_for_worker(
        self, identifier: str, source: IO[bytes], filename: str, *, max_size: int | None = None
    ) -> FileInfo:
        """Store an upload before its task exists; pass its id in the task's options."""
        with self.connection() as c:
            return files.store(
                c,
                source,
                task_id=None,
                identifier=identifier,
                kind="upload",
                filename=filename,
                max_size=max_size,
            )

    def upload_chunk(
        self,
        identifier: str,
        *,
        session_id: str,
        filename: str,
        index: int,
        total: int,
        data: bytes,
        max_size: int,
    ) -> files.ChunkResult:
        """One chunk of a chunked upload for a worker; the last missing one completes it."""
        with self.connection() as c:
            return files.add_chunk(
                c,
                identifier=identifier,
                session_id=session_id,
                filename=filename,
                index=index,
                total=total,
                data=data,
                max_size=max_size,
            )

    def result_file(self, task: Task | int) -> FileInfo:
        """The newest result file of a task; ``TaskFileNotFoundError`` if it has none."""
        task_id = _task_id(task)
        with self.connection() as c:
            return result_file_of(task_id, queries.file_latest(c, task_id=task_id, kind="result"))

    def file(self, file_id: int) -> FileInfo:
        """A complete stored file by id; ``TaskFileNotFoundError`` if there is none."""
        with self.connection() as c:
            return complete_file(file_id, queries.file_get(c, id=file_id))

    def read_file(self, file: FileInfo | int) -> Iterator[bytes]:
        """The bytes of a stored file, chunk by chunk (never all of it in memory);
        ``TaskFileNotFoundError`` for a file deleted while it is read, instead of its last
        chunks."""
        info = file if isinstance(file, FileInfo) else self.file(file)
        return files.chunks(self.connection, info)

    def fetch_file(self, file: FileInfo | int, directory: str | os.PathLike[str]) -> Path:
        """Copy a stored file to ``directory/{id}-{filename}`` (atomically) and return the
        path; a copy already there is reused."""
        info = file if isinstance(file, FileInfo) else self.file(file)
        target = Path(directory) / f"{info.id}-{info.filename}"
        if target.is_file() and target.stat().st_size == info.size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".~{target.name}.{os.getpid()}")
        try:
            with open(partial, "wb") as out:
                for chunk in self.read_file(info):
                    out.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
        return target


def result_file_of(task_id: int, row: dict[str, Any] | None) -> FileInfo:
    """The result file of ``file_latest``'s ``row``; ``TaskFileNotFoundError`` for none."""
    if row is None:
        raise TaskFileNotFoundError(f"task {task_id} has no result file")
    return FileInfo.from_row(row)


def complete_file(file_id: int, row: dict[str, Any] | None) -> FileInfo:
    """The file of ``file_get``'s ``row``; ``TaskFileNotFoundError`` for none, or one whose
    upload has not completed."""
    if row is None or not row["complete"]:
        raise TaskFileNotFoundError(f"no complete file has the id {file_id}")
    return FileInfo.from_row(row)
