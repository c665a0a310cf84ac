"""Error bodies: ``{"success": false, "code", "error", "message"}`` with a matching status code.

sTask answered many errors with HTTP 200; here the status code always tells, and the body keeps
sTask's fields so a client written for it still finds ``success`` and ``message``.

A message says what was wrong in the user's terms. What PostgreSQL said (constraint names,
SQLSTATEs, the server's address and user) stays in the server log: a refused value is named by
the rule it broke (``REFUSED``), an unreachable database is "database unreachable".
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pgstask.errors import (
    DatabaseError,
    FileTooLargeError,
    InvalidOptionsError,
    InvalidPresetError,
    InvalidScheduleError,
    InvalidTaskError,
    InvalidWebhookError,
    PgstaskError,
    PresetNotFoundError,
    ScheduleNotFoundError,
    SchemaError,
    TaskFileNotFoundError,
    TaskNotFoundError,
    TaskStateError,
    UnknownActionError,
    WebhookNotFoundError,
    WorkerNotFoundError,
)
from pgstask.http.paths import route_path

_log = logging.getLogger(__name__)

#: Headers of every answer of the API: no content sniffing, no caching of tasks' data.
NO_STORE = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}

#: What a constraint of the schema means, in the API's terms.
REFUSED = {
    "s_tasks_meta_size_check": "data must be at most 1 MiB as JSON (as PostgreSQL stores it); "
    "put large inputs in a file and pass a reference",
    "s_tasks_meta_object_check": "data must be a JSON object",
    "s_tasks_identifier_check": "identifier must be 1-255 characters, not only spaces",
    "s_tasks_action_check": "action must be 1-255 characters, not only spaces",
    "s_tasks_priority_check": "priority must be high, normal or low",
    "s_tasks_max_attempts_check": "max_attempts must be a whole number from 1 to 1000",
    "s_workers_settings_object_check": "settings must be a JSON object",
    "s_task_files_filename_check": "a file name must be a bare name of 1-255 characters",
    "s_task_files_session_check": "session_id must be 8-128 letters, digits, '-' or '_'",
    "s_task_files_total_chunks_check": "total_chunks must be a whole number from 1 to 100000",
    "s_schedules_identifier_check": "a schedule's identifier must be 1-200 characters",
    "s_schedules_action_check": "a schedule's action must be 1-200 characters",
    "s_schedules_preset_check": "a schedule's preset must be 1-200 characters",
    "s_schedules_target_check": "a schedule has an identifier and an action, or a preset",
    "s_presets_identifier_check": "a preset's identifier must be 1-255 characters, not only spaces",
    "s_presets_action_check": "a preset's action must be 1-255 characters, not only spaces",
    "s_presets_data_check": "a preset's data must be a JSON object of at most 1 MiB",
    "s_tasks_notify_check": "notify must be an object of webhooks, emails and on (lists)",
    "s_webhooks_url_check": "a webhook's url must be an http(s) URL of at most 2000 characters",
}
#: The schema's own messages (raised by its triggers) start with this; the rest is for users.
_OWN_MESSAGE = "pgstask: "

#: pgstask error → (status code, short error title)
_STATUS: list[tuple[type[PgstaskError], int, str]] = [
    (TaskNotFoundError, 404, "Task not found"),
    (WorkerNotFoundError, 404, "Worker not found"),
    (ScheduleNotFoundError, 404, "Schedule not found"),
    (InvalidScheduleError, 422, "Invalid schedule"),
    (PresetNotFoundError, 404, "Preset not found"),
    (InvalidPresetError, 422, "Invalid preset"),
    (WebhookNotFoundError, 404, "Webhook not found"),
    (InvalidWebhookError, 422, "Invalid webhook"),
    (UnknownActionError, 422, "Unknown action"),
    (FileTooLargeError, 413, "File too large"),
    (TaskFileNotFoundError, 404, "File not found"),
    (InvalidOptionsError, 422, "Invalid options"),
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
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
    507: "Insufficient storage",
}


class ApiError(HTTPException):
    """An error answered as JSON; ``error`` is the short title, ``detail`` the message."""

    def __init__(self, status_code: int, message: str, *, error: str | None = None) -> None:
        super().__init__(status_code, message)
        self.error = error or _TITLES.get(status_code, "Error")


def error_body(code: int, error: str, message: str, **extra: Any) -> dict[str, Any]:
    """sTask's error body: ``success: false``, the status code, a title and the message."""
    return {"success": False, "code": code, "error": error, "message": message, **extra}


def error_response(code: int, error: str, message: str, **extra: Any) -> JSONResponse:
    """The error body as an answer that is never cached; a 401 names the Bearer scheme."""
    headers = dict(NO_STORE)
    if code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pgstask"'
    return JSONResponse(error_body(code, error, message, **extra), code, headers=headers)


