"""Schedules: what a valid one is, and the schedules that workers declare in code.

A schedule enqueues a task of a worker's action at every slot of a cron expression in a time zone
(``pgstask.cron``). A worker declares its own as a class attribute::

    class ExportWorker(BaseWorker):
        identifier = "export"
        schedules = {
            "nightly-export": {"action": "export", "cron": "0 3 * * *",
                               "timezone": "Europe/Kyiv", "data": {"format": "csv"}},
        }

Fields: ``action`` and ``cron`` (required), ``timezone`` (``UTC``), ``data`` (``{}``, the task's
options), ``priority`` (``normal``), ``max_attempts`` (3), ``misfire`` (``skip`` or ``run_once``:
what to do with a slot missed while nothing ran) and ``active`` (true). ``check`` refuses
anything else with a message that names the schedule and the field.

A schedule may start a preset (``pgstask.presets``) instead: ``preset`` in place of ``action``
(and, outside a worker's attribute, of the worker's identifier). At each slot the preset gives
the worker and the action, the schedule's data is merged over the preset's, and the preset's
priority and ``max_attempts`` apply unless the schedule sets its own. The preset must exist when
the schedule is written (``check_preset``); one removed later disables the schedule at its next
pass (``runtime/scheduler.py``).

A daemon writes its workers' schedules at its start (``write_declared``): new ones are inserted,
changed ones updated (a new expression or zone starts from its next slot), and those no longer
declared by a worker it runs are marked ``missing_from_code_at`` and reported, never deleted while
they have history. A worker's schedule that names a preset must name one of the worker's own
presets, which must exist when the daemon starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pgstask import presets, queries, task_spec
from pgstask.cron import Cron
from pgstask.db import Conn
from pgstask.errors import (
    InvalidPresetError,
    InvalidScheduleError,
    InvalidTaskError,
    UnknownActionError,
)
from pgstask.workers import options
from pgstask.workers.base import BaseWorker

MISFIRES = ("skip", "run_once")
FIELDS = (
    *("action", "cron", "timezone", "data", "priority", "max_attempts", "misfire", "active"),
    "preset",
)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A checked schedule, as ``s_schedules`` stores it. A schedule that starts a ``preset`` has
    no ``action``; its ``identifier`` is the worker it was declared or added for (None when it
    was not said), checked against the preset's and not stored; its ``priority`` and
    ``max_attempts`` are None unless given (the preset's)."""

    name: str
    identifier: str | None
    action: str | None
    cron: Cron
    data: dict[str, Any] = field(default_factory=dict)
    priority: str | None = task_spec.DEFAULT_PRIORITY
    max_attempts: int | None = task_spec.DEFAULT_MAX_ATTEMPTS
    misfire: str = "skip"
    active: bool = True
    preset: str | None = None

    def row(self, *, origin: str) -> dict[str, Any]:
        """The keyword arguments of ``queries.schedule_upsert``."""
        return {
            "name": self.name,
            "identifier": None if self.preset else self.identifier,
            "action": self.action,
            "preset": self.preset,
            "cron": self.cron.expression,
            "timezone": self.cron.timezone,
            "data": self.data,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "misfire": self.misfire,
            "active": self.active,
            "origin": origin,
        }


def check(
    name: Any,
    identifier: str | None,
    fields: Mapping[str, Any],
    *,
    worker: type[BaseWorker] | None = None,
) -> Schedule:
    """Schedule ``name`` of worker ``identifier`` from its ``fields``; ``InvalidScheduleError``
    naming the schedule and what is wrong. With ``worker``, its action must be one of the
    worker's, and its data must match the action's options model, if it declares one. A
    schedule that starts a preset may leave ``identifier`` None; whether the preset exists is
    ``check_preset``'s question."""
    check_name(name)
    where = f"schedule {name!r}"
    if not isinstance(fields, Mapping):
        raise InvalidScheduleError(f"{where}: its fields are a mapping such as {{'cron': …}}")
    unknown = sorted(str(k) for k in fields if k not in FIELDS)
    if unknown:
        raise InvalidScheduleError(
            f"{where}: unknown field(s) {', '.join(unknown)}; use {', '.join(FIELDS)}"
        )
    if fields.get("cron") is None:
        raise InvalidScheduleError(f"{where}: cron is required")
    action, preset = fields.get("action"), fields.get("preset")
    if action is not None and preset is not None:
        raise InvalidScheduleError(f"{where}: give an action or a preset, not both")
    if action is None and preset is None:
        raise InvalidScheduleError(f"{where}: action is required (or preset, to start a preset)")
    try:
        if preset is None or identifier is not None:
            task_spec.check_name("identifier", identifier)
        if preset is None:
            task_spec.check_name("action", action)
        else:
            presets.check_name(preset)
        data = fields.get("data")
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise InvalidTaskError(f"data must be a JSON object, not {data!r}")
        task_spec.data_json(data)
        priority, attempts = _priority_and_attempts(fields, preset is None)
        cron = Cron(fields["cron"], fields.get("timezone", "UTC"))
        if worker is not None and action is not None:
            model = options.model_of(worker, worker.resolve_action(action))
            if model is not None:  # the data is the whole of its tasks' options
                model.build(data)
    except (InvalidTaskError, InvalidScheduleError, InvalidPresetError, UnknownActionError) as exc:
        raise InvalidScheduleError(f"{where}: {exc}") from None
    misfire = fields.get("misfire", "skip")
    if misfire not in MISFIRES:
        raise InvalidScheduleError(f"{where}: unknown misfire {misfire!r}; use skip or run_once")
    active = fields.get("active", True)
    if not isinstance(active, bool):
        raise InvalidScheduleError(f"{where}: active is true or false, not {active!r}")
    return Schedule(
        name,
        identifier,
        action,
        cron,
        dict(data),
        priority,
        attempts,
        misfire,
        active,
        preset,
    )


