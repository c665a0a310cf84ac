"""The ``Client``'s presets: listing them, adding or replacing one, removing one, and starting
one (a task of its worker's action, the given data merged over the preset's). What a valid
preset is belongs to ``presets.py``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pgstask import presets, queries, task_spec
from pgstask._client_base import ClientBase, registered_action_problem
from pgstask.db import Conn
from pgstask.errors import InvalidPresetError, PresetNotFoundError
from pgstask.task import Task

Row = dict[str, Any]


class ClientPresets(ClientBase):
    """The preset methods of ``Client``."""

    def presets(self) -> list[Row]:
        """Every preset's row (``s_presets``), by name: ``name``, ``identifier``, ``action``,
        ``data``, ``priority``, ``max_attempts``, ``description``, ``created_at``,
        ``updated_at``, and ``schedules``: the names of the schedules that start it."""
        with self.connection() as c:
            return queries.preset_list(c)

    def preset(self, name: str) -> Row:
        """One preset's row, as ``presets`` gives it; ``PresetNotFoundError`` if there is none."""
        with self.connection() as c:
            return _read(c, _lookup(name))

    def add_preset(
        self,
        name: str,
        identifier: str,
        action: str,
        data: Mapping[str, Any] | None = None,
        *,
        priority: str = task_spec.DEFAULT_PRIORITY,
        max_attempts: int = task_spec.DEFAULT_MAX_ATTEMPTS,
        description: str = "",
    ) -> Row:
        """Add preset ``name``, or replace the fields of the one of that name: a task of worker
        ``identifier``'s ``action`` with ``data``, ``priority`` and ``max_attempts``. Its row,
        with ``inserted``. Tasks started from it before keep what they were given; schedules
        that name it use the new fields from their next slot.

        ``InvalidPresetError`` for a bad field, and for an action the worker does not have
        (when this process defines the worker, or its registered row lists its actions)."""
        fields = {
            "identifier": identifier,
            "action": action,
            "data": data,
            "priority": priority,
            "max_attempts": max_attempts,
            "description": description,
        }
        preset = presets.check(name, fields)
        with self.connection() as c:
            problem = registered_action_problem(c, preset.identifier, preset.action)
            if problem:
                raise InvalidPresetError(f"preset {name!r}: {problem}")
            written = queries.preset_upsert(c, **preset.row())
            return {**_read(c, preset.name), "inserted": bool(written["inserted"])}

    def remove_preset(self, name: str) -> list[str]:
        """Delete preset ``name``; the tasks started from it stay. Returns the names of the
        schedules that still start it: each is disabled at its next slot, with the reason in
        its ``last_error``, until it is given a preset again and resumed."""
        with self.connection() as c:
            schedules = queries.preset_delete(c, name=_lookup(name))
        if schedules is None:
            raise PresetNotFoundError(name)
        return schedules

    def create_from_preset(
        self,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        priority: str | None = None,
        start_at: dt.datetime | None = None,
        max_attempts: int | None = None,
        user_id: int | None = None,
        dedupe_key: str | None = None,
        conn: Conn | None = None,
    ) -> Task:
        """Enqueue one task of preset ``name``: its worker's action, ``data`` merged over the
        preset's data (a key given replaces the preset's key whole), the preset's priority and
        ``max_attempts`` unless given here. As ``create``: with ``conn`` it is created in the
        caller's transaction; with ``dedupe_key``, while a task with that key is incomplete that
        task is returned instead. ``PresetNotFoundError`` when there is no such preset,
        ``InvalidTaskError`` for a bad field (or merged data the task cannot hold)."""
        preset_name = _lookup(name)
        start = presets.check_start(
            data,
            priority=priority,
            start_at=start_at,
            max_attempts=max_attempts,
            user_id=user_id,
            dedupe_key=dedupe_key,
        )
        with self.connection(conn, autocommit=True) as c:
            created = queries.preset_enqueue(c, name=preset_name, **start._asdict())
            if created is not None:
                return created
            if queries.preset_get(c, name=preset_name) is None:
                raise PresetNotFoundError(preset_name)
            if dedupe_key is not None:
                existing = queries.task_get_by_dedupe_key(c, dedupe_key=dedupe_key)
                if existing is not None:
                    return existing
        # The task that held the key finished between the insert and the read: once more.
        return self.create_from_preset(
            name,
            data,
            priority=priority,
            start_at=start_at,
            max_attempts=max_attempts,
            user_id=user_id,
            dedupe_key=dedupe_key,
            conn=conn,
        )


def _lookup(name: Any) -> str:
    """``name`` to look up; ``PresetNotFoundError`` for one no preset can have (the table could
    not even compare it)."""
    if presets.name_problem(name, "preset"):
        raise PresetNotFoundError(name if isinstance(name, str) else repr(name))
    return str(name)


def _read(conn: Conn, name: str) -> Row:
    """Preset ``name``'s row; ``PresetNotFoundError`` if none."""
    row = queries.preset_get(conn, name=name)
    if row is None:
        raise PresetNotFoundError(name)
    return row