async def http_exception(request: Request, exc: Exception) -> Response:
    """The app's handler of ``HTTPException`` (``ApiError`` and Starlette's own): the error
    body with the exception's code and headers."""
    assert isinstance(exc, HTTPException)
    error = exc.error if isinstance(exc, ApiError) else _TITLES.get(exc.status_code, "Error")
    response = error_response(exc.status_code, error, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def pgstask_error(request: Request, exc: Exception) -> Response:
    """The app's handler of ``PgstaskError``: the status code and title of its kind with the
    user's message (a kind without one is a 500); detail kept from the user goes to the log."""
    assert isinstance(exc, PgstaskError)
    for kind, code, error in _STATUS:
        if isinstance(exc, kind):
            message = user_message(exc)
            if message != str(exc):  # the detail is for the operator
                level = logging.WARNING if code >= 500 else logging.INFO
                _log.log(level, "%s %s: %s", request.method, _short(request.url.path), exc)
            return error_response(code, error, message)
    _log.error("%s %s: unexpected %r", request.method, _short(request.url.path), exc)
    return error_response(500, "Internal server error", "the request failed; see the server log")


async def server_error(request: Request, exc: Exception) -> Response:
    """The app's handler of any other exception: logged with its traceback, a 500 that shows
    none of it."""
    _log.exception("%s %s failed", request.method, _short(request.url.path))
    return error_response(500, "Internal server error", "the request failed; see the server log")


DATABASE_UNREACHABLE = "database unreachable; the server log has the detail"


def user_message(exc: PgstaskError) -> str:
    """What the user is told about ``exc``: its own text, unless it carries what PostgreSQL
    said (then the rule the value broke, or that the database is unreachable)."""
    cause = exc.__cause__
    if isinstance(exc, SchemaError):
        return "the database schema is missing or older than this pgstask: run `pgstask migrate`"
    if isinstance(exc, DatabaseError):
        if not isinstance(cause, psycopg.Error) or _unreachable(cause):
            return DATABASE_UNREACHABLE
        return "the database could not run the request; the server log has the detail"
    if not isinstance(cause, psycopg.Error):
        return str(exc)
    constraint = cause.diag.constraint_name
    if constraint in REFUSED:
        return REFUSED[constraint]
    primary = cause.diag.message_primary or ""
    if primary.startswith(_OWN_MESSAGE):
        hint = cause.diag.message_hint
        return primary[len(_OWN_MESSAGE) :] + (f"; {hint}" if hint else "")
    if isinstance(cause, psycopg.DataError) and not constraint:
        return f"a value cannot be stored: {primary or str(cause).strip()}"
    return "a value of the request breaks a rule of the database; the server log has which"


def _unreachable(exc: psycopg.Error) -> bool:
    """A failure to reach the server or to keep talking to it (no SQLSTATE: the client's own
    connection error; class 08: connection exception; 57P0x: the server shuts down or starts)."""
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def client_left(request: Request) -> ApiError:
    """What a route raises when the client left while its body was read: an answer nobody
    reads, logged at info (raised on, Starlette would log it as a server error)."""
    _log.info(
        "%s %s: the client left before its body was read", request.method, _short(request.url.path)
    )
    return ApiError(400, "the client left before its body was read")


def _short(path: str, limit: int = 200) -> str:
    """A request path for the log, cut (a path can be as long as the server allows)."""
    return path if len(path) <= limit else path[:limit] + "…"


#: Paths whose answers a browser may keep (and must revalidate): the dashboard's static files.
CACHEABLE_PREFIX = "/stask/static/"
#: Of a plain-text error answer, the part that is kept for the JSON one.
_PLAIN_KEPT = 4096
#: Texts that the layers under the app answer with, in the API's terms.
_PLAIN_ANSWERS = {
    b"Invalid host header": (
        "Invalid host",
        "the Host header names no host this server answers (PGSTASK_API_ALLOWED_HOSTS)",
    ),
}


class JsonAnswers:
    """The outermost middleware: every answer gets ``X-Content-Type-Options: nosniff`` and a
    ``Cache-Control`` (``no-store``; the static files ``private, no-cache``: kept by the browser,
    revalidated by their ETag, so an upgrade shows at once), and an error answer that is not
    JSON or HTML (the Host check answers plain text) becomes the API's JSON error body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cache = (
            "private, no-cache" if route_path(scope).startswith(CACHEABLE_PREFIX) else "no-store"
        )
        held: Message | None = None
        body = bytearray()

        async def answer(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                message["headers"] = raw = list(message.get("headers", ()))
                headers = MutableHeaders(raw=raw)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("cache-control", cache)
                kind = headers.get("content-type", "").split(";")[0].strip()
                if message["status"] >= 400 and kind not in ("application/json", "text/html"):
                    held = message  # replaced once its body is known
                    return
            elif held is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b"")[: max(0, _PLAIN_KEPT - len(body))])
                if message.get("more_body", False):
                    return
                await _as_json(held["status"], bytes(body))(scope, receive, send)
                return
            await send(message)

        await self.app(scope, receive, answer)


def _as_json(code: int, text: bytes) -> Response:
    error, message = _PLAIN_ANSWERS.get(text.strip(), (None, None))
    if error is None or message is None:
        error = _TITLES.get(code, "Error")
        message = text.decode("utf-8", "replace").strip()[:200] or error
    return error_response(code, error, message)
