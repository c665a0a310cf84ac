"""The JSON schemas of the OpenAPI document: the bodies the API answers and the fields it takes.

They follow what the handlers return and what ``bodies.py`` accepts (``null`` or an empty value
is the default where ``bodies.py`` reads it so). ``openapi.py`` assembles the document;
``_openapi_inputs.py`` builds the query parameters and request bodies from these fields, and
``_openapi_operations.py`` uses both for each endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pgstask import task_spec, workflow
from pgstask.http import bodies
from pgstask.http.routes import performance
from pgstask.task import PRIORITIES, Status

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A reference to the component schema ``name`` (one of ``SCHEMAS``)."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or JSON ``null``."""
    return {"anyOf": [schema, {"type": "null"}]}


def record(*, optional: Mapping[str, Schema] | None = None, **required: Schema) -> Schema:
    """An object whose keyword properties are required and ``optional`` ones are not."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def success(**properties: Schema) -> Schema:
    """sTask's success envelope: ``success: true`` and ``properties``, all required."""
    return record(success={"const": True}, **properties)


def json_answer(description: str, schema: Schema, **headers: Schema) -> Schema:
    """An answer whose body is JSON of ``schema``, with the response ``headers`` it sets."""
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def text_answer(description: str, media_type: str = "text/plain") -> Schema:
    """An answer whose body is text (a log file, Prometheus metrics)."""
    return {"description": description, "content": {media_type: {"schema": TEXT}}}


INT: Schema = {"type": "integer"}
COUNT: Schema = {"type": "integer", "minimum": 0}
NUMBER: Schema = {"type": "number"}
TEXT: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
OBJECT: Schema = {"type": "object"}
TEXTS: Schema = {"type": "array", "items": TEXT}
STATUS_TEXTS = [s.text for s in Status]
STATUS_TEXT: Schema = {"enum": STATUS_TEXTS}
NON_BLANK: Schema = {"type": "string", "pattern": r"\S"}
PRIORITY: Schema = {"enum": list(PRIORITIES)}
MAX_ATTEMPTS: Schema = {
    "type": "integer",
    "minimum": task_spec.MIN_ATTEMPTS,
    "maximum": task_spec.MAX_ATTEMPTS,
}
#: A whole number written as a string (a form or query value; also taken in JSON bodies).
WHOLE_TEXT: Schema = {"type": "string", "pattern": bodies.WHOLE_PATTERN}
TASK_ID: Schema = {"type": "integer", "format": "int64", "minimum": 1, "maximum": bodies.MAX_ID}
DEDUPE_KEY: Schema = {**NON_BLANK, "maxLength": task_spec.MAX_DEDUPE_KEY}
CONCURRENCY_KEY: Schema = {**NON_BLANK, "maxLength": task_spec.MAX_CONCURRENCY_KEY}
THROTTLE: Schema = {"type": "number", "exclusiveMinimum": 0, "maximum": task_spec.MAX_THROTTLE}
FLAG_EMPTY: Schema = {"enum": ["", None]}
#: A flag in a query string, as ``bodies.flag`` reads it.
FLAG: Schema = {"type": "boolean", "default": False}
#: What ``bodies.start_at`` takes: ISO 8601 with a UTC offset; empty or null is "now".
START_AT: Schema = {
    "anyOf": [TIME, {"enum": ["", None]}],
    "examples": ["2026-11-22T03:00:00Z"],
}
#: What a parent that failed or was cancelled does to a task; null: its worker's setting.
ON_PARENT_FAILURE: Schema = {
    **nullable({"enum": list(workflow.PARENT_FAILURE_POLICIES)}),
    "description": "When a parent fails or is cancelled: cancel this task (the default, "
    "unless its worker's on_parent_failure setting says run) or run it anyway",
}
#: A notify value (``pgstask.notify``): webhooks by name, email addresses, the outcomes.
NOTIFY: Schema = {
    "type": "object",
    "properties": {
        "webhooks": {"type": "array", "items": TEXT, "maxItems": 20},
        "emails": {"type": "array", "items": {"type": "string", "format": "email"}, "maxItems": 20},
        "on": {"type": "array", "items": {"enum": ["completed", "failed"]}},
    },
    "additionalProperties": False,
    "examples": [{"webhooks": ["ops"], "emails": ["ops@example.com"], "on": ["failed"]}],
}
#: The fields of a task beside its options, in a body; null is the default.
CONTROL: Schema = {
    "priority": {**nullable(PRIORITY), "default": task_spec.DEFAULT_PRIORITY},
    "start_at": START_AT,
    "max_attempts": {
        # As bodies.whole_number reads it: a number, its digits as a string, or "" for the default.
        "anyOf": [MAX_ATTEMPTS, WHOLE_TEXT, {"enum": ["", None]}],
        "default": task_spec.DEFAULT_MAX_ATTEMPTS,
    },
    "dedupe_key": {
        **nullable(DEDUPE_KEY),
        "description": "While a task with this key is incomplete, it is answered instead",
    },
    "concurrency_key": {
        **nullable(CONCURRENCY_KEY),
        "description": "Groups the task for its worker's per-key limits and fair sharing",
    },
    "throttle": {
        "anyOf": [THROTTLE, {"type": "string", "pattern": bodies.SECONDS_PATTERN}, FLAG_EMPTY],
        "description": "Seconds: with a dedupe_key, while a task with the key finished less than "
        "this long ago, it is answered instead (docs/dedupe.md)",
    },
    "notify": {
        **nullable(NOTIFY),
        "description": "Who to tell when the task completes or fails (docs/notifications.md)",
    },
    "replace": {
        "anyOf": [
            {"type": "boolean"},
            {"enum": ["", None, "1", "0", "true", "false", "yes", "no", "on", "off"]},
        ],
        "default": False,
        "description": "With a dedupe_key: a pending task with the key takes this task's "
        "fields instead (debounce)",
    },
    "depends_on": {
        **nullable({"type": "array", "items": TASK_ID, "maxItems": workflow.MAX_PARENTS}),
        "description": "Ids of existing tasks: this one waits (status waiting) until they have "
        "finished. A missing task is a 422. Not with throttle or replace",
    },
    "on_parent_failure": ON_PARENT_FAILURE,
}

