"""Connections: the daemon's dedicated ones (a statement is a transaction) and the pool's
checks; a dead connection is replaced."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from pgstask import db
from pgstask.db import Conn, Dedicated, make_pool


def _backend(dedicated: Dedicated) -> int:
    with dedicated.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert row is not None
    return int(row["pid"])


def _terminate(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_statement_is_its_own_transaction_on_one_kept_connection(dsn: str) -> None:
    dedicated = Dedicated(dsn, name="pgstask-test")
    try:
        with dedicated.connection() as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (1)")
        with psycopg.connect(dsn) as other:  # committed without a COMMIT of ours
            assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
        assert _backend(dedicated) == _backend(dedicated)
    finally:
        dedicated.close()


def test_a_connection_that_sat_idle_is_checked_and_replaced(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "CHECK_AFTER", 0.0)  # every use finds it idle for long enough
    dedicated = Dedicated(dsn, name="pgstask-test")
    try:
        first = _backend(dedicated)
        _terminate(dsn, first)
        assert _backend(dedicated) != first  # the check found it dead: no error for the caller
    finally:
        dedicated.close()


def test_a_connection_that_broke_in_use_is_replaced_on_the_next_use(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "CHECK_AFTER", 3600.0)  # never checked before use
    dedicated = Dedicated(dsn, name="pgstask-test")
    try:
        first = _backend(dedicated)
        _terminate(dsn, first)
        with pytest.raises(psycopg.OperationalError), dedicated.connection() as conn:
            conn.execute("SELECT 1")
        assert _backend(dedicated) != first
    finally:
        dedicated.close()


def test_an_error_inside_a_transaction_does_not_leave_it_open(dsn: str) -> None:
    dedicated = Dedicated(dsn, name="pgstask-test")
    try:
        first = _backend(dedicated)
        with pytest.raises(RuntimeError), dedicated.connection() as conn, conn.transaction():
            conn.execute("SELECT 1")
            raise RuntimeError("the caller failed")
        with dedicated.connection() as conn:
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert _backend(dedicated) == first  # the transaction block rolled back; kept
    finally:
        dedicated.close()


def _pooled_backend(pool: ConnectionPool[Conn]) -> int:
    with pool.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert row is not None
    return int(row["pid"])


def test_a_pooled_connection_idle_past_check_after_is_checked_and_replaced(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = make_pool(dsn, max_size=1, name="pgstask-test")
    try:
        first = _pooled_backend(pool)
        assert _pooled_backend(pool) == first  # used moments ago: handed out unchecked
        _terminate(dsn, first)
        monkeypatch.setattr(db, "CHECK_AFTER", 0.0)  # as if it sat in the pool for a while
        assert _pooled_backend(pool) != first  # no error for the caller
    finally:
        pool.close()


def test_a_returned_connection_is_back_in_the_pool_at_once(dsn: str) -> None:
    """The return runs in the caller's thread (a pool ``reset`` callback would send every return
    to the pool's worker thread: one thread hand-off per statement)."""
    pool = make_pool(dsn, max_size=2, name="pgstask-test")
    try:
        for _ in range(50):
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            stats = pool.get_stats()
            assert stats["pool_available"] == stats["pool_size"]
    finally:
        pool.close()


def test_a_connection_is_checked_only_after_sitting_unused(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = make_pool(dsn, max_size=1, name="pgstask-test")
    checked: list[Conn] = []
    real = ConnectionPool.check_connection
    monkeypatch.setattr(
        ConnectionPool, "check_connection", staticmethod(lambda c: (checked.append(c), real(c)))
    )
    monkeypatch.setattr(db, "CHECK_AFTER", 0.2)
    try:
        _pooled_backend(pool)
        checked.clear()
        for _ in range(5):
            _pooled_backend(pool)
        assert checked == []  # handed out moments ago each time
        time.sleep(0.3)
        _pooled_backend(pool)
        assert len(checked) == 1
    finally:
        pool.close()


def test_a_new_connection_counts_as_just_handed_out(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection made moments ago is not checked at its next use (however long the machine
    has been up: the idle time must not be counted from zero)."""
    checked: list[Conn] = []
    real = ConnectionPool.check_connection
    monkeypatch.setattr(
        ConnectionPool, "check_connection", staticmethod(lambda c: (checked.append(c), real(c)))
    )
    monkeypatch.setattr(db, "CHECK_AFTER", 0.5)  # the machine has been up for longer
    dedicated = Dedicated(dsn, name="pgstask-test")
    pool = make_pool(dsn, max_size=1, name="pgstask-test")
    try:
        assert _backend(dedicated) == _backend(dedicated)
        _pooled_backend(pool)
        assert checked == []
    finally:
        dedicated.close()
        pool.close()
