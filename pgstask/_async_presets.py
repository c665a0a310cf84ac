"""``AsyncClient``'s presets, as ``_client_presets`` is ``Client``'s: listing and reading
them, adding or replacing one, removing one, and starting one. The checks are the sync
client's (``presets.check``, ``presets.check_start``, the registered worker's actions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pgstask import presets, task_spec
from pgstask._async_base import AsyncClientBase
from pgstask._client_base import action_problem
from pgstask._client_presets import _lookup
from pgstask.db import AsyncConn
from pgstask.errors import InvalidPresetError, PresetNotFoundError
from pgstask.queries import aio
from pgstask.task import Task

Row = dict[str, Any]


class AsyncClientPresets(AsyncClientBase):
    """The preset methods of ``AsyncClient``."""

    async def presets(self) -> list[Row]:
        """Every preset's row, by name: ``Client.presets``."""
        async with self.connection() as c:
            return await aio.preset_list(c)

    async def preset(self, name: str) -> Row:
        """One preset's row: ``Client.preset`` (``PresetNotFoundError`` if there is none)."""
        async with self.connection() as c:
            return await _read(c, _lookup(name))

    async def add_preset(
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
        """Add preset ``name`` or replace its fields: ``Client.add_preset``, its checks and
        answer (its row, with ``inserted``)."""
        fields = {
            "identifier": identifier,
            "action": action,
            "data": data,
            "priority": priority,
            "max_attempts": max_attempts,
            "description": description,
        }
        preset = presets.check(name, fields)
        async with self.connection() as c:
            worker = await aio.worker_get(c, identifier=preset.identifier)
            problem = action_problem(worker, preset.identifier, preset.action)
            if problem:
                raise InvalidPresetError(f"preset {name!r}: {problem}")
            written = await aio.preset_upsert(c, **preset.row())
            return {**await _read(c, preset.name), "inserted": bool(written["inserted"])}

    async def remove_preset(self, name: str) -> list[str]:
        """Delete preset ``name``: ``Client.remove_preset`` (the schedules that still start
        it)."""
        async with self.connection() as c:
            schedules = await aio.preset_delete(c, name=_lookup(name))
        if schedules is None:
            raise PresetNotFoundError(name)
        return schedules

    async def create_from_preset(
        self,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        priority: str | None = None,
        start_at: dt.datetime | None = None,
        max_attempts: int | None = None,
        user_id: int | None = None,
        dedupe_key: str | None = None,
        conn: AsyncConn | None = None,
    ) -> Task:
        """Enqueue one task of preset ``name``, ``data`` merged over the preset's:
        ``Client.create_from_preset``, its arguments, rules and errors; with ``conn`` in the
        caller's transaction."""
        preset_name = _lookup(name)
        start = presets.check_start(
            data,
            priority=priority,
            start_at=start_at,
            max_attempts=max_attempts,
            user_id=user_id,
            dedupe_key=dedupe_key,
        )
        while True:
            async with self.connection(conn, autocommit=True) as c:
                created = await aio.preset_enqueue(c, name=preset_name, **start._asdict())
                if created is not None:
                    return created
                if await aio.preset_get(c, name=preset_name) is None:
                    raise PresetNotFoundError(preset_name)
                if dedupe_key is not None:
                    existing = await aio.task_get_by_dedupe_key(c, dedupe_key=dedupe_key)
                    if existing is not None:
                        return existing
            # The task that held the key finished between the insert and the read: once more.


async def _read(conn: AsyncConn, name: str) -> Row:
    """Preset ``name``'s row; ``PresetNotFoundError`` if none."""
    row = await aio.preset_get(conn, name=name)
    if row is None:
        raise PresetNotFoundError(name)
    return row