ERROR_TEXTS = {
    400: "Bad request: invalid JSON, a task id of 0 or below, a malformed upload, a Host header "
    "that is not allowed",
    401: "No token, or a wrong one",
    403: "A read-only token on a write; a dashboard write without its CSRF header",
    404: "Not found (also a task id past bigint, which no task can have, and a schedule or "
    "preset name that none can have)",
    409: "The task is not in a state that allows this",
    413: "The request body is larger than the server's limit",
    415: "The body is not of the media type this operation takes",
    422: "Valid syntax, invalid content: the message says which field and why",
    429: "Too many wrong tokens from this address: try again after Retry-After seconds; on a "
    "worker upload, too many unfinished chunked uploads (PGSTASK_MAX_OPEN_UPLOADS)",
    503: "The database cannot be reached, or its schema is not this pgstask's",
    507: "The server's file storage is full (PGSTASK_FILE_STORAGE_LIMIT)",
}


def error_answer(code: int) -> Schema:
    """The error answer of status ``code``: the JSON error body, and when the API gives it."""
    return json_answer(ERROR_TEXTS[code], ref("Error"))


def progress_events() -> Schema:
    """The progress stream's events; with Open API 3.1 the ``schema`` of an event stream is one
    event."""

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


_TASK = record(
    id=TASK_ID,
    identifier=TEXT,
    action=TEXT,
    status={"enum": [int(s) for s in Status]},
    status_text=STATUS_TEXT,
    meta={**OBJECT, "description": "The action's options"},
    priority=PRIORITY,
    progress={"type": "integer", "minimum": 0, "maximum": 100},
    attempts=COUNT,
    max_attempts=MAX_ATTEMPTS,
    claims={**COUNT, "description": "How many times a daemon claimed it; never reset"},
    snoozes={
        **COUNT,
        "description": "How many times its action snoozed it (raised Snooze); reset by a retry",
    },
    start_at=TIME,
    created_at=TIME,
    updated_at=TIME,
    optional={
        "message": nullable(TEXT),
        "started_by": nullable(INT),
        "result": {"description": "What the action returned (any JSON)"},
        "started_at": nullable(TIME),
        "finished_at": nullable(TIME),
        "daemon_id": nullable({"type": "string", "format": "uuid"}),
        "last_error": nullable(TEXT),
        "dedupe_key": nullable(TEXT),
        "concurrency_key": {
            **nullable(TEXT),
            "description": "The key per-key limits and fair sharing group the task by",
        },
        "peak_memory": nullable({**COUNT, "description": "Bytes"}),
        "depends_on": {
            **nullable({"type": "array", "items": TASK_ID}),
            "description": "The tasks it was created to wait for (docs/workflows.md)",
        },
        "on_parent_failure": {
            **nullable({"enum": list(workflow.PARENT_FAILURE_POLICIES)}),
            "description": "What a parent that fails does to it; null: its worker's setting",
        },
        "waiting_for": {**COUNT, "description": "While waiting: its parents not finished yet"},
        "has_children": {**BOOL, "description": "Some task depends on it"},
        "awaited": {**BOOL, "description": "Someone waits for its end (Client.wait)"},
        "notify": {
            **nullable(NOTIFY),
            "description": "Who is told when it completes or fails, besides its worker's notify "
            "setting (docs/notifications.md)",
        },
        "trace_context": {
            "description": "The W3C trace context of the code that created it, as stored "
            "({traceparent, tracestate}; docs/opentelemetry.md); null: none",
        },
        "problem": {
            **TEXT,
            "description": "Only on a row pgstask cannot read as stored (e.g. a start_at of "
            "infinity written by plain SQL): what could not be read. Such values are shown "
            "clamped (timestamps) or as {'unreadable': …} (meta, result)",
        },
    },
)

