"""Error bodies: ``{"success": false, "code", "error", "message"}`` with a matching status code.

sTask answered many errors with HTTP 200; here the status code always tells, and the body keeps
sTask's fields so a client written for it still finds ``success`` and ``message``.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pgstask.errors import (
    DatabaseError,
    FileTooLargeError,
    InvalidTaskError,
    PgstaskError,
    SchemaError,
    TaskFileNotFoundError,
    TaskNotFoundError,
    TaskStateError,
    UnknownActionError,
    WorkerNotFoundError,
)

_log = logging.getLogger(__name__)

#: pgstask error → (status code, short error title)
_STATUS: list[tuple[type[PgstaskError], int, str]] = [
    (TaskNotFoundError, 404, "Task not found"),
    (WorkerNotFoundError, 404, "Worker not found"),
    (UnknownActionError, 422, "Unknown action"),
    (FileTooLargeError, 413, "File too large"),
    (TaskFileNotFoundError, 404, "File not found"),
    (InvalidTaskError, 422, "Invalid task"),
    (TaskStateError, 409, "Invalid task status"),
    (SchemaError, 503, "Schema out of date"),
    (DatabaseError, 503, "Database unavailable"),
]

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApiError(HTTPException):
    """An error answered as JSON; ``error`` is the short title, ``detail`` the message."""

    def __init__(self, status_code: int, message: str, *, error: str | None = None) -> None:
        super().__init__(status_code, message)
        self.error = error or _TITLES.get(status_code, "Error")


def error_body(code: int, error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "code": code, "error": error, "message": message, **extra}


def error_response(code: int, error: str, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="pgstask"'} if code == 401 else None
    return JSONResponse(error_body(code, error, message, **extra), code, headers=headers)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = exc.error if isinstance(exc, ApiError) else _TITLES.get(exc.status_code, "Error")
    response = error_response(exc.status_code, error, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def pgstask_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PgstaskError)
    for kind, code, error in _STATUS:
        if isinstance(exc, kind):
            if code >= 500:
                _log.warning("%s %s: %s", request.method, request.url.path, exc)
            return error_response(code, error, str(exc))
    _log.error("%s %s: unexpected %r", request.method, request.url.path, exc)
    return error_response(500, "Internal server error", "the request failed; see the server log")


async def server_error(request: Request, exc: Exception) -> Response:
    _log.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "Internal server error", "the request failed; see the server log")
