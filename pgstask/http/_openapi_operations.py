"""What each endpoint of the HTTP API takes and answers: one ``Operation`` per handler and
method, for the OpenAPI document.

Only what is particular to an endpoint is here: its summary, query parameters, request body, its
own answers and the error codes of its handler. ``openapi.py`` adds the path, the path
parameters and the errors that follow from the route itself (token, writes, body, task id,
database).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pgstask.http._openapi_schemas import (
    CONTROL,
    COUNT,
    DEDUPE_KEY,
    FLAG,
    INT,
    MAX_ATTEMPTS,
    NON_BLANK,
    NUMBER,
    OBJECT,
    PRIORITY,
    STATUS_TEXT,
    STATUS_TEXTS,
    TASK_ID,
    TEXT,
    TEXTS,
    Schema,
    json_answer,
    nullable,
    record,
    ref,
    success,
)
from pgstask.http.routes import files, ops, performance, tasks, workers
from pgstask.task import Status


@dataclass(frozen=True, slots=True)
class Operation:
    """One endpoint's description. ``answers`` are its own answers by status code, ``errors``
    the error codes its handler gives beyond those ``openapi.py`` adds from the route (401; 403
    on writes; 413 and 415 with a body; 404 with a task id; 503 with ``database``; 400)."""

    summary: str
    tag: str
    answers: Mapping[int, Schema]
    errors: frozenset[int] = frozenset()
    query: tuple[Schema, ...] = ()
    body: Schema | None = None
    description: str = ""
    database: bool = True


Key = tuple[Callable[..., Any], str]


def query(name: str, schema: Schema, description: str, *, empty: bool = True) -> Schema:
    """A query parameter; ``empty``: an empty value (``?limit=``) counts as not given."""
    out: Schema = {"name": name, "in": "query", "required": False, "description": description}
    if empty:
        out["allowEmptyValue"] = True
    return {**out, "schema": schema}


def json_body(schema: Schema, *, required: bool, example: Any = None) -> Schema:
    media: Schema = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def closed(schema: Schema) -> Schema:
    """``schema`` without properties beyond its own (unknown fields are a 422)."""
    return {**schema, "additionalProperties": False}


def text_answer(description: str, media_type: str = "text/plain") -> Schema:
    return {"description": description, "content": {media_type: {"schema": TEXT}}}


LOCATION = {"description": "The new task's path", "schema": TEXT}
CHANGED_WORKER = json_answer("Changed", success(message=TEXT, worker=ref("Worker")))
DATE_TIME = {"type": "string", "format": "date-time"}
HOURS = query(
    "hours",
    {"type": "number", "exclusiveMinimum": 0, "maximum": performance.MAX_HOURS, "default": 24},
    "The window: the last this many hours",
)
ID_FILTER = query("identifier", TEXT, "Only this worker")


def _run_body() -> Schema:
    envelope = closed(record(options=nullable(OBJECT), optional=CONTROL))
    plain = {"type": "object", "not": {"required": ["options"]}}
    return json_body(
        {
            "description": "The task's options: the `options` key if there is one (then the "
            "body may also carry priority, start_at, max_attempts and dedupe_key), else the "
            "whole body. An empty body is no options.",
            "anyOf": [envelope, plain],
        },
        required=False,
        example={"options": {"file": "a.csv"}, "priority": "high"},
    )


def _create_body() -> Schema:
    name = {**NON_BLANK, "maxLength": 255}
    data = {**nullable(OBJECT), "description": "The task's options"}
    return json_body(
        closed(record(identifier=name, action=name, optional={"data": data, **CONTROL})),
        required=True,
        example={"identifier": "demo", "action": "count", "data": {"to": 3}},
    )


def _identifier_body() -> Schema:
    return json_body(
        closed(record(identifier=NON_BLANK)), required=True, example={"identifier": "demo"}
    )


def _upload_body(*, chunks: bool) -> Schema:
    upload = record(file={"type": "string", "contentMediaType": "application/octet-stream"})
    upload["description"] = "The file in the field `file`"
    if chunks:
        upload["description"] += (
            "; a chunked upload (sTask's) sends each chunk of at most 1 MiB with chunk_index, "
            "total_chunks, session_id and original_filename, best before the file: then a "
            "chunk past 1 MiB is refused as soon as it passes it"
        )
        upload["properties"] |= {
            "chunk_index": {"type": "integer", "minimum": 0, "maximum": 99_999},
            "total_chunks": {"type": "integer", "minimum": 1, "maximum": 100_000},
            "session_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,128}$"},
            "original_filename": NON_BLANK,
        }
    return {"required": True, "content": {"multipart/form-data": {"schema": upload}}}


def _events() -> Schema:
    """The stream's events; with Open API 3.1 the ``schema`` of an event stream is one event."""

    def event(name: str, data: Schema) -> Schema:
        payload = {"type": "string", "contentMediaType": "application/json", "contentSchema": data}
        return record(event={"const": name}, data=payload)

    progress = {"allOf": [ref("Progress"), record(eta=nullable(NUMBER), eta_text=TEXT)]}
    end = record(id=TASK_ID, status=STATUS_TEXT)
    idle = record(id=TASK_ID, status=STATUS_TEXT, reason=TEXT)
    return {
        "description": "Server-Sent Events: `progress` (the progress fields as JSON, `eta` in "
        "seconds) whenever they change, and `end` when the task has finished; then the stream "
        "closes. A comment every 15 s keeps proxies from closing it. When the progress has "
        "not changed for `PGSTASK_API_STREAM_IDLE` seconds the stream ends with `idle` "
        "instead; open it again to go on. Too many streams open (in all, or for this token): "
        "429.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "oneOf": [event("progress", progress), event("end", end), event("idle", idle)]
                }
            }
        },
    }


