"""Wrappers of ``sql/presets.sql``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg.types.json import Jsonb

from pgstask.db import Conn
from pgstask.queries._execute import Row, params_of, rows_of, tasks_of
from pgstask.task import Task


def preset_upsert(
    conn: Conn,
    *,
    name: str,
    identifier: str,
    action: str,
    data: dict[str, Any],
    priority: str,
    max_attempts: int,
    description: str,
) -> Row:
    """Insert preset ``name`` or replace its fields; its row, with ``inserted``."""
    params = {**params_of(locals()), "data": Jsonb(data)}
    return rows_of(conn, "preset_upsert", params)[0]


def preset_get(conn: Conn, *, name: str) -> Row | None:
    """The row of preset ``name`` with ``schedules`` (the names of the schedules that start
    it), or None."""
    rows = rows_of(conn, "preset_get", {"name": name})
    return rows[0] if rows else None


def preset_list(conn: Conn) -> list[Row]:
    """Every preset, by name, each with ``schedules`` as ``preset_get``."""
    return rows_of(conn, "preset_list", {})


def preset_delete(conn: Conn, *, name: str) -> list[str] | None:
    """Delete preset ``name``; the schedules that still name it, or None when there was no such
    preset."""
    rows = rows_of(conn, "preset_delete", {"name": name})
    return list(rows[0]["schedules"]) if rows else None


def preset_enqueue(
    conn: Conn,
    *,
    name: str,
    data: str,
    priority: str | None,
    start_at: dt.datetime | None,
    max_attempts: int | None,
    user_id: int | None,
    dedupe_key: str | None,
) -> Task | None:
    """Insert one task of preset ``name`` with ``data`` (JSON text of an object) merged over its
    data; None when there is no such preset, or an incomplete task holds ``dedupe_key``."""
    found = tasks_of(conn, "preset_enqueue", params_of(locals()))
    return found[0] if found else None
