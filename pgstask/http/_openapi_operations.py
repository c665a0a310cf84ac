"""What each endpoint of the HTTP API takes and answers: one ``Operation`` per handler and
method, for the OpenAPI document.

Only what is particular to an endpoint is here: its summary, query parameters, request body, its
own answers and the error codes of its handler, grouped by tag. The parameters and bodies are
built in ``_openapi_inputs.py``, the answers' schemas in ``_openapi_schemas.py``. ``openapi.py``
adds the path, the path parameters and the errors that follow from the route itself (token,
writes, body, task id, database).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pgstask.http._openapi_inputs import (
    ACTIVE_ONLY,
    BUCKET,
    HOURS,
    ID_FILTER,
    LIST_QUERY,
    LOGS_QUERY,
    RUN_QUERY,
    cache_clear_body,
    clean_body,
    create_body,
    identifier_body,
    run_body,
    schedule_body,
    settings_body,
    upload_body,
)
from pgstask.http._openapi_schemas import (
    COUNT,
    INT,
    NUMBER,
    STATUS_TEXT,
    TASK_ID,
    TEXT,
    TEXTS,
    Schema,
    json_answer,
    nullable,
    progress_events,
    record,
    ref,
    success,
    text_answer,
)
from pgstask.http.routes import files, ops, performance, schedules, tasks, workers


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

LOCATION = {"description": "The new task's path", "schema": TEXT}
CHANGED_WORKER = json_answer("Changed", success(message=TEXT, worker=ref("Worker")))


def _task_writes() -> dict[Key, Operation]:
    """Creating a task, and changing one."""
    with_task = success(message=TEXT, task=ref("Task"))
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
            query=RUN_QUERY,
            body=run_body(),
            description="404 when the worker is unknown or inactive; 422 for an action the "
            "worker does not have (when its actions are known) or a bad field (also a "
            "depends_on that names a missing task). The body's fields win over the query "
            "string's.",
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
            body=create_body(),
            description="Like an SQL insert, it does not need the worker to be registered. "
            "With depends_on the task waits (status waiting) until those tasks have finished; "
            "a missing one is a 422.",
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
        (tasks.clear_logs, "DELETE"): Operation(
            "Delete a task's log records",
            "tasks",
            {200: json_answer("Deleted", success(message=TEXT, deleted=COUNT))},
        ),
    }


def _task_reads() -> dict[Key, Operation]:
    """A task, its progress and logs, and the task list."""
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
    logs = success(logs={"type": "array", "items": ref("LogRecord")}, count=COUNT)
    related = {"type": "array", "items": ref("RelatedTask")}
    shown = success(
        task=ref("Task"),
        parents={**related, "description": "The tasks it depends on"},
        children={**related, "description": "The tasks that depend on it"},
    )
    return {
        (tasks.show_task, "GET"): Operation(
            "A task, with its parents and children",
            "tasks",
            {200: json_answer("The task", shown)},
        ),
        (tasks.task_progress, "GET"): Operation(
            "A task's progress and its last 50 log lines",
            "tasks",
            {200: json_answer("sTask's progress fields", progress)},
        ),
        (tasks.progress_stream, "GET"): Operation(
            "A task's progress as a live stream until it ends", "tasks", {200: progress_events()}
        ),
        (tasks.list_tasks, "GET"): Operation(
            "Tasks, newest first, filtered, in keyset pages",
            "tasks",
            {200: json_answer("A page of tasks", page)},
            frozenset({422}),
            query=LIST_QUERY,
        ),
        (tasks.task_logs, "GET"): Operation(
            "A task's log records, oldest first",
            "tasks",
            {200: json_answer("The records", logs)},
            frozenset({422}),
            query=LOGS_QUERY,
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
            body=upload_body(chunks=False),
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
            body=upload_body(chunks=True),
            description="Limits as for a task's upload; a new chunked upload past the number "
            "of unfinished ones the server allows is a 429.",
        ),
    }


def _workers() -> dict[Key, Operation]:
    listed = success(workers={"type": "array", "items": ref("Worker")})
    return {
        (workers.list_workers, "GET"): Operation(
            "Registered workers",
            "workers",
            {200: json_answer("The workers", listed)},
            frozenset({422}),
            query=(ACTIVE_ONLY,),
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
            body=settings_body(),
            description="Running daemons reload them at once. A retry setting (retry_base_delay, "
            "retry_max_delay, retry_jitter, retry_on, fail_on, max_snoozes) that no daemon could "
            "use is refused with 422, naming it.",
        ),
        (workers.activate, "POST"): Operation(
            "Activate a worker",
            "workers",
            {200: CHANGED_WORKER},
            frozenset({404, 422}),
            body=identifier_body(),
        ),
        (workers.deactivate, "POST"): Operation(
            "Deactivate a worker",
            "workers",
            {200: CHANGED_WORKER},
            frozenset({404, 422}),
            body=identifier_body(),
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


def _schedules() -> dict[Key, Operation]:
    one = success(schedule=ref("Schedule"))
    changed = json_answer("Changed", success(message=TEXT, schedule=ref("Schedule")))
    with_task = success(message=TEXT, task=ref("Task"))
    location = {"description": "The schedule's path", "schema": TEXT}
    added = success(message=TEXT, schedule=ref("Schedule"))
    return {
        (schedules.list_schedules, "GET"): Operation(
            "Schedules, by name",
            "schedules",
            {
                200: json_answer(
                    "The schedules",
                    success(schedules={"type": "array", "items": ref("Schedule")}, count=COUNT),
                )
            },
            frozenset({422}),
            description="With each one's next and last slot, its last task and its state.",
        ),
        (schedules.add_schedule, "POST"): Operation(
            "Add a schedule, or replace one added before",
            "schedules",
            {
                200: json_answer("Replaced", added, Location=location),
                201: json_answer("Added", added, Location=location),
            },
            frozenset({422}),
            body=schedule_body(),
            description="422 for a bad field (the message names it), an action the worker "
            "does not have (when its actions are known), or a schedule declared in code "
            "(change it there). A changed expression or zone starts from its next slot.",
        ),
        (schedules.show_schedule, "GET"): Operation(
            "A schedule",
            "schedules",
            {200: json_answer("The schedule", one)},
            frozenset({404}),
        ),
        (schedules.pause_schedule, "POST"): Operation(
            "Pause a schedule", "schedules", {200: changed}, frozenset({404})
        ),
        (schedules.resume_schedule, "POST"): Operation(
            "Resume a schedule, from its next slot", "schedules", {200: changed}, frozenset({404})
        ),
        (schedules.run_schedule, "POST"): Operation(
            "Run a schedule now: one task with its fields",
            "schedules",
            {201: json_answer("Created", with_task, Location=LOCATION)},
            frozenset({404}),
            description="Paused or not; its slots are not moved.",
        ),
        (schedules.remove_schedule, "DELETE"): Operation(
            "Remove a schedule",
            "schedules",
            {200: json_answer("Removed", success(message=TEXT))},
            frozenset({404}),
            description="Its tasks stay. A schedule still declared in code comes back at a "
            "daemon's next start.",
        ),
    }


def _performance() -> dict[Key, Operation]:
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
            query=(HOURS, BUCKET),
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
            body=clean_body(),
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
            body=cache_clear_body(),
        ),
        (ops.server_limits, "GET"): Operation(
            "sTask's upload limits, from this server's settings",
            "service",
            {200: json_answer("Bytes", limits)},
            database=False,
        ),
    }


OPERATIONS: dict[Key, Operation] = {
    **_task_writes(),
    **_task_reads(),
    **_files(),
    **_workers(),
    **_schedules(),
    **_performance(),
    **_service(),
}