def _tasks() -> dict[Key, Operation]:
    with_task = success(message=TEXT, task=ref("Task"))
    progress = {
        "allOf": [
            ref("Progress"),
            success(
                code={"const": 200},
                eta={**TEXT, "description": "e.g. 1m 5s; — when unknown"},
                eta_seconds=nullable(NUMBER),
                log_lines=TEXTS,
            ),
        ]
    }
    page = success(
        tasks={"type": "array", "items": ref("Task")},
        count=COUNT,
        next_before_id={**nullable(TASK_ID), "description": "before_id of the next page"},
    )
    status = {"enum": [*STATUS_TEXTS, *(str(int(s)) for s in Status)]}
    return {
        (tasks.run_action, "POST"): Operation(
            "Run an action: create a task for an active worker",
            "tasks",
            {
                201: json_answer(
                    "Created",
                    success(id=TASK_ID, status=STATUS_TEXT, message=TEXT),
                    Location=LOCATION,
                )
            },
            frozenset({404, 422}),
            query=(
                query("priority", PRIORITY, "As the body's priority", empty=False),
                query("start_at", DATE_TIME, "As the body's start_at"),
                query("max_attempts", MAX_ATTEMPTS, "As the body's max_attempts"),
                query("dedupe_key", DEDUPE_KEY, "As the body's dedupe_key", empty=False),
            ),
            body=_run_body(),
            description="404 when the worker is unknown or inactive; 422 for an action the "
            "worker does not have (when its actions are known) or a bad field. The body's "
            "fields win over the query string's.",
        ),
        (tasks.create_task, "POST"): Operation(
            "Create a task (sTask's create endpoint)",
            "tasks",
            {
                201: json_answer(
                    "Created", success(task=ref("Task"), message=TEXT), Location=LOCATION
                )
            },
            frozenset({422}),
            body=_create_body(),
            description="Like an SQL insert, it does not need the worker to be registered.",
        ),
        (tasks.show_task, "GET"): Operation(
            "A task", "tasks", {200: json_answer("The task", success(task=ref("Task")))}
        ),
        (tasks.task_progress, "GET"): Operation(
            "A task's progress and its last 50 log lines",
            "tasks",
            {200: json_answer("sTask's progress fields", progress)},
        ),
        (tasks.progress_stream, "GET"): Operation(
            "A task's progress as a live stream until it ends", "tasks", {200: _events()}
        ),
        (tasks.list_tasks, "GET"): Operation(
            "Tasks, newest first, filtered, in keyset pages",
            "tasks",
            {200: json_answer("A page of tasks", page)},
            frozenset({422}),
            query=(
                query("status", status, "A status, by name or code"),
                ID_FILTER,
                query("action", TEXT, "Only this action"),
                query("priority", PRIORITY, "Only this priority"),
                query("created_from", DATE_TIME, "Created at or after"),
                query("created_to", DATE_TIME, "Created before"),
                query("before_id", TASK_ID, "Tasks with a smaller id (next_before_id of a page)"),
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                    "Page size",
                ),
            ),
        ),
        (tasks.cancel_task, "POST"): Operation(
            "Cancel a task that has not finished",
            "tasks",
            {200: json_answer("Cancelled", with_task)},
            frozenset({409}),
        ),
        (tasks.retry_task, "POST"): Operation(
            "Queue a failed or cancelled task again",
            "tasks",
            {200: json_answer("Queued again", with_task)},
            frozenset({409}),
        ),
        (tasks.task_logs, "GET"): Operation(
            "A task's log records, oldest first",
            "tasks",
            {
                200: json_answer(
                    "The records",
                    success(logs={"type": "array", "items": ref("LogRecord")}, count=COUNT),
                )
            },
            frozenset({422}),
            query=(
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 100_000},
                    "The last N records",
                ),
                query("errors_only", FLAG, "Only records of level error or above"),
            ),
        ),
        (tasks.clear_logs, "DELETE"): Operation(
            "Delete a task's log records",
            "tasks",
            {200: json_answer("Deleted", success(message=TEXT, deleted=COUNT))},
        ),
        (tasks.download_logs, "GET"): Operation(
            "A task's log as a text file", "tasks", {200: text_answer("One line per record")}
        ),
    }