_SCHEDULE = record(
    name=TEXT,
    identifier={**nullable(TEXT), "description": "Its worker; null when it starts a preset"},
    action={**nullable(TEXT), "description": "Its action; null when it starts a preset"},
    preset={**nullable(TEXT), "description": "The preset it starts, if it starts one"},
    preset_identifier={**nullable(TEXT), "description": "That preset's worker, if it exists"},
    preset_action={**nullable(TEXT), "description": "That preset's action, if it exists"},
    cron={**TEXT, "description": "Five fields, or six with seconds first, or an alias"},
    timezone={**TEXT, "description": "An IANA zone name"},
    data={**OBJECT, "description": "The options of each task (merged over a preset's)"},
    priority={**nullable(PRIORITY), "description": "null: the preset's, or normal"},
    max_attempts={**nullable(MAX_ATTEMPTS), "description": "null: the preset's, or 3"},
    misfire={"enum": ["skip", "run_once"]},
    active=BOOL,
    origin={"enum": ["code", "api"], "description": "Declared by a worker, or added here"},
    next_run_at={**nullable(TIME), "description": "The next slot; null until computed"},
    last_run_at={**nullable(TIME), "description": "The last slot fired"},
    last_task_id={**nullable(TASK_ID), "description": "The task of the last slot fired"},
    last_task_status={**nullable(STATUS_TEXT), "description": "That task's status, if it exists"},
    last_error={**nullable(TEXT), "description": "Why pgstask disabled it"},
    missing_from_code_at={**nullable(TIME), "description": "No longer declared in code since"},
    created_at=TIME,
    updated_at=TIME,
)

_PRESET = record(
    name=TEXT,
    identifier={**TEXT, "description": "The worker of its tasks"},
    action={**TEXT, "description": "The action of its tasks"},
    data={**OBJECT, "description": "The options of its tasks; a start's data is merged over"},
    priority=PRIORITY,
    max_attempts=MAX_ATTEMPTS,
    description=TEXT,
    schedules={**TEXTS, "description": "The schedules that start it"},
    created_at=TIME,
    updated_at=TIME,
)

_WORKER = record(
    identifier=TEXT,
    active=BOOL,
    settings=OBJECT,
    actions=TEXTS,
    installed_here={**BOOL, "description": "Its class imports where the API runs"},
    flow={
        **nullable(OBJECT),
        "description": "Its limits as the claim enforces them (max_running, "
        "max_running_per_key, rate_limit, fair_share; docs/limits.md); null without any",
    },
    defaults={**OBJECT, "description": "The limits its class declares, under settings"},
    optional={
        "id": INT,
        "uuid": {"type": "string", "format": "uuid"},
        "scope": TEXT,
        "class": TEXT,
        "position": INT,
        "hidden": BOOL,
        "title": TEXT,
        "description": TEXT,
        "icon": TEXT,
        "created_at": TIME,
        "updated_at": TIME,
    },
)

_PROGRESS = record(
    id=TASK_ID,
    status=STATUS_TEXT,
    progress={
        **nullable({"type": "integer", "minimum": 0, "maximum": 100}),
        "description": "null while a task runs and its live progress is unknown",
    },
    message=TEXT,
    optional={"processed": nullable(NUMBER), "total": nullable(NUMBER)},
)