def _priority_and_attempts(fields: Mapping[str, Any], defaults: bool) -> tuple[Any, Any]:
    """The schedule's priority and ``max_attempts``; not given (or None): the defaults for a
    schedule of an action, None (the preset's) for a schedule of a preset."""
    priority, attempts = fields.get("priority"), fields.get("max_attempts")
    if priority is not None:
        priority = task_spec.check_priority(priority)
    elif defaults:
        priority = task_spec.DEFAULT_PRIORITY
    if attempts is not None:
        attempts = task_spec.check_max_attempts(attempts)
    elif defaults:
        attempts = task_spec.DEFAULT_MAX_ATTEMPTS
    return priority, attempts


def check_name(name: Any) -> str:
    """A schedule's name: printable text without blanks around it, up to ``presets.MAX_NAME``
    characters (a preset's name follows the same rule)."""
    problem = presets.name_problem(name, "schedule")
    if problem:
        raise InvalidScheduleError(problem)
    return str(name)


def check_preset(conn: Conn, schedule: Schedule, worker: type[BaseWorker] | None = None) -> None:
    """For a schedule that starts a preset: ``InvalidScheduleError`` when the preset does not
    exist, is of another worker than the schedule's ``identifier`` (when it has one), or has an
    action that ``worker`` does not have."""
    if schedule.preset is not None:
        check_preset_row(schedule, queries.preset_get(conn, name=schedule.preset), worker)


def check_preset_row(
    schedule: Schedule, found: Mapping[str, Any] | None, worker: type[BaseWorker] | None = None
) -> None:
    """``check_preset`` of the preset's row as read (None: there is none), without I/O."""
    where = f"schedule {schedule.name!r}"
    if found is None:
        raise InvalidScheduleError(
            f"{where}: no preset is named {schedule.preset!r}; add it first "
            "(`pgstask presets add`), or give the schedule an action"
        )
    if schedule.identifier is not None and found["identifier"] != schedule.identifier:
        raise InvalidScheduleError(
            f"{where} of worker {schedule.identifier!r} starts preset {schedule.preset!r}, "
            f"which is of worker {found['identifier']!r}: a worker's schedules start its own "
            "tasks (`pgstask schedules add --preset` adds any other)"
        )
    if worker is not None:
        try:
            worker.resolve_action(found["action"])
        except UnknownActionError as exc:
            raise InvalidScheduleError(f"{where}: preset {schedule.preset!r}: {exc}") from None


def declared(workers: Iterable[type[BaseWorker]]) -> list[Schedule]:
    """The schedules the ``schedules`` attributes of ``workers`` declare, checked; one name
    declared twice is an error."""
    found: dict[str, Schedule] = {}
    for cls in workers:
        declared_here = getattr(cls, "schedules", None) or {}
        if not isinstance(declared_here, Mapping):
            raise InvalidScheduleError(
                f"worker {cls.identifier!r}: schedules is a mapping of name to fields"
            )
        for name, fields in declared_here.items():
            schedule = check(name, cls.identifier, fields, worker=cls)
            other = found.get(schedule.name)
            if other is not None:
                raise InvalidScheduleError(
                    f"schedule {name!r} is declared by workers {other.identifier!r} and "
                    f"{cls.identifier!r}; give one of them another name"
                )
            found[schedule.name] = schedule
    return sorted(found.values(), key=lambda s: s.name)


@dataclass(frozen=True, slots=True)
class Written:
    """What ``write_declared`` did: schedules inserted, updated, and no longer declared."""

    inserted: list[str]
    updated: list[str]
    missing: list[str]

    def warnings(self) -> list[str]:
        """What the daemon warns of: each schedule still stored but declared no more."""
        return [
            f"schedule {name} is in s_schedules but no longer declared by its worker: it stays "
            f"(`pgstask schedules remove {name}` deletes it)"
            for name in self.missing
        ]


def write_declared(conn: Conn, workers: Iterable[type[BaseWorker]]) -> Written:
    """Write the schedules ``workers`` declare (origin ``code``) and mark those of theirs that
    are declared no more, in the caller's transaction."""
    classes = list(workers)
    found = declared(classes)
    by_identifier = {cls.identifier: cls for cls in classes}
    for schedule in found:
        check_preset(conn, schedule, by_identifier.get(schedule.identifier or ""))
    inserted: list[str] = []
    updated: list[str] = []
    for schedule in found:
        row = queries.schedule_upsert(conn, **schedule.row(origin="code"))
        if row is not None:
            (inserted if row["inserted"] else updated).append(schedule.name)
    missing = queries.schedule_mark_missing_from_code(
        conn, identifiers=[c.identifier for c in classes], declared=[s.name for s in found]
    )
    return Written(inserted, updated, missing)