def _files() -> dict[Key, Operation]:
    chunk = success(
        code={"const": 200}, message=TEXT, chunk_index=COUNT, total_chunks=COUNT, received=COUNT
    )
    assembled = success(
        code={"const": 200}, message=TEXT, filename=TEXT, file_id=INT, file_size=COUNT
    )
    any_file = {"type": "string", "contentMediaType": "application/octet-stream"}
    return {
        (files.download, "GET"): Operation(
            "Download a completed task's result file",
            "files",
            {
                200: {
                    "description": "The file, as an attachment of its own media type",
                    "content": {"*/*": {"schema": any_file}},
                }
            },
            frozenset({409}),
            description="The task's newest stored result file, else (sTask's way) a file path "
            "result that lies inside the storage directory. 409 until the task has completed.",
        ),
        (files.upload_to_task, "POST"): Operation(
            "Upload a file to a pending or preparing task",
            "files",
            {200: json_answer("Stored", ref("StoredFile"))},
            frozenset({409, 422, 507}),
            body=_upload_body(chunks=False),
            description="Checked against the worker's allowed_extensions and max_file_size "
            "settings (413 from Content-Length before the body is read, else as soon as the "
            "file passes the limit) and the server's file storage limit (507); the task's "
            "options get uploaded_file_id, original_filename, file_size.",
        ),
        (files.upload_to_worker, "POST"): Operation(
            "Upload a file for a worker before its task exists",
            "files",
            {
                200: json_answer(
                    "Stored (a whole file, a chunk, or the last chunk)",
                    {"anyOf": [ref("StoredFile"), chunk, assembled]},
                )
            },
            frozenset({404, 422, 429, 507}),
            body=_upload_body(chunks=True),
            description="Limits as for a task's upload; a new chunked upload past the number "
            "of unfinished ones the server allows is a 429.",
        ),
    }


def _workers() -> dict[Key, Operation]:
    listed = success(workers={"type": "array", "items": ref("Worker")})
    settings = json_body(
        closed(record(settings=OBJECT)),
        required=True,
        example={"settings": {"max_file_size": 1048576}},
    )
    return {
        (workers.list_workers, "GET"): Operation(
            "Registered workers",
            "workers",
            {200: json_answer("The workers", listed)},
            frozenset({422}),
            query=(query("active_only", FLAG, "Only active workers"),),
        ),
        (workers.show_worker, "GET"): Operation(
            "A worker",
            "workers",
            {200: json_answer("The worker", success(worker=ref("Worker")))},
            frozenset({404}),
        ),
        (workers.update_settings, "POST"): Operation(
            "Merge settings into a worker's stored settings",
            "workers",
            {200: CHANGED_WORKER},
            frozenset({404, 422}),
            body=settings,
            description="Running daemons reload them at once.",
        ),
        (workers.activate, "POST"): Operation(
            "Activate a worker",
            "workers",
            {200: CHANGED_WORKER},
            frozenset({404, 422}),
            body=_identifier_body(),
        ),
        (workers.deactivate, "POST"): Operation(
            "Deactivate a worker",
            "workers",
            {200: CHANGED_WORKER},
            frozenset({404, 422}),
            body=_identifier_body(),
        ),
        (workers.discover, "POST"): Operation(
            "Register the worker classes installed where the API runs",
            "workers",
            {200: json_answer("The new ones", success(message=TEXT, discovered=TEXTS))},
        ),
        (workers.rescan, "POST"): Operation(
            "Refresh the class path and metadata of registered workers",
            "workers",
            {200: json_answer("The changed ones", success(message=TEXT, updated=TEXTS))},
        ),
        (workers.clean_orphaned, "POST"): Operation(
            "Delete workers whose class cannot be imported where the API runs",
            "workers",
            {
                200: json_answer(
                    "The removed ones", success(message=TEXT, deleted=COUNT, identifiers=TEXTS)
                )
            },
            description="Their pending tasks stay pending.",
        ),
    }


