"""What the preset endpoints take and answer, for the OpenAPI document: one ``Operation`` per
handler and method, as ``_openapi_operations.py`` has them for the other endpoints (kept apart
so that neither module grows past the size one reader can hold)."""

from __future__ import annotations

from pgstask.http._openapi_inputs import preset_body, start_body
from pgstask.http._openapi_operations import LOCATION, Key, Operation
from pgstask.http._openapi_schemas import COUNT, TEXT, TEXTS, json_answer, ref, success
from pgstask.http.routes import presets


def _operations() -> dict[Key, Operation]:
    location = {"description": "The preset's path", "schema": TEXT}
    written = success(message=TEXT, preset=ref("Preset"))
    answers = {
        200: json_answer("Replaced", written, Location=location),
        201: json_answer("Added", written, Location=location),
    }
    checked = (
        "422 for a bad field (the message names it), or an action the worker does not have "
        "(when its actions are known). Tasks started before keep what they were given; "
        "schedules that start it take the new fields from their next slot."
    )
    return {
        (presets.list_presets, "GET"): Operation(
            "Presets, by name",
            "presets",
            {
                200: json_answer(
                    "The presets",
                    success(presets={"type": "array", "items": ref("Preset")}, count=COUNT),
                )
            },
            frozenset({422}),
            description="With the schedules that start each one.",
        ),
        (presets.add_preset, "POST"): Operation(
            "Add a preset, or replace the one of that name",
            "presets",
            answers,
            frozenset({422}),
            body=preset_body(named=True),
            description=checked,
        ),
        (presets.put_preset, "PUT"): Operation(
            "Add or replace the preset of this name",
            "presets",
            answers,
            frozenset({404, 422}),
            body=preset_body(named=False),
            description=f"{checked} 404: a path no preset's name can match (a control character).",
        ),
        (presets.show_preset, "GET"): Operation(
            "A preset",
            "presets",
            {200: json_answer("The preset", success(preset=ref("Preset")))},
            frozenset({404}),
        ),
        (presets.remove_preset, "DELETE"): Operation(
            "Remove a preset",
            "presets",
            {200: json_answer("Removed", success(message=TEXT, schedules=TEXTS))},
            frozenset({404}),
            description="Its tasks stay. `schedules` names the schedules that still start it: "
            "each is disabled at its next slot, until it is given a preset again and resumed.",
        ),
        (presets.start_preset, "POST"): Operation(
            "Start a preset: one task of it",
            "presets",
            {
                201: json_answer(
                    "Created", success(message=TEXT, task=ref("Task")), Location=LOCATION
                )
            },
            frozenset({404, 422}),
            body=start_body(),
            description="The task has the preset's worker and action, `data` merged over the "
            "preset's data (a key given replaces the preset's whole), and the preset's priority "
            "and max_attempts unless given. An empty body: the preset as it is.",
        ),
    }


#: The preset endpoints' descriptions.
PRESET_OPERATIONS: dict[Key, Operation] = _operations()
