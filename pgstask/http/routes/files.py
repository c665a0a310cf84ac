"""Downloads of result files and uploads (to a task, or to a worker before its task exists).

A download is found from the task id alone: the task's newest result file in the database (any
host), else, for workers that return a file path as their result (sTask's way), that path only if
it resolves to a regular file inside the storage directory. No path from the request is ever
opened. Uploads are checked against the worker's ``allowed_extensions`` (default ``["csv"]``) and
``max_file_size`` settings and the server's ``PGSTASK_API_MAX_UPLOAD``, and stored in the
database; chunked uploads (sTask's ``chunk_index``/``total_chunks``/``session_id`` fields) too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pgstask import files
from pgstask.errors import InvalidTaskError, TaskFileNotFoundError
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.http.state import state
from pgstask.task import Status, Task
from pgstask.workers import registry

DEFAULT_EXTENSIONS = ("csv",)
#: Room for the multipart framing and the small fields around a file or chunk.
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


async def download(request: Request) -> Response:
    task_id = bodies.task_id(request)
    app = state(request)
    task: Task = await run_in_threadpool(app.client.get, task_id)
    if task.status != Status.COMPLETED:
        raise ApiError(409, "Task must be completed before downloading", error="Task not completed")
    try:
        info = await run_in_threadpool(app.client.result_file, task_id)
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


async def _form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "send multipart/form-data with the file in the field 'file'")
    try:
        return await request.form(max_files=1, max_fields=10, max_part_size=64 * 1024)
    except ApiError:
        raise
    except Exception as exc:  # the multipart parser's errors: malformed bodies
        raise ApiError(400, f"could not read the upload: {exc}") from None


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
    task_id = bodies.task_id(request)
    app = state(request)
    task = await run_in_threadpool(app.client.get, task_id)
    if task.status not in (Status.PENDING, Status.PREPARING):
        raise ApiError(
            409,
            "Task must be queued or preparing to accept file uploads",
            error="Invalid task status",
        )
    worker = await run_in_threadpool(app.workers.get, task.identifier)
    allowed, limit = _upload_rules(worker or {"class": "", "settings": {}}, app.http.max_upload)
    form = await _form(request)
    try:
        upload = _file_field(form)
        name = _safe_name(upload.filename or "")
        _check_extension(name, allowed)
        info, _ = await run_in_threadpool(
            app.client.upload_to_task, task_id, upload.file, name, max_size=limit
        )
    finally:
        await form.close()
    return JSONResponse(
        {"success": True, "code": 200, "message": "File uploaded successfully", **_stored(info)}
    )


async def upload_to_worker(request: Request) -> JSONResponse:
    identifier = request.path_params["identifier"]
    app = state(request)
    worker = await run_in_threadpool(app.workers.get, identifier)
    if worker is None or not worker["active"]:
        raise ApiError(
            404,
            f'Worker with identifier "{identifier}" not found or inactive',
            error="Worker not found",
        )
    allowed, limit = _upload_rules(worker, app.http.max_upload)
    form = await _form(request)
    try:
        if "chunk_index" in form or "total_chunks" in form:
            return await _chunk(request, form, identifier, allowed, limit)
        upload = _file_field(form)
        name = _safe_name(upload.filename or "")
        _check_extension(name, allowed)
        info = await run_in_threadpool(
            app.client.upload_for_worker, identifier, upload.file, name, max_size=limit
        )
    finally:
        await form.close()
    return JSONResponse(
        {"success": True, "code": 200, "message": "File uploaded successfully", **_stored(info)}
    )


async def _chunk(
    request: Request, form: FormData, identifier: str, allowed: tuple[str, ...], limit: int
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
    data = await upload.read(files.CHUNK_SIZE + 1)
    if len(data) > files.CHUNK_SIZE:
        raise ApiError(413, f"a chunk is at most {files.CHUNK_SIZE} bytes")
    result = await run_in_threadpool(
        state(request).client.upload_chunk,
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
    except InvalidTaskError as exc:
        raise ApiError(422, str(exc), error="Invalid file name") from None


def upload_limit(path: str, max_upload: int) -> int | None:
    """The body limit of an upload path (None: not an upload path)."""
    if path.endswith("/upload"):
        return max_upload + MULTIPART_OVERHEAD
    return None


def routes() -> list[Route]:
    out = []
    for base in ("task", "tasks"):
        out += [
            Route(f"/stask/{base}/{{id:int}}/download", download, methods=["GET"]),
            Route(f"/stask/{base}/{{id:int}}/upload", upload_to_task, methods=["POST"]),
        ]
    for base in ("worker", "workers"):
        out.append(
            Route(f"/stask/{base}/{{identifier}}/upload", upload_to_worker, methods=["POST"])
        )
    return out
