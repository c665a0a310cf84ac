"""Downloads of result files and uploads (to a task, or to a worker before its task exists).

A download is found from the task id alone: the task's newest result file in the database (any
host), else, for workers that return a file path as their result (sTask's way), that path only if
it resolves to a regular file inside the storage directory. No path from the request is ever
opened. Uploads are checked against the worker's ``allowed_extensions`` (default ``["csv"]``) and
``max_file_size`` settings and the server's ``PGSTASK_API_MAX_UPLOAD``, and stored in the
database; chunked uploads (sTask's ``chunk_index``/``total_chunks``/``session_id`` fields) too.

A limit stops the body where it is passed: a ``Content-Length`` beyond it is refused before the
body is read, and the multipart parser counts the file as it streams in (``_UploadParser``), so
no more than the limit is ever spooled. Two quotas keep the database from filling up: the
bytes of all stored files (``PGSTASK_FILE_STORAGE_LIMIT``, 507) and the chunked uploads left
unfinished (``PGSTASK_MAX_OPEN_UPLOADS``, 429).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pgstask import figures, files
from pgstask.errors import InvalidTaskError, TaskFileNotFoundError
from pgstask.http import bodies
from pgstask.http.errors import ApiError, client_left
from pgstask.http.state import AppState, state
from pgstask.task import Status, Task
from pgstask.workers import registry

DEFAULT_EXTENSIONS = ("csv",)
#: The largest form field besides the file, and room for the framing and the few small fields
#: around a file or chunk.
MAX_FIELD_SIZE = 16 * 1024
MULTIPART_OVERHEAD = 64 * 1024


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the UTF-8 name (RFC 6266/5987)."""
    fallback = (
        "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
        or "download"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def inside_storage(storage: Path, candidate: Any) -> Path | None:
    """``candidate`` (a task's result) as a regular file inside ``storage``, or None: symlinks
    are resolved first, so none can lead outside."""
    if isinstance(candidate, dict):
        candidate = candidate.get("path")
    if not isinstance(candidate, str) or not candidate or "\x00" in candidate:
        return None
    root = os.path.realpath(storage)
    path = Path(candidate)
    if not path.is_absolute():
        path = Path(root) / path
    resolved = os.path.realpath(path)
    if os.path.commonpath([root, resolved]) != root or resolved == root:
        return None
    return Path(resolved) if os.path.isfile(resolved) else None


def download(request: Request) -> Response:
    """A completed task's result file: its newest stored one, else (sTask's way) a path result
    that lies inside the storage directory; 409 until the task has completed."""
    task_id = bodies.task_id(request)
    app = state(request)
    task: Task = app.client.get(task_id)
    if task.status != Status.COMPLETED:
        raise ApiError(409, "Task must be completed before downloading", error="Task not completed")
    try:
        info = app.client.result_file(task_id)
    except TaskFileNotFoundError:
        local = inside_storage(app.client.settings.storage, task.result)
        if local is None:
            raise ApiError(
                404, "Export file is not available", error="Export file not found"
            ) from None
        return FileResponse(
            local,
            media_type=files.content_type(local.name),
            headers={
                "Content-Disposition": content_disposition(local.name),
                "X-Content-Type-Options": "nosniff",
            },
        )
    return StreamingResponse(
        iterate_in_threadpool(app.client.read_file(info)),
        media_type=info.content_type,
        headers={
            "Content-Disposition": content_disposition(info.filename),
            "Content-Length": str(info.size),
            "X-Content-Type-Options": "nosniff",
        },
    )


def _upload_rules(worker: dict[str, Any], server_max: int) -> tuple[tuple[str, ...], int]:
    """Allowed extensions and the size limit of a worker (class defaults under stored
    settings; the server's limit caps the worker's)."""
    cls = registry.load_class(worker["class"])
    merged = {**(dict(cls.settings) if cls is not None else {}), **(worker["settings"] or {})}
    raw = merged.get("allowed_extensions", DEFAULT_EXTENSIONS)
    if not isinstance(raw, list | tuple) or not all(isinstance(e, str) for e in raw):
        raw = DEFAULT_EXTENSIONS
    allowed = tuple(e.lower().lstrip(".") for e in raw)
    limit = merged.get("max_file_size")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        limit = server_max
    return allowed, min(limit, server_max)


def _check_extension(filename: str, allowed: tuple[str, ...]) -> None:
    if files.extension(filename) not in allowed:
        raise ApiError(422, f"Allowed file types: {', '.join(allowed)}", error="Invalid file type")


#: Form fields that make an upload to a worker one chunk of a chunked upload.
CHUNK_FIELDS = frozenset({"chunk_index", "total_chunks"})


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the file is larger than {limit} bytes", error="File too large")


def _chunk_too_large() -> ApiError:
    return ApiError(413, f"a chunk is at most {files.CHUNK_SIZE} bytes", error="File too large")


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, ended with a 413 as soon as it passes ``limit`` bytes."""
    seen = 0
    async for data in request.stream():
        seen += len(data)
        if seen > limit:
            raise _too_large(limit - MULTIPART_OVERHEAD)
        yield data


class _UploadParser(MultiPartParser):
    """Starlette's multipart parser with the file capped while it streams in: at ``limit``, or
    at one chunk once a field before it (``chunk_index``, ``total_chunks``) made the request a
    chunk. Nothing past the cap is read or spooled. (It looks at the parser's ``items`` and
    ``_current_part``; tests/test_http_uploads.py holds it to this over a real socket.)"""

    def __init__(self, request: Request, limit: int) -> None:
        super().__init__(
            request.headers,
            _capped(request, limit + MULTIPART_OVERHEAD),
            max_files=1,
            max_fields=10,
            max_part_size=MAX_FIELD_SIZE,
        )
        self.limit = limit
        self.file_size = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self.file_size += end - start
            if self.file_size > files.CHUNK_SIZE and any(n in CHUNK_FIELDS for n, _ in self.items):
                raise _chunk_too_large()
            if self.file_size > self.limit:
                raise _too_large(self.limit)
        super().on_part_data(data, start, end)


async def _form(request: Request, limit: int) -> FormData:
    """The multipart form of an upload whose file may have ``limit`` bytes: a 413 before the
    body is read when its ``Content-Length`` says more, else as soon as the file passes it."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "send multipart/form-data with the file in the field 'file'")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit)
    try:
        return await _UploadParser(request, limit).parse()
    except MultiPartException as exc:  # a malformed body; its message is the parser's own
        raise ApiError(400, f"could not read the upload: {exc.message}") from None
    except ClientDisconnect:
        raise client_left(request) from None


def _check_room(
    app: AppState, adding: int, *, identifier: str | None = None, session_id: str | None = None
) -> None:
    """The quotas: 507 when ``adding`` more bytes would pass ``PGSTASK_FILE_STORAGE_LIMIT``,
    429 for a new chunked upload (``session_id``) past ``PGSTASK_MAX_OPEN_UPLOADS``. Checked
    before an upload is stored: uploads stored at the same moment may pass the storage limit
    by their own size."""
    settings = app.client.settings
    use = figures.file_usage(app.client, identifier=identifier, session_id=session_id)
    if (
        session_id is not None
        and not use.session_exists
        and use.open_uploads >= settings.max_open_uploads
    ):
        raise ApiError(
            429,
            f"{use.open_uploads} chunked uploads are unfinished, the most this server allows "
            "(PGSTASK_MAX_OPEN_UPLOADS); finish one first (abandoned ones are deleted after a "
            "day)",
            error="Too many unfinished uploads",
        )
    if use.bytes + max(adding, 1) > settings.file_storage_limit:
        raise ApiError(
            507,
            f"the server's file storage is full: stored files may take "
            f"{settings.file_storage_limit} bytes (PGSTASK_FILE_STORAGE_LIMIT), {use.bytes} are "
            "taken; try again once old tasks and their files are cleaned",
            error="File storage full",
        )


def _file_field(form: FormData) -> UploadFile:
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ApiError(400, "Please select a file to upload", error="No file uploaded")
    return upload


def _stored(info: files.FileInfo) -> dict[str, Any]:
    return {
        "result": info.filename,
        "original_filename": info.filename,
        "file_size": info.size,
        "file_id": info.id,
    }


async def upload_to_task(request: Request) -> JSONResponse:
    """Store a file for a pending or preparing task, within its worker's rules and the
    server's room; the task's options get the file's id, name and size."""
    task_id = bodies.task_id(request)
    app = state(request)
    allowed, limit = await run_in_threadpool(_task_rules, app, task_id)
    form = await _form(request, limit)
    try:
        info = await run_in_threadpool(_store_for_task, app, task_id, form, allowed, limit)
    finally:
        await form.close()
    return JSONResponse(
        {"success": True, "code": 200, "message": "File uploaded successfully", **_stored(info)}
    )


def _task_rules(app: AppState, task_id: int) -> tuple[tuple[str, ...], int]:
    """Before the body of an upload to a task is read: the task takes uploads and there is
    room; its worker's allowed extensions and size limit."""
    task = app.client.get(task_id)
    if task.status not in (Status.PENDING, Status.PREPARING):
        raise ApiError(
            409,
            "Task must be queued or preparing to accept file uploads",
            error="Invalid task status",
        )
    worker = app.workers.get(task.identifier)
    allowed, limit = _upload_rules(worker or {"class": "", "settings": {}}, app.http.max_upload)
    _check_room(app, 0)
    return allowed, limit


def _store_for_task(
    app: AppState, task_id: int, form: FormData, allowed: tuple[str, ...], limit: int
) -> files.FileInfo:
    upload = _file_field(form)
    name = _safe_name(upload.filename or "")
    _check_extension(name, allowed)
    _check_room(app, upload.size or 0)
    info, _ = app.client.upload_to_task(task_id, upload.file, name, max_size=limit)
    return info


async def upload_to_worker(request: Request) -> JSONResponse:
    """Store a file for an active worker before its task exists: whole, or as one chunk of
    sTask's chunked upload (the last chunk assembles the file)."""
    identifier = bodies.worker_identifier(request)
    app = state(request)
    allowed, limit = await run_in_threadpool(_worker_rules, app, identifier)
    form = await _form(request, limit)
    try:
        if any(field in form for field in CHUNK_FIELDS):
            return await run_in_threadpool(_chunk, app, form, identifier, allowed, limit)
        info = await run_in_threadpool(_store_for_worker, app, identifier, form, allowed, limit)
    finally:
        await form.close()
    return JSONResponse(
        {"success": True, "code": 200, "message": "File uploaded successfully", **_stored(info)}
    )


def _worker_rules(app: AppState, identifier: str) -> tuple[tuple[str, ...], int]:
    """Before the body of an upload to a worker is read: the worker is active and there is
    room; its allowed extensions and size limit."""
    worker = app.workers.get(identifier)
    if worker is None or not worker["active"]:
        raise ApiError(
            404,
            f'Worker with identifier "{identifier}" not found or inactive',
            error="Worker not found",
        )
    allowed, limit = _upload_rules(worker, app.http.max_upload)
    _check_room(app, 0)
    return allowed, limit


def _store_for_worker(
    app: AppState, identifier: str, form: FormData, allowed: tuple[str, ...], limit: int
) -> files.FileInfo:
    upload = _file_field(form)
    name = _safe_name(upload.filename or "")
    _check_extension(name, allowed)
    _check_room(app, upload.size or 0)
    return app.client.upload_for_worker(identifier, upload.file, name, max_size=limit)


def _chunk(
    app: AppState, form: FormData, identifier: str, allowed: tuple[str, ...], limit: int
) -> JSONResponse:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "Please upload a file chunk", error="No file chunk uploaded")
    index = bodies.whole_number(form.get("chunk_index"), "chunk_index", -1, 0, 99_999)
    total = bodies.whole_number(form.get("total_chunks"), "total_chunks", -1, 1, 100_000)
    if index >= total:
        raise ApiError(422, f"chunk_index {index} must be below total_chunks {total}")
    session_id = form.get("session_id")
    if not isinstance(session_id, str) or not files.SESSION_ID.match(session_id):
        raise ApiError(422, "session_id must be 8-128 letters, digits, '-' or '_'")
    original = form.get("original_filename")
    name = _safe_name(original if isinstance(original, str) else "")
    _check_extension(name, allowed)
    data = upload.file.read(files.CHUNK_SIZE + 1)
    if len(data) > files.CHUNK_SIZE:  # its file came before the fields that said "chunk"
        raise _chunk_too_large()
    _check_room(app, len(data), identifier=identifier, session_id=session_id)
    result = app.client.upload_chunk(
        identifier,
        session_id=session_id,
        filename=name,
        index=index,
        total=total,
        data=data,
        max_size=limit,
    )
    if not result.finished:
        return JSONResponse(
            {
                "success": True,
                "code": 200,
                "message": "Chunk uploaded successfully",
                "chunk_index": index,
                "total_chunks": total,
                "received": result.received,
            }
        )
    return JSONResponse(
        {
            "success": True,
            "code": 200,
            "message": "File uploaded successfully",
            "filename": result.file.filename,
            "file_id": result.file.id,
            "file_size": result.file.size,
        }
    )


def _safe_name(name: str) -> str:
    try:
        return files.safe_filename(name)
    except InvalidTaskError:
        raise ApiError(
            422,
            f"{bodies.shown(name)} is not a usable file name: send a bare name of 1-255 characters",
            error="Invalid file name",
        ) from None


def upload_limit(path: str, max_upload: int) -> int | None:
    """The body limit of an upload path (None: not an upload path)."""
    if path.endswith("/upload"):
        return max_upload + MULTIPART_OVERHEAD
    return None


def routes() -> list[Route]:
    """Download and upload, on sTask's singular and plural paths."""
    out = []
    for base in ("task", "tasks"):
        out += [
            Route(f"/stask/{base}/{{id:id}}/download", download, methods=["GET"]),
            Route(f"/stask/{base}/{{id:id}}/upload", upload_to_task, methods=["POST"]),
        ]
    for base in ("worker", "workers"):
        out.append(
            Route(f"/stask/{base}/{{identifier}}/upload", upload_to_worker, methods=["POST"])
        )
    return out
