"""What the HTTP API takes, for the OpenAPI document: query parameters and request bodies.

The query parameters of the task endpoints are described in the order of the routes' own
allowlists (``tasks.CONTROL_FIELDS``, ``LIST_FILTERS``, ``LOG_FILTERS``), and so are the task's
fields in the run and create bodies: a name added there without a description here fails at
import, so the document cannot leave one out (nor keep one the route no longer takes). The request
bodies follow what the handlers read with ``bodies.py``; unknown fields are a 422 where the
handler refuses them (``closed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pgstask import workflow
from pgstask.http import bodies
from pgstask.http._openapi_schemas import (
    BOOL,
    CONCURRENCY_KEY,
    CONTROL,
    DEDUPE_KEY,
    FLAG,
    MAX_ATTEMPTS,
    NON_BLANK,
    OBJECT,
    PRIORITY,
    START_AT,
    STATUS_TEXTS,
    TASK_ID,
    TEXT,
    THROTTLE,
    WHOLE_TEXT,
    Schema,
    nullable,
    record,
)
from pgstask.http.routes import performance, tasks, workflows
from pgstask.task import Status


def query(name: str, schema: Schema, description: str, *, empty: bool = True) -> Schema:
    """A query parameter; ``empty``: an empty value (``?limit=``) counts as not given."""
    out: Schema = {"name": name, "in": "query", "required": False, "description": description}
    if empty:
        out["allowEmptyValue"] = True
    return {**out, "schema": schema}


def json_body(schema: Schema, *, required: bool, example: Any = None) -> Schema:
    """A JSON request body of ``schema``, with ``example`` shown in the document."""
    media: Schema = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def closed(schema: Schema) -> Schema:
    """``schema`` without properties beyond its own (unknown fields are a 422)."""
    return {**schema, "additionalProperties": False}


def _in_order(names: Iterable[str], described: Mapping[str, Schema]) -> tuple[Schema, ...]:
    """The parameters ``names`` of a route's allowlist, in its order; a KeyError names one
    that has no description."""
    return tuple(described[name] for name in names)


DATE_TIME: Schema = {"type": "string", "format": "date-time"}
HOURS = query(
    "hours",
    {"type": "number", "exclusiveMinimum": 0, "maximum": performance.MAX_HOURS, "default": 24},
    "The window: the last this many hours",
)
ID_FILTER = query("identifier", TEXT, "Only this worker")
ACTIVE_ONLY = query("active_only", FLAG, "Only active workers")
BUCKET = query(
    "bucket",
    {"type": "integer", "minimum": 10, "maximum": 86400},
    "Seconds per bucket (default: a 48th of the window, at least 60)",
)

#: The run endpoint's query string: the task's fields beside its options.
RUN_QUERY = _in_order(
    tasks.CONTROL_FIELDS,
    {
        "priority": query("priority", PRIORITY, "As the body's priority", empty=False),
        "start_at": query("start_at", DATE_TIME, "As the body's start_at"),
        "max_attempts": query("max_attempts", MAX_ATTEMPTS, "As the body's max_attempts"),
        "dedupe_key": query("dedupe_key", DEDUPE_KEY, "As the body's dedupe_key", empty=False),
        "concurrency_key": query(
            "concurrency_key", CONCURRENCY_KEY, "As the body's concurrency_key", empty=False
        ),
        "throttle": query("throttle", THROTTLE, "As the body's throttle"),
        "replace": query("replace", FLAG, "As the body's replace"),
        "depends_on": query(
            "depends_on",
            {"type": "string", "pattern": bodies.ID_LIST_PATTERN, "examples": ["1,2"]},
            "As the body's depends_on: task ids separated by commas",
        ),
        "on_parent_failure": query(
            "on_parent_failure",
            {"enum": list(workflow.PARENT_FAILURE_POLICIES)},
            "As the body's on_parent_failure",
            empty=False,
        ),
    },
)

_STATUS: Schema = {"enum": [*STATUS_TEXTS, *(str(int(s)) for s in Status)]}
_PAGE_SIZE: Schema = {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}

#: The task list's filters and page.
LIST_QUERY = _in_order(
    tasks.LIST_FILTERS,
    {
        "status": query("status", _STATUS, "A status, by name or code"),
        "identifier": ID_FILTER,
        "action": query("action", TEXT, "Only this action"),
        "priority": query("priority", PRIORITY, "Only this priority"),
        "concurrency_key": query("concurrency_key", TEXT, "Only tasks with this concurrency key"),
        "created_from": query("created_from", DATE_TIME, "Created at or after"),
        "created_to": query("created_to", DATE_TIME, "Created before"),
        "before_id": query(
            "before_id", TASK_ID, "Tasks with a smaller id (next_before_id of a page)"
        ),
        "limit": query("limit", _PAGE_SIZE, "Page size"),
    },
)

#: A task's log records: how many, and which.
LOGS_QUERY = _in_order(
    tasks.LOG_FILTERS,
    {
        "limit": query(
            "limit", {"type": "integer", "minimum": 1, "maximum": 100_000}, "The last N records"
        ),
        "errors_only": query("errors_only", FLAG, "Only records of level error or above"),
    },
)
#: The task's fields beside its options, as the run and create endpoints take them in a body:
#: exactly the route's own (a KeyError names one without a schema).
_CONTROL: Schema = {name: CONTROL[name] for name in (*tasks.CONTROL_FIELDS, "notify")}


def run_body() -> Schema:
    """The run endpoint's body: the options, bare or in an envelope with the task's fields."""
    envelope = closed(record(options=nullable(OBJECT), optional=_CONTROL))
    plain = {"type": "object", "not": {"required": ["options"]}}
    return json_body(
        {
            "description": "The task's options: the `options` key if there is one (then the "
            "body may also carry priority, start_at, max_attempts, dedupe_key, "
            "concurrency_key, throttle, replace, depends_on, on_parent_failure and notify), else "
            "the whole body. An empty body is no options.",
            "anyOf": [envelope, plain],
        },
        required=False,
        example={"options": {"file": "a.csv"}, "priority": "high"},
    )


def create_body() -> Schema:
    """The body of sTask's create endpoint: worker, action, options and the task's fields."""
    name = {**NON_BLANK, "maxLength": 255}
    data = {**nullable(OBJECT), "description": "The task's options"}
    return json_body(
        closed(record(identifier=name, action=name, optional={"data": data, **_CONTROL})),
        required=True,
        example={"identifier": "demo", "action": "count", "data": {"to": 3}},
    )


def workflow_body() -> Schema:
    """The tasks of a workflow: each a create body's fields (without throttle and replace),
    with its ``ref`` and its ``depends_on`` (refs and ids)."""
    name = {**NON_BLANK, "maxLength": 255}
    parent = {
        "anyOf": [{**NON_BLANK, "maxLength": 255, "description": "A ref of another item"}, TASK_ID]
    }
    optional: dict[str, Schema] = {
        "data": {**nullable(OBJECT), "description": "The task's options"},
        **{k: CONTROL[k] for k in tasks.CONTROL_FIELDS if k not in ("throttle", "replace")},
        "ref": {
            **nullable({**NON_BLANK, "maxLength": 255}),
            "description": "A name for the task, unique in the call, for other items' depends_on",
        },
        "depends_on": {
            **nullable({"type": "array", "items": parent, "maxItems": workflow.MAX_PARENTS}),
            "description": "The refs of other items and the ids of existing tasks it waits "
            "for, in any order; no cycle",
        },
    }
    item = closed(record(identifier=name, action=name, optional=optional))
    assert set(item["properties"]) == set(workflows.ITEM_FIELDS)
    tasks_list = {"type": "array", "items": item, "minItems": 1, "maxItems": workflow.MAX_TASKS}
    return json_body(
        closed(record(tasks=tasks_list)),
        required=True,
        example={
            "tasks": [
                {"ref": "a", "identifier": "demo", "action": "count", "data": {"to": 3}},
                {"ref": "b", "identifier": "demo", "action": "count", "depends_on": ["a"]},
                {"ref": "c", "identifier": "demo", "action": "count", "depends_on": ["a"]},
                {
                    "ref": "d",
                    "identifier": "demo",
                    "action": "count",
                    "depends_on": ["b", "c"],
                    "on_parent_failure": "run",
                },
            ]
        },
    )


def identifier_body() -> Schema:
    """A body naming one worker (activate, deactivate)."""
    return json_body(
        closed(record(identifier=NON_BLANK)), required=True, example={"identifier": "demo"}
    )


def schedule_body() -> Schema:
    """A schedule to add or replace: its name, its worker and its fields (``schedules.check``'s
    rules; null is the default), or for one that starts a preset the preset's name in place of
    the worker and the action."""
    name = {**NON_BLANK, "maxLength": 200}
    optional: dict[str, Schema] = {
        "identifier": {**nullable(name), "description": "The worker (not with a preset)"},
        "action": {**nullable(name), "description": "An action of the worker (not with a preset)"},
        "preset": {**nullable(name), "description": "A preset to start, instead of an action"},
        "timezone": {**nullable(TEXT), "default": "UTC", "description": "An IANA zone name"},
        "data": {**nullable(OBJECT), "description": "The options of each task"},
        "priority": {**nullable(PRIORITY), "description": "Default: normal, or the preset's"},
        "max_attempts": {**nullable(MAX_ATTEMPTS), "description": "Default: 3, or the preset's"},
        "misfire": {
            **nullable({"enum": ["skip", "run_once"]}),
            "default": "skip",
            "description": "What a slot missed while nothing ran becomes",
        },
        "active": {**nullable(BOOL), "default": True, "description": "false: paused"},
    }
    schema = closed(
        record(
            name=name,
            cron={**NON_BLANK, "maxLength": 200, "description": "A cron expression"},
            optional=optional,
        )
    )
    schema["anyOf"] = [{"required": ["identifier", "action"]}, {"required": ["preset"]}]
    return json_body(
        schema,
        required=True,
        example={
            "name": "nightly-count",
            "identifier": "demo",
            "action": "count",
            "cron": "0 3 * * *",
            "timezone": "Europe/Kyiv",
            "data": {"to": 3},
        },
    )


def preset_body(*, named: bool) -> Schema:
    """A preset to add or replace (``presets.check``'s rules; null is the default); ``named``:
    the body has its name (``POST /stask/presets``), else the path does."""
    name = {**NON_BLANK, "maxLength": 200}
    task_name = {**NON_BLANK, "maxLength": 255}
    optional: dict[str, Schema] = {
        "data": {**nullable(OBJECT), "description": "The options of its tasks"},
        "priority": CONTROL["priority"],
        "max_attempts": {**nullable(MAX_ATTEMPTS), "default": 3},
        "description": {**nullable({**TEXT, "maxLength": 1000}), "default": ""},
    }
    fields = {"name": name} if named else {}
    example = {"identifier": "demo", "action": "count", "data": {"to": 3}, "priority": "high"}
    return json_body(
        closed(record(**fields, identifier=task_name, action=task_name, optional=optional)),
        required=True,
        example={"name": "count-to-3", **example} if named else example,
    )


def start_body() -> Schema:
    """What a start of a preset is given: the data merged over the preset's, and the task's
    fields that replace the preset's; all optional, null or absent the preset's."""
    optional: dict[str, Schema] = {
        "data": {
            **nullable(OBJECT),
            "description": "Merged over the preset's data: a key given replaces the preset's",
        },
        "priority": {**nullable(PRIORITY), "description": "Default: the preset's"},
        "start_at": START_AT,
        "max_attempts": {
            "anyOf": [MAX_ATTEMPTS, WHOLE_TEXT, {"enum": ["", None]}],
            "description": "Default: the preset's",
        },
        "dedupe_key": CONTROL["dedupe_key"],
    }
    return json_body(
        closed(record(optional=optional)),
        required=False,
        example={"data": {"to": 5}, "priority": "low"},
    )


def settings_body() -> Schema:
    """The settings to merge into a worker's stored ones."""
    return json_body(
        closed(record(settings=OBJECT)),
        required=True,
        example={"settings": {"max_file_size": 1048576}},
    )


def clean_body() -> Schema:
    """The age past which finished tasks and log records are deleted, as ``bodies.days``
    reads it."""
    days = {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e6},
            {"enum": ["", None]},
        ],
        "default": 30,
    }
    return json_body(closed(record(optional={"days": days})), required=False, example={"days": 7})


def cache_clear_body() -> Schema:
    """Which worker to forget; none or null is all of them."""
    return json_body(closed(record(optional={"identifier": nullable(NON_BLANK)})), required=False)


def upload_body(*, chunks: bool) -> Schema:
    """A multipart upload of one file; with ``chunks``, also sTask's chunked form."""
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
