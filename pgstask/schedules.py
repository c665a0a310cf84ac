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

A daemon writes its workers' schedules at its start (``write_declared``): new ones are inserted,
changed ones updated (a new expression or zone starts from its next slot), and those no longer
declared by a worker it runs are marked ``missing_from_code_at`` and reported, never deleted while
they have history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pgstask import queries, task_spec
from pgstask.cron import Cron
from pgstask.db import Conn
from pgstask.errors import InvalidScheduleError, InvalidTaskError, UnknownActionError
from pgstask.workers.base import BaseWorker

MISFIRES = ("skip", "run_once")
FIELDS = ("action", "cron", "timezone", "data", "priority", "max_attempts", "misfire", "active")
MAX_NAME = 200
_NAME = re.compile(r"[^\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A checked schedule, as ``s_schedules`` stores it."""

    name: str
    identifier: str
    action: str
    cron: Cron
    data: dict[str, Any] = field(default_factory=dict)
    priority: str = task_spec.DEFAULT_PRIORITY
    max_attempts: int = task_spec.DEFAULT_MAX_ATTEMPTS
    misfire: str = "skip"
    active: bool = True

    def row(self, *, origin: str) -> dict[str, Any]:
        """The keyword arguments of ``queries.schedule_upsert``."""
        return {
            "name": self.name,
            "identifier": self.identifier,
            "action": self.action,
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
    identifier: str,
    fields: Mapping[str, Any],
    *,
    worker: type[BaseWorker] | None = None,
) -> Schedule:
    """Schedule ``name`` of worker ``identifier`` from its ``fields``; ``InvalidScheduleError``
    naming the schedule and what is wrong. With ``worker``, its action must be one of the
    worker's."""
    check_name(name)
    where = f"schedule {name!r}"
    if not isinstance(fields, Mapping):
        raise InvalidScheduleError(f"{where}: its fields are a mapping such as {{'cron': …}}")
    unknown = sorted(str(k) for k in fields if k not in FIELDS)
    if unknown:
        raise InvalidScheduleError(
            f"{where}: unknown field(s) {', '.join(unknown)}; use {', '.join(FIELDS)}"
        )
    for required in ("action", "cron"):
        if fields.get(required) is None:
            raise InvalidScheduleError(f"{where}: {required} is required")
    try:
        task_spec.check_name("identifier", identifier)
        task_spec.check_name("action", fields["action"])
        data = fields.get("data")
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise InvalidTaskError(f"data must be a JSON object, not {data!r}")
        task_spec.data_json(data)
        priority = task_spec.check_priority(fields.get("priority", task_spec.DEFAULT_PRIORITY))
        attempts = task_spec.check_max_attempts(
            fields.get("max_attempts", task_spec.DEFAULT_MAX_ATTEMPTS)
        )
        cron = Cron(fields["cron"], fields.get("timezone", "UTC"))
        if worker is not None:
            worker.resolve_action(fields["action"])
    except (InvalidTaskError, InvalidScheduleError, UnknownActionError) as exc:
        raise InvalidScheduleError(f"{where}: {exc}") from None
    misfire = fields.get("misfire", "skip")
    if misfire not in MISFIRES:
        raise InvalidScheduleError(f"{where}: unknown misfire {misfire!r}; use skip or run_once")
    active = fields.get("active", True)
    if not isinstance(active, bool):
        raise InvalidScheduleError(f"{where}: active is true or false, not {active!r}")
    return Schedule(
        name, identifier, fields["action"], cron, dict(data), priority, attempts, misfire, active
    )


def check_name(name: Any) -> str:
    """A schedule's name: printable text without blanks around it, up to ``MAX_NAME``
    characters."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise InvalidScheduleError(
            f"a schedule's name is non-empty text without blanks around it, not {name!r}"
        )
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise InvalidScheduleError(
            f"schedule name {name[:50]!r}: at most {MAX_NAME} characters, no control characters"
        )
    try:
        task_spec.check_storable("a schedule's name", name)
    except InvalidTaskError as exc:
        raise InvalidScheduleError(str(exc)) from None
    return name


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


def write_declared(conn: Conn, workers: Iterable[type[BaseWorker]]) -> Written:
    """Write the schedules ``workers`` declare (origin ``code``) and mark those of theirs that
    are declared no more, in the caller's transaction."""
    classes = list(workers)
    found = declared(classes)
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
