"""Wrappers of ``sql/schedules.sql``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from pgstask.db import Conn
from pgstask.queries._execute import Row, count_of, params_of, rows_of, tasks_of
from pgstask.task import Task


def schedule_upsert(
    conn: Conn,
    *,
    name: str,
    identifier: str | None,
    action: str | None,
    preset: str | None,
    cron: str,
    timezone: str,
    data: dict[str, Any],
    priority: str | None,
    max_attempts: int | None,
    misfire: str,
    active: bool,
    origin: str,
) -> Row | None:
    """Insert schedule ``name`` or update it to these fields; None when nothing changed. A new
    expression or zone clears ``next_run_at`` (the next scheduler pass computes it)."""
    params = {**params_of(locals()), "data": Jsonb(data)}
    rows = rows_of(conn, "schedule_upsert", params)
    return rows[0] if rows else None


def schedule_get(conn: Conn, *, name: str) -> Row | None:
    """The row of schedule ``name`` with ``last_task_status`` (the status code of the task of its
    last slot; None when it has none, or it was deleted), and ``preset_identifier`` and
    ``preset_action`` (those of the preset it starts, if it exists), or None."""
    rows = rows_of(conn, "schedule_get", {"name": name})
    return rows[0] if rows else None


def schedule_list(conn: Conn) -> list[Row]:
    """Every schedule, by name, each with ``last_task_status``, ``preset_identifier`` and
    ``preset_action`` as ``schedule_get``."""
    return rows_of(conn, "schedule_list", {})


def schedule_due(conn: Conn, *, limit: int) -> list[Row]:
    """Up to ``limit`` active schedules that are due or have no next slot yet, each with the
    server's ``now`` and ``preset_missing`` (it starts a preset that does not exist)."""
    return rows_of(conn, "schedule_due", {"limit": limit})


def schedule_next_run_at(conn: Conn) -> float | None:
    """Seconds until the earliest slot of an active schedule (negative when one is overdue);
    None when no schedule has one."""
    delay = rows_of(conn, "schedule_next_run_at", {})[0]["delay"]
    return None if delay is None else float(delay)


def schedule_fire(
    conn: Conn, *, name: str, slot: dt.datetime, next_run_at: dt.datetime | None
) -> Row | None:
    """Fire ``slot`` of schedule ``name`` and move it to ``next_run_at``, inserting its task, in
    one statement; None when another scheduler fired it first (or its preset does not exist).
    The row's ``task_id`` is None when the slot had a run already (its task is not inserted
    twice)."""
    rows = rows_of(conn, "schedule_fire", {"name": name, "slot": slot, "next_run_at": next_run_at})
    return rows[0] if rows else None


def schedule_move(
    conn: Conn, *, name: str, slot: dt.datetime | None, next_run_at: dt.datetime | None
) -> bool:
    """Move the schedule from ``slot`` (None: not computed yet) to ``next_run_at`` without a
    task; False when another scheduler moved it first."""
    params = {"name": name, "slot": slot, "next_run_at": next_run_at}
    return bool(rows_of(conn, "schedule_move", params))


def schedule_disable(conn: Conn, *, name: str, error: str) -> bool:
    """Stop schedule ``name``, with the reason pgstask cannot run it."""
    return bool(rows_of(conn, "schedule_disable", {"name": name, "error": error}))


def schedule_set_active(conn: Conn, *, name: str, active: bool) -> Row | None:
    """Pause or resume schedule ``name`` (resumed: from its next slot); its row, or None."""
    rows = rows_of(conn, "schedule_set_active", {"name": name, "active": active})
    return rows[0] if rows else None


def schedule_run_now(conn: Conn, *, name: str) -> Task | None:
    """Enqueue one task of schedule ``name`` now, its slots untouched; None when there is no such
    schedule, or it starts a preset that does not exist."""
    found = tasks_of(conn, "schedule_run_now", {"name": name})
    return found[0] if found else None


def schedule_delete(conn: Conn, *, name: str) -> bool:
    """Delete schedule ``name`` and its runs (its tasks stay); False when there was none."""
    return bool(rows_of(conn, "schedule_delete", {"name": name}))


def schedule_mark_missing_from_code(
    conn: Conn, *, identifiers: Sequence[str], declared: Sequence[str]
) -> list[str]:
    """Mark the code schedules of workers ``identifiers`` that are not in ``declared``; their
    names."""
    params = {"identifiers": list(identifiers), "declared": list(declared)}
    return [r["name"] for r in rows_of(conn, "schedule_mark_missing_from_code", params)]


def schedule_runs_delete_before(conn: Conn, *, days: float) -> int:
    """Delete runs fired more than ``days`` ago, except each schedule's latest; how many."""
    return count_of(conn, "schedule_runs_delete_before", {"days": days})