def _performance() -> dict[Key, Operation]:
    bucket = query(
        "bucket",
        {"type": "integer", "minimum": 10, "maximum": 86400},
        "Seconds per bucket (default: a 48th of the window, at least 60)",
    )
    by_worker = {"type": "object", "additionalProperties": ref("WorkerFigures")}
    return {
        (performance.summary, "GET"): Operation(
            "Throughput, success rate, durations, memory and common errors",
            "performance",
            {200: json_answer("The figures", success(data=ref("PerformanceSummary")))},
            frozenset({422}),
            query=(HOURS,),
            description="Rates are over completed and failed tasks only.",
        ),
        (performance.workers, "GET"): Operation(
            "The figures of each worker",
            "performance",
            {200: json_answer("By identifier", success(data=by_worker))},
            frozenset({422}),
            query=(HOURS, ID_FILTER),
        ),
        (performance.timeline, "GET"): Operation(
            "Finished tasks and their average duration per time bucket",
            "performance",
            {200: json_answer("The points", success(data=ref("Timeline")))},
            frozenset({422}),
            query=(HOURS, bucket),
        ),
        (performance.alerts, "GET"): Operation(
            "What needs an operator's attention now",
            "performance",
            {
                200: json_answer(
                    "The alerts", success(data={"type": "array", "items": ref("Alert")})
                )
            },
            frozenset({422}),
        ),
    }


def _service() -> dict[Key, Operation]:
    days = {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e6},
            {"enum": ["", None]},
        ],
        "default": 30,
    }
    ready = record(status={"const": "ready"}, database={"const": True}, schema=TEXT)
    not_ready = record(status={"const": "unavailable"}, database={"type": "boolean"}, reason=TEXT)
    limits = record(maxFileSize=COUNT, chunkSize=COUNT, singleUploadLimit=COUNT)
    return {
        (ops.healthz, "GET"): Operation(
            "Liveness: the process answers (no token, no database)",
            "service",
            {200: json_answer("Alive", record(status={"const": "ok"}))},
            database=False,
        ),
        (ops.readyz, "GET"): Operation(
            "Readiness: the database answers and its schema is this pgstask's",
            "service",
            {200: json_answer("Ready", ready), 503: json_answer("Not ready, and why", not_ready)},
            database=False,
        ),
        (ops.stats, "GET"): Operation(
            "Task counts per status, workers, and tasks that wait for a worker",
            "service",
            {200: json_answer("sTask's keys, unwrapped", ref("Stats"))},
        ),
        (ops.metrics, "GET"): Operation(
            "Prometheus metrics of the queue, from the database",
            "service",
            {200: text_answer("Prometheus text format")},
        ),
        (ops.clean, "POST"): Operation(
            "Delete finished tasks and log records older than `days` (default 30)",
            "service",
            {
                200: json_answer(
                    "Deleted", success(message=TEXT, deleted_tasks=COUNT, deleted_logs=COUNT)
                )
            },
            frozenset({422}),
            body=json_body(
                closed(record(optional={"days": days})), required=False, example={"days": 7}
            ),
        ),
        (ops.cache_stats, "GET"): Operation(
            "The worker cache's hits, misses and size in this process",
            "service",
            {200: json_answer("The figures", success(data=ref("CacheStats")))},
            database=False,
        ),
        (ops.cache_clear, "POST"): Operation(
            "Forget cached workers (one or all) and make daemons reload settings",
            "service",
            {200: json_answer("Cleared", success(message=TEXT))},
            frozenset({422}),
            body=json_body(
                closed(record(optional={"identifier": nullable(NON_BLANK)})), required=False
            ),
        ),
        (ops.server_limits, "GET"): Operation(
            "sTask's upload limits, from this server's settings",
            "service",
            {200: json_answer("Bytes", limits)},
            database=False,
        ),
    }


OPERATIONS: dict[Key, Operation] = {
    **_tasks(),
    **_files(),
    **_workers(),
    **_performance(),
    **_service(),
}