_WORKER_FIGURES = record(
    identifier=TEXT,
    total_tasks=COUNT,
    completed=COUNT,
    failed=COUNT,
    success_rate=NUMBER,
    optional={
        "cancelled": COUNT,
        "error_rate": NUMBER,
        "average_duration": NUMBER,
        "max_duration": NUMBER,
        "total_execution_time": NUMBER,
        "memory_usage": COUNT,
        "max_memory": COUNT,
        "last_execution": nullable(TIME),
    },
)

_ALERT = record(
    type={"enum": list(performance.ALERT_KINDS)},
    severity={"enum": ["warning", "critical"]},
    message=TEXT,
    value=NUMBER,
    threshold=NUMBER,
    optional={"identifier": TEXT, "task_ids": {"type": "array", "items": TASK_ID}},
)

_SUMMARY = record(
    period=record(hours=NUMBER, **{"from": TIME, "to": TIME}),
    tasks=record(
        **{k: COUNT for k in ("total", "finished", "completed", "failed", "cancelled")},
        running=COUNT,
        queued=COUNT,
    ),
    performance=record(
        success_rate=NUMBER,
        error_rate=NUMBER,
        average_duration=NUMBER,
        optional={"total_execution_time": NUMBER, "average_memory": COUNT, "max_memory": COUNT},
    ),
    workers={
        "type": "object",
        "additionalProperties": record(identifier=TEXT, task_count=COUNT, success_rate=NUMBER),
    },
    errors=record(
        total_errors=COUNT,
        error_rate=NUMBER,
        common_errors={"type": "array", "items": record(message=TEXT, count=COUNT)},
    ),
)

_TIMELINE = record(
    bucket_seconds=INT,
    points={
        "type": "array",
        "items": record(
            time=TIME, completed=COUNT, failed=COUNT, cancelled=COUNT, average_duration=NUMBER
        ),
    },
)

_STATS = record(
    **{name: COUNT for name in [*STATUS_TEXTS, "total", "total_workers", "active_workers"]},
    waiting_for_worker={
        "type": "object",
        "description": "Pending tasks per worker that no daemon registered, or that is inactive",
        "additionalProperties": record(count=COUNT, registered=BOOL),
    },
)

_CACHE_STATS = record(
    hits=COUNT,
    misses=COUNT,
    evictions=COUNT,
    hit_rate=NUMBER,
    cache_size=COUNT,
    memory_usage={**COUNT, "description": "Bytes of the cached rows as JSON"},
    ttl_seconds=NUMBER,
)

_RELATED = record(
    id=TASK_ID,
    identifier=TEXT,
    action=TEXT,
    status={"enum": [int(s) for s in Status]},
    status_text=STATUS_TEXT,
)

_EDGE = record(
    task_id={**TASK_ID, "description": "The task that depends on parent_id"},
    parent_id=TASK_ID,
)

SCHEMAS: dict[str, Schema] = {
    "Error": {
        **record(
            success={"const": False},
            code={"type": "integer", "minimum": 400, "maximum": 599},
            error={**TEXT, "description": "A short title"},
            message={**TEXT, "description": "What was wrong and what to do"},
        ),
        "examples": [
            {
                "success": False,
                "code": 404,
                "error": "Worker not found",
                "message": "Worker not found or inactive: product",
            }
        ],
    },
    "Task": {**_TASK, "description": "Every column of s_tasks, and status_text"},
    "RelatedTask": {**_RELATED, "description": "A parent or child of a task"},
    "Edge": {**_EDGE, "description": "A dependency: task_id waits for parent_id"},
    "Progress": _PROGRESS,
    "LogRecord": record(task_id=TASK_ID, level=TEXT, message=TEXT, context=OBJECT, created_at=TIME),
    "Worker": {**_WORKER, "description": "A row of s_workers"},
    "Schedule": {**_SCHEDULE, "description": "A row of s_schedules"},
    "Preset": {**_PRESET, "description": "A row of s_presets"},
    "StoredFile": success(
        code={"const": 200},
        message=TEXT,
        result={**TEXT, "description": "The stored file's name"},
        original_filename=TEXT,
        file_size=COUNT,
        file_id=INT,
    ),
    "WorkerFigures": _WORKER_FIGURES,
    "Alert": _ALERT,
    "PerformanceSummary": _SUMMARY,
    "Timeline": _TIMELINE,
    "Stats": _STATS,
    "CacheStats": _CACHE_STATS,
}

COMPONENTS: Schema = {
    "schemas": SCHEMAS,
    "securitySchemes": {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A token of PGSTASK_API_TOKENS (`pgstask tokens create`)",
        }
    },
}
