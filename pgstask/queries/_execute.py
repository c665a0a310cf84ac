"""How a wrapper runs its named query and shapes what it returns."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from pgstask._task_rows import fetch_tasks, fetch_tasks_async, task_row
from pgstask.db import AsyncConn, Conn
from pgstask.sql import query
from pgstask.task import Task

Row = dict[str, Any]


def params_of(given: dict[str, Any]) -> dict[str, Any]:
    """A wrapper's keyword arguments as query parameters (sequences become lists = arrays)."""
    return {
        k: list(v) if isinstance(v, tuple | list) else v for k, v in given.items() if k != "conn"
    }


def tasks_of(conn: Conn, name: str, params: dict[str, Any], binary: bool = False) -> list[Task]:
    """Run a query that returns ``s_tasks`` rows, read as ``Task``s (a row Python cannot read as an
    ``UnreadableTask``). ``binary``: results in binary (the query's ``%(name)b`` placeholders do the
    same for its parameters)."""
    with conn.cursor(row_factory=task_row) as cur:
        cur.execute(query(name), params, binary=binary)
        return fetch_tasks(cur)


def rows_of(conn: Conn, name: str, params: dict[str, Any]) -> list[Row]:
    """Run a query; its rows as dicts (none for a statement without a result)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(name), params)
        return cur.fetchall() if cur.description else []


def count_of(conn: Conn, name: str, params: dict[str, Any]) -> int:
    """Run a query; the number of rows it changed."""
    with conn.cursor() as cur:
        cur.execute(query(name), params)
        return cur.rowcount


# --- the same, on an async connection (``queries.aio``'s twins) ------------------------------


async def tasks_of_async(
    conn: AsyncConn, name: str, params: dict[str, Any], binary: bool = False
) -> list[Task]:
    """``tasks_of`` on an async connection: the same query text, parameters and row reading."""
    async with conn.cursor(row_factory=task_row) as cur:
        await cur.execute(query(name), params, binary=binary)
        return await fetch_tasks_async(cur)


async def rows_of_async(conn: AsyncConn, name: str, params: dict[str, Any]) -> list[Row]:
    """``rows_of`` on an async connection."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query(name), params)
        return await cur.fetchall() if cur.description else []


async def count_of_async(conn: AsyncConn, name: str, params: dict[str, Any]) -> int:
    """``count_of`` on an async connection."""
    async with conn.cursor() as cur:
        await cur.execute(query(name), params)
        return cur.rowcount
