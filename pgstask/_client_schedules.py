"""The ``Client``'s schedules: listing them, adding or replacing one (origin ``api``), pausing,
resuming and removing one, and running one now. What a valid schedule is belongs to
``schedules.py``; firing its slots to the scheduler (``runtime/scheduler.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pgstask import queries, schedules
from pgstask._client_base import ClientBase, registered_action_problem
from pgstask.db import Conn
from pgstask.errors import (
    InvalidOptionsError,
    InvalidScheduleError,
    PresetNotFoundError,
    ScheduleNotFoundError,
    UnknownActionError,
)
from pgstask.task import Status, Task
from pgstask.workers import known

Row = dict[str, Any]


class ClientSchedules(ClientBase):
    """The schedule methods of ``Client``."""

    def schedules(self) -> list[Row]:
        """Every schedule's row (``s_schedules``), by name: its fields (``identifier`` and
        ``action``, or ``preset``), ``active``, ``origin``, ``next_run_at``, ``last_run_at``,
        ``last_task_id``, ``last_error``, ``missing_from_code_at``; ``last_task_status``: the
        status text of the task of its last slot (None when it has none, or the task was
        deleted); and for one that starts a preset, ``preset_identifier`` and ``preset_action``:
        the preset's worker and action now (None when the preset does not exist)."""
        with self.connection() as c:
            return [_shown(r) for r in queries.schedule_list(c)]

    def schedule(self, name: str) -> Row:
        """One schedule's row, as ``schedules`` gives it; ``ScheduleNotFoundError`` if there is
        none."""
        with self.connection() as c:
            return _read(c, _lookup(name))

    def add_schedule(self, name: str, identifier: str | None, fields: Mapping[str, Any]) -> Row:
        """Add schedule ``name`` of worker ``identifier``, or replace the one added so before;
        ``fields`` as a worker declares them (``action``, ``cron``, ``timezone``, ``data``, …).
        Its row, with ``inserted``. A changed expression or zone starts from its next slot.

        A schedule that starts a preset has ``preset`` in its fields instead of ``action``, and
        ``identifier`` None (or the preset's worker): ``add_schedule("nightly", None,
        {"preset": "nightly-export", "cron": "0 3 * * *"})``.

        ``InvalidScheduleError`` for a bad field, for an action the worker does not have (when
        this process defines the worker, or its registered row lists its actions), for data
        that does not match the action's options model (when this process defines the worker),
        for a preset that does not exist, and for a schedule declared in code: that one is
        changed in code (a daemon writes it back at its start), and paused, resumed or run
        here."""
        schedule = checked(name, identifier, fields)
        with self.connection() as c:
            if schedule.preset is None:
                _check_registered_action(c, schedule)
            schedules.check_preset(c, schedule)
            check_not_declared(name, queries.schedule_get(c, name=name))
            written = queries.schedule_upsert(c, **schedule.row(origin="api"))
            inserted = written is not None and bool(written["inserted"])
            row = _read(c, name)
            if "active" in fields and row["active"] != schedule.active:
                queries.schedule_set_active(c, name=name, active=schedule.active)
                row = _read(c, name)
            return {**row, "inserted": inserted}

    def pause_schedule(self, name: str) -> Row:
        """Stop schedule ``name`` firing until it is resumed; its row."""
        return self._set_schedule_active(name, False)

    def resume_schedule(self, name: str) -> Row:
        """Let schedule ``name`` fire again, from its next slot (not the ones missed while it was
        paused); its row. Clears ``last_error``."""
        return self._set_schedule_active(name, True)

    def _set_schedule_active(self, name: str, active: bool) -> Row:
        with self.connection() as c:
            if queries.schedule_set_active(c, name=_lookup(name), active=active) is None:
                raise ScheduleNotFoundError(name)
            return _read(c, name)

    def remove_schedule(self, name: str) -> None:
        """Delete schedule ``name`` and its record of fired slots; the tasks it enqueued stay. A
        schedule still declared in code comes back at a daemon's next start."""
        with self.connection() as c:
            if not queries.schedule_delete(c, name=_lookup(name)):
                raise ScheduleNotFoundError(name)

    def run_schedule(self, name: str) -> Task:
        """Enqueue one task of schedule ``name`` now, with its worker, action, data, priority
        and ``max_attempts`` (paused or not; those of its preset, as at a slot, for one that
        starts a preset); its slots are not moved and none is recorded.
        ``PresetNotFoundError`` when it starts a preset that does not exist."""
        with self.connection() as c:
            task = queries.schedule_run_now(c, name=_lookup(name))
            if task is None:
                row = _read(c, name)  # ScheduleNotFoundError if there is none
                raise PresetNotFoundError(row["preset"], schedule=name)
        return task


def checked(name: str, identifier: str | None, fields: Mapping[str, Any]) -> schedules.Schedule:
    """``add_schedule``'s arguments, checked without I/O: ``schedules.check``, and the action
    and data against the worker's class when this process defines it."""
    schedule = schedules.check(name, identifier, fields)
    if schedule.action is not None and schedule.identifier is not None:
        try:
            known.check_action(schedule.identifier, schedule.action)
            known.check_options(schedule.identifier, schedule.action, schedule.data)
        except (UnknownActionError, InvalidOptionsError) as exc:
            raise InvalidScheduleError(f"schedule {name!r}: {exc}") from None
    return schedule


def check_not_declared(name: str, current: Row | None) -> None:
    """``InvalidScheduleError`` when the schedule's ``current`` row is declared in code (and
    still is): ``add_schedule`` does not replace it."""
    if current is None or current["origin"] != "code" or current["missing_from_code_at"]:
        return
    declared_by = current["identifier"] or current["preset_identifier"]
    raise InvalidScheduleError(
        f"schedule {name!r} is declared in code by worker {declared_by!r}; change "
        "it there (a daemon writes it back at its start), or pause it"
    )


def _lookup(name: Any) -> str:
    """``name`` to look up; ``ScheduleNotFoundError`` for one no schedule can have (the table
    could not even compare it)."""
    try:
        return schedules.check_name(name)
    except InvalidScheduleError:
        raise ScheduleNotFoundError(name if isinstance(name, str) else repr(name)) from None


def _read(conn: Conn, name: str) -> Row:
    """Schedule ``name``'s row as the client gives it; ``ScheduleNotFoundError`` if none."""
    row = queries.schedule_get(conn, name=name)
    if row is None:
        raise ScheduleNotFoundError(name)
    return _shown(row)


def _shown(row: Row) -> Row:
    """``row`` with the status of its last task as text."""
    code = row.get("last_task_status")
    return {**row, "last_task_status": None if code is None else Status(code).text}


def _check_registered_action(conn: Conn, schedule: schedules.Schedule) -> None:
    """``InvalidScheduleError`` when the schedule's worker is registered with a list of actions
    that lacks the schedule's; an unregistered worker passes (a daemon may register it later)."""
    assert schedule.identifier is not None and schedule.action is not None
    problem = registered_action_problem(conn, schedule.identifier, schedule.action)
    if problem:
        raise InvalidScheduleError(f"schedule {schedule.name!r}: {problem}")
