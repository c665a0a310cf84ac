"""Presets: what a valid one is, and what a task started from one may be given.

A preset is a named, stored task template (``s_presets``): a worker's action, the data (the
action's options), a priority, ``max_attempts`` and a description. Starting one
(``Client.create_from_preset``, ``pgstask presets start``, ``POST /stask/presets/{name}/start``,
``pgstask_enqueue_preset()`` in SQL, or a schedule that names it) inserts one task of its worker's
action with the given data shallow-merged over the preset's (``jsonb ||``: a key given replaces
the preset's key whole), and the preset's priority and ``max_attempts`` unless others are given.

``check`` turns a preset's fields into a ``Preset`` or raises ``InvalidPresetError`` naming the
preset and the field; ``check_start`` checks what a start is given beside the name
(``InvalidTaskError``, as for ``Client.create``). A preset's name follows the rule of a
schedule's name (``name_problem``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pgstask import task_spec
from pgstask.db import text_problem
from pgstask.errors import InvalidPresetError, InvalidTaskError, UnknownActionError
from pgstask.workers import known

FIELDS = ("identifier", "action", "data", "priority", "max_attempts", "description")
#: Characters of a preset's name (and of a schedule's).
MAX_NAME = 200
MAX_DESCRIPTION = 1000
_NAME = re.compile(r"[^\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class Preset:
    """A checked preset, as ``s_presets`` stores it."""

    name: str
    identifier: str
    action: str
    data: dict[str, Any] = field(default_factory=dict)
    priority: str = task_spec.DEFAULT_PRIORITY
    max_attempts: int = task_spec.DEFAULT_MAX_ATTEMPTS
    description: str = ""

    def row(self) -> dict[str, Any]:
        """The keyword arguments of ``queries.preset_upsert``."""
        return {name: getattr(self, name) for name in ("name", *FIELDS)}


def check(name: Any, fields: Mapping[str, Any]) -> Preset:
    """Preset ``name`` from its ``fields`` (``identifier`` and ``action`` required; ``data``,
    ``priority``, ``max_attempts`` and ``description`` optional, None meaning the default);
    ``InvalidPresetError`` naming the preset and what is wrong. An action that the worker's
    classes defined in this process do not have is refused, as ``Client.create`` refuses it."""
    check_name(name)
    where = f"preset {name!r}"
    if not isinstance(fields, Mapping):
        raise InvalidPresetError(f"{where}: its fields are a mapping such as {{'action': …}}")
    unknown = sorted(str(k) for k in fields if k not in FIELDS)
    if unknown:
        raise InvalidPresetError(
            f"{where}: unknown field(s) {', '.join(unknown)}; use {', '.join(FIELDS)}"
        )
    for required in ("identifier", "action"):
        if fields.get(required) is None:
            raise InvalidPresetError(f"{where}: {required} is required")
    identifier, action = fields["identifier"], fields["action"]
    try:
        task_spec.check_name("identifier", identifier)
        task_spec.check_name("action", action)
        known.check_action(identifier, action)
        data = _data(fields.get("data"))
        priority = fields.get("priority")
        max_attempts = fields.get("max_attempts")
        preset = Preset(
            name,
            identifier,
            action,
            data,
            task_spec.DEFAULT_PRIORITY if priority is None else task_spec.check_priority(priority),
            task_spec.DEFAULT_MAX_ATTEMPTS
            if max_attempts is None
            else task_spec.check_max_attempts(max_attempts),
            _description(fields.get("description")),
        )
    except (InvalidTaskError, UnknownActionError) as exc:
        raise InvalidPresetError(f"{where}: {exc}") from None
    return preset


def _data(value: Any) -> dict[str, Any]:
    """A preset's data: a JSON object a task's ``meta`` can hold (None: ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidTaskError(f"data must be a JSON object, not {value!r}")
    data = dict(value)
    task_spec.data_json(data)
    return data


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidTaskError(f"description must be text, not {value!r}")
    if len(value) > MAX_DESCRIPTION:
        raise InvalidTaskError(f"description is longer than {MAX_DESCRIPTION} characters")
    task_spec.check_storable("description", value)
    return value


def check_name(name: Any) -> str:
    """A preset's name (``name_problem``'s rule); ``InvalidPresetError`` otherwise."""
    problem = name_problem(name, "preset")
    if problem:
        raise InvalidPresetError(problem)
    return str(name)


def name_problem(name: Any, kind: str) -> str | None:
    """Why ``name`` cannot name a ``kind`` (``preset``, ``schedule``), or None: a name is
    printable text without blanks around it, up to ``MAX_NAME`` characters, that PostgreSQL
    can store."""
    if not isinstance(name, str) or not name or name != name.strip():
        return f"a {kind}'s name is non-empty text without blanks around it, not {name!r}"
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        return f"{kind} name {name[:50]!r}: at most {MAX_NAME} characters, no control characters"
    problem = text_problem(name)
    return f"a {kind}'s name {problem.removeprefix('it ')}" if problem else None


class Start(NamedTuple):
    """What a task started from a preset is given beside the preset, checked; None is "the
    preset's" (or, for ``start_at``, now)."""

    #: The data merged over the preset's, as JSON text (an object).
    data: str
    priority: str | None
    start_at: dt.datetime | None
    max_attempts: int | None
    user_id: int | None
    dedupe_key: str | None


def check_start(
    data: Any = None,
    *,
    priority: Any = None,
    start_at: Any = None,
    max_attempts: Any = None,
    user_id: Any = None,
    dedupe_key: Any = None,
) -> Start:
    """The fields a start of a preset is given, by ``task_spec``'s rules (``InvalidTaskError``
    naming the first problem, as ``Client.create`` does)."""
    if data is not None and not isinstance(data, Mapping):
        raise InvalidTaskError(f"data must be a JSON object (a dict), not {type(data).__name__}")
    text = task_spec.data_json({} if data is None else dict(data))
    if priority is not None:
        task_spec.check_priority(priority)
    if start_at is not None:
        task_spec.check_start_at(start_at)
    if max_attempts is not None:
        task_spec.check_max_attempts(max_attempts)
    if user_id is not None:
        task_spec.check_user_id(user_id)
    if dedupe_key is not None:
        task_spec.check_dedupe_key(dedupe_key)
    return Start(text, priority, start_at, max_attempts, user_id, dedupe_key)
