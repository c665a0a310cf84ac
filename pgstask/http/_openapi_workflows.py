"""What the workflow endpoints take and answer, for the OpenAPI document: one ``Operation`` per
handler and method, as ``_openapi_presets.py`` has them for the preset endpoints."""

from __future__ import annotations

from pgstask.http._openapi_inputs import workflow_body
from pgstask.http._openapi_operations import Key, Operation
from pgstask.http._openapi_schemas import (
    BOOL,
    COUNT,
    TASK_ID,
    TEXT,
    json_answer,
    ref,
    success,
)
from pgstask.http.routes import workflows


def _operations() -> dict[Key, Operation]:
    """Creating a workflow, and reading a task's."""
    task_list = {"type": "array", "items": ref("Task")}
    created = success(
        message=TEXT,
        tasks={**task_list, "description": "The created tasks, in the order of the items"},
        refs={
            "type": "object",
            "additionalProperties": TASK_ID,
            "description": "The id of each item's ref",
        },
    )
    found = success(
        id=TASK_ID,
        tasks={**task_list, "description": "Lowest ids first (the roots come first)"},
        edges={"type": "array", "items": ref("Edge")},
        count=COUNT,
        truncated={**BOOL, "description": "The workflow has more tasks than one answer holds"},
    )
    return {
        (workflows.create_workflow, "POST"): Operation(
            "Create tasks that depend on one another, in one transaction",
            "tasks",
            {201: json_answer("Created", created)},
            frozenset({422}),
            body=workflow_body(),
            description="Each item may name a ref and depend on the refs of other items and "
            "on existing tasks' ids, in any order. All are created or none: a cycle, a ref no "
            "item has, a missing parent or a bad field is a 422 naming the item (`task #2: "
            "…`). An item whose dedupe_key an unfinished task holds is not created: that task "
            "stands in for it. docs/workflows.md.",
        ),
        (workflows.show_workflow, "GET"): Operation(
            "The workflow a task belongs to: its tasks and their dependencies",
            "tasks",
            {200: json_answer("The workflow", found)},
            description="Every task joined to this one by dependencies, in either direction "
            "(itself included; a task without any is a workflow of one).",
        ),
    }


#: The workflow endpoints' descriptions.
WORKFLOW_OPERATIONS: dict[Key, Operation] = _operations()
