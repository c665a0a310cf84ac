"""``AsyncClient``'s schedules, as ``_client_schedules`` is ``Client``'s: listing and reading
them, adding or replacing one (origin ``api``), pausing, resuming and removing one, and running
one now. The checks are the sync client's (``_client_schedules.checked``, the registered
worker's actions, ``schedules.check_preset_row``, ``check_not_declared``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pgstask import schedules
from pgstask._async_base import AsyncClientBase
from pgstask._client_base import action_problem
from pgstask._client_schedules import _lookup, _shown, check_not_declared, checked
from pgstask.db import AsyncConn
from pgstask.errors import InvalidScheduleError, PresetNotFoundError, ScheduleNotFoundError
from pgstask.queries import aio
from pgstask.task import Task

Row = dict[str, Any]


class AsyncClientSchedules(AsyncClientBase):
    """The schedule methods of ``AsyncClient``."""

    async def schedules(self) -> list[Row]:
        """Every schedule's row, by name: ``Client.schedules``."""
        async with self.connection() as c:
            return [_shown(r) for r in await aio.schedule_list(c)]

    async def schedule(self, name: str) -> Row:
        """One schedule's row: ``Client.schedule`` (``ScheduleNotFoundError`` if none)."""
        async with self.connection() as c:
            return await _read(c, _lookup(name))

    async def add_schedule(
        self, name: str, identifier: str | None, fields: Mapping[str, Any]
    ) -> Row:
        """Add schedule ``name`` or replace the one added so before: ``Client.add_schedule``,
        its checks and answer (its row, with ``inserted``)."""
        schedule = checked(name, identifier, fields)
        async with self.connection() as c:
            if schedule.preset is None:
                assert schedule.identifier is not None and schedule.action is not None
                worker = await aio.worker_get(c, identifier=schedule.identifier)
                problem = action_problem(worker, schedule.identifier, schedule.action)
                if problem:
                    raise InvalidScheduleError(f"schedule {schedule.name!r}: {problem}")
            else:
                found = await aio.preset_get(c, name=schedule.preset)
                schedules.check_preset_row(schedule, found)
            check_not_declared(name, await aio.schedule_get(c, name=name))
            written = await aio.schedule_upsert(c, **schedule.row(origin="api"))
            inserted = written is not None and bool(written["inserted"])
            row = await _read(c, name)
            if "active" in fields and row["active"] != schedule.active:
                await aio.schedule_set_active(c, name=name, active=schedule.active)
                row = await _read(c, name)
            return {**row, "inserted": inserted}

    async def pause_schedule(self, name: str) -> Row:
        """Stop schedule ``name`` firing until it is resumed: ``Client.pause_schedule``."""
        return await self._set_schedule_active(name, False)

    async def resume_schedule(self, name: str) -> Row:
        """Let schedule ``name`` fire again from its next slot: ``Client.resume_schedule``."""
        return await self._set_schedule_active(name, True)

    async def _set_schedule_active(self, name: str, active: bool) -> Row:
        async with self.connection() as c:
            if await aio.schedule_set_active(c, name=_lookup(name), active=active) is None:
                raise ScheduleNotFoundError(name)
            return await _read(c, name)

    async def remove_schedule(self, name: str) -> None:
        """Delete schedule ``name`` and its record of fired slots: ``Client.remove_schedule``."""
        async with self.connection() as c:
            if not await aio.schedule_delete(c, name=_lookup(name)):
                raise ScheduleNotFoundError(name)

    async def run_schedule(self, name: str) -> Task:
        """Enqueue one task of schedule ``name`` now, its slots untouched:
        ``Client.run_schedule``."""
        async with self.connection() as c:
            task = await aio.schedule_run_now(c, name=_lookup(name))
            if task is None:
                row = await _read(c, name)  # ScheduleNotFoundError if there is none
                raise PresetNotFoundError(row["preset"], schedule=name)
        return task


async def _read(conn: AsyncConn, name: str) -> Row:
    """Schedule ``name``'s row as the client gives it; ``ScheduleNotFoundError`` if none."""
    row = await aio.schedule_get(conn, name=name)
    if row is None:
        raise ScheduleNotFoundError(name)
    return _shown(row)
