"""The completer: writes outcomes in batches, each transition a compare-and-set.

Action threads ``add`` outcomes; ``step`` writes everything buffered in one transaction
with one statement per kind (``unnest`` arrays) plus one for the log records, so completion costs
a few round trips per batch rather than per task. Each write is a compare-and-set on the run:
a row that no longer matches (status, claims, daemon) is not this run's any more (cancelled,
rescued after a missed heartbeat, or claimed again after a retry): its outcome is discarded and
that is logged on the task. When the database is unreachable the buffer is kept and written on
the next pass; nothing is dropped. ``holding()`` names the runs whose outcome is buffered or
being written: the daemon still holds their tasks in the database.

It also writes what actions report while they run, so that no action thread ever waits on the
database (a daemon cut off from it must be able to stop its actions): log records (already in
their ``{id}.log`` files, and written in the same transaction as the outcomes of the pass) and
progress rows (the latest state of each task, written just before those outcomes, since an
outcome deletes its progress row).

After each pass it tells ``on_written`` (when given) the outcomes the pass stored, once they are
committed: the runs ``written`` by the compare-and-set, nothing more (the daemon's hook caller,
``runtime/hooks.py``). Knowing them costs no statement: the writes return them already.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from pgstask import logs, progress, queries
from pgstask.db import Conn, Connections, describe, storable
from pgstask.logs import LogRecord
from pgstask.progress import ProgressState
from pgstask.runtime.runner import Outcome, OutcomeKind
from pgstask.runtime.service import Clock, Service
from pgstask.task import RunKey, Status

_log = logging.getLogger(__name__)

# What the server refuses for a value in the batch (as opposed to a connection that failed,
# after which the same batch is written again): psycopg's DataError and IntegrityError, and
# the encoder's own ValueError/TypeError.
_REFUSED = (psycopg.DataError, psycopg.IntegrityError, ValueError, TypeError)


class Completer(Service):
    """Writes outcomes, progress rows and log rows in batches (see the module docstring)."""

    name = "completer"

    def __init__(
        self,
        *,
        db: Connections,
        daemon_id: uuid.UUID,
        storage: Path,
        on_retry: Callable[[], None] = lambda: None,
        on_written: Callable[[list[Outcome]], None] | None = None,
        limited: Callable[[str], bool] = lambda identifier: False,
        notifying: Callable[[str], bool] = lambda identifier: False,
        interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        """``on_retry`` is called after a pass that wrote a failure to retry or a snooze (it
        wakes the producer: the task may be due again before its next poll). ``limited`` says
        whether a worker has limits (docs/limits.md): a batch that ends a run of one is followed
        by a NOTIFY, so that the daemons whose tasks a limit held back claim at once.
        ``notifying`` says whether a worker has a ``notify`` setting (docs/notifications.md): a
        batch with an outcome of one, or of a task with its own ``notify``, is written in a
        transaction that also inserts the deliveries of its final outcomes."""
        super().__init__(interval=interval, clock=clock)
        self.db = db
        self.daemon_id = daemon_id
        self.storage = storage
        self._on_retry = on_retry
        self._on_written = on_written  # must not raise nor wait (it runs in the completer)
        self._limited = limited
        self._notifying = notifying
        self._lock = threading.Lock()
        self._buffer: list[Outcome] = []
        self._late_logs: list[LogRecord] = []  # already in their files; the rows still to write
        self._writing: list[Outcome] = []  # the batch being written (out of the buffer)
        self._progress: dict[int, ProgressState] = {}  # the latest state of each task
        self._flushing = threading.Lock()

    def add(self, outcome: Outcome) -> None:
        """An outcome to write with the next batch."""
        with self._lock:
            self._buffer.append(outcome)
        self.wake()

    def add_logs(self, records: list[LogRecord]) -> None:
        """Log records an action could not store itself (database away); written with the
        next batch. Their lines are already in the ``{id}.log`` files."""
        with self._lock:
            self._late_logs.extend(records)
        self.wake()

    def add_progress(self, state: ProgressState) -> None:
        """A task's progress row to write (a later state of the same task replaces it)."""
        with self._lock:
            self._progress[state.task_id] = dataclasses.replace(state)
        self.wake()

    def holding(self) -> set[RunKey]:
        """The runs whose outcome is buffered or being written."""
        with self._lock:
            return {o.task.run_key for o in (*self._buffer, *self._writing)}

    @property
    def pending(self) -> int:
        """Outcomes, log rows and progress rows still to write."""
        with self._lock:
            return len(self._buffer) + len(self._late_logs) + len(self._progress)

    def next_delay(self, result: object) -> float:
        """At once while something is left to write (a newer batch came during a write)."""
        return 0.0 if self.pending else self.interval

    def step(self) -> int:
        """Write what is buffered; returns the number of outcomes written."""
        with self._flushing:
            with self._lock:
                batch, self._buffer = self._buffer, []
                late, self._late_logs = self._late_logs, []
                states, self._progress = list(self._progress.values()), {}
                self._writing = batch
            if not batch and not late and not states:
                return 0
            try:
                self._write_progress(states)
                written = self._write_batch(batch, late)
            except _REFUSED as exc:  # (requeues what it could not write itself)
                _log.error("completer: a batch was refused (%s); writing it one by one", exc)
                batch, written = self._write_one_by_one(batch, late)
            except Exception:
                with self._lock:
                    self._buffer[:0] = batch
                    self._late_logs[:0] = late
                    for state in states:  # a newer state reported meanwhile wins
                        self._progress.setdefault(state.task_id, state)
                raise
            finally:
                with self._lock:
                    self._writing = []
            if self._on_written is not None and written:  # under _flushing: in their order
                self._on_written([o for o in batch if o.task.run_key in written])
        if any(o.retry_delay is not None or o.snooze_delay is not None for o in batch):
            self._on_retry()
        return len(batch)

    def _write_progress(self, states: list[ProgressState]) -> None:
        """Progress rows are advisory: one the server refuses is dropped, with a warning."""
        if not states:
            return
        try:
            with self.db.connection() as conn:
                progress.upsert(conn, states)
        except _REFUSED:
            _log.warning("completer: %d progress row(s) refused and dropped", len(states))

    def _write_batch(self, batch: list[Outcome], late: list[LogRecord]) -> set[RunKey]:
        """Write ``batch`` and ``late``; returns the runs whose outcome was stored (committed)."""
        with self.db.connection() as conn:
            written = None if late else self._write_completions(conn, batch)
            if written is None:
                with conn.transaction():
                    logs.write(conn, None, late)
                    written = self._write(conn, batch)
            # After the commit: a waiting daemon that wakes must find the slot free. Its own
            # statement, only for limited workers: the common completion stays one statement.
            if any(self._limited(o.task.identifier) for o in batch):
                queries.task_notify(conn)
        return written

    def _write_one_by_one(
        self, batch: list[Outcome], late: list[LogRecord]
    ) -> tuple[list[Outcome], set[RunKey]]:
        """After the server refused a batch: each outcome alone, so one value it cannot store
        holds up nothing else. An outcome refused on its own fails its task for good, saying
        why; the late log records are dropped if refused (their lines are in the log files).
        Returns what was written (a replacement in place of its outcome) and the runs whose
        outcome was stored; a connection error propagates with the rest unwritten."""
        written: list[Outcome] = []
        stored: set[RunKey] = set()
        late_done = False
        try:
            try:
                self._write_batch([], late)
            except _REFUSED:
                _log.exception("completer: dropping %d late log record(s)", len(late))
            late_done = True
            for outcome in batch:
                try:
                    stored |= self._write_batch([outcome], [])
                except _REFUSED as exc:
                    replacement = self._write_replacement(outcome, exc)
                    if replacement is None:
                        continue
                    outcome, runs = replacement
                    stored |= runs
                written.append(outcome)
        except Exception:
            done = {w.task.run_key for w in written}
            with self._lock:
                self._buffer[:0] = [o for o in batch if o.task.run_key not in done]
                self._late_logs[:0] = [] if late_done else late
            raise
        return written, stored

    def _write_replacement(
        self, outcome: Outcome, exc: Exception
    ) -> tuple[Outcome, set[RunKey]] | None:
        """After the server refused an outcome on its own: a final failure that says why, or,
        if that is refused too, one with nothing but a fixed message (with the run if it was
        stored). None if even that is refused (then the daemon's give-back check returns the
        task, the attempt not counted)."""
        for replacement in (_unstorable(outcome, exc), _unstorable(outcome, None)):
            try:
                stored = self._write_batch([replacement], [])
            except _REFUSED:
                continue
            return replacement, stored
        _log.exception("completer: task %s: outcome dropped", outcome.task.id)
        return None

    def flush(self, timeout: float) -> bool:
        """Write everything now, retrying until ``timeout``; False if some outcomes remain."""
        deadline = self.clock() + timeout
        while True:
            try:
                self.step()
            except Exception:
                _log.warning("completer: could not write outcomes yet", exc_info=True)
            if not self.pending or self.clock() >= deadline:
                return not self.pending
            self._stopping.wait(0.2)

    def _write_completions(self, conn: Conn, batch: list[Outcome]) -> set[RunKey] | None:
        """The runs completed by the common batch (completions with nothing else to write), one
        statement in its own transaction (autocommit); None, having written nothing, for any other
        batch. An outcome that was not ours any more gets its warning written after, by a
        second statement; the completions are committed by then, so if that one fails the
        warnings are kept for the next batch (their lines go to the files at once) and the
        batch is not written again (it would find its tasks no longer held, and say so)."""
        if any(
            o.kind is not OutcomeKind.COMPLETED or o.logs or o.touched_progress or self._notifies(o)
            for o in batch
        ):
            return None
        written = set(self._complete(conn, batch))
        records = self._discard_records(batch, written)
        try:
            logs.write(conn, self.storage, records)
        except psycopg.Error:
            _log.warning("completer: %d warning(s) kept for the next batch", len(records))
            logs.append_files(self.storage, records)
            with self._lock:
                self._late_logs.extend(records)
        return written

    def _notifies(self, outcome: Outcome) -> bool:
        """Whether a final outcome of the task may be delivered to someone: the task has its
        own targets, or its worker a ``notify`` setting (as the heartbeat last read it)."""
        return outcome.task.notify is not None or self._notifying(outcome.task.identifier)

    def _complete(self, conn: Conn, done: list[Outcome]) -> list[RunKey]:
        return queries.task_complete_many(
            conn,
            daemon_id=self.daemon_id,
            outcomes=[(o.task.id, o.task.claims, o.message, o.result, o.peak_memory) for o in done],
        )

    def _discard_records(self, batch: list[Outcome], written: set[RunKey]) -> list[LogRecord]:
        """The outcomes' own log records, and a warning on each task whose outcome was
        discarded (``written`` lacks it)."""
        records: list[LogRecord] = []
        for outcome in batch:
            records.extend(outcome.logs)
            if outcome.kind is not OutcomeKind.DROPPED and outcome.task.run_key not in written:
                records.append(
                    LogRecord.make(
                        outcome.task.id,
                        "warning",
                        f"Outcome '{outcome.kind.value}' of attempt {outcome.task.attempts} "
                        "discarded: the task was no longer held by this daemon",
                        daemon=str(self.daemon_id),
                    )
                )
        return records

    def _write(self, conn: Conn, batch: list[Outcome]) -> set[RunKey]:
        """Any batch, in the caller's transaction; returns the runs whose outcome it wrote."""
        done = [o for o in batch if o.kind is OutcomeKind.COMPLETED]
        failed = [o for o in batch if o.kind is OutcomeKind.FAILED]
        back = [o for o in batch if o.kind is OutcomeKind.GIVEN_BACK]
        snoozed = [o for o in batch if o.kind is OutcomeKind.SNOOZED]
        written: set[RunKey] = set()
        final: list[int] = []  # the tasks completed or failed for good by this batch
        if done:
            completed = self._complete(conn, done)
            written.update(completed)
            final.extend(task_id for task_id, _ in completed)
        if failed:
            rows = queries.task_fail_many(
                conn,
                daemon_id=self.daemon_id,
                ids=[o.task.id for o in failed],
                claims=[o.task.claims for o in failed],
                messages=[o.message or "Failed" for o in failed],
                errors=[o.error for o in failed],
                retry_delays=[o.retry_delay for o in failed],
                peak_memory=[o.peak_memory for o in failed],
            )
            written.update((r["id"], r["claims"]) for r in rows)
            final.extend(r["id"] for r in rows if r["status"] == Status.FAILED)
        notifying = {o.task.id for o in batch if self._notifies(o)}
        if any(task_id in notifying for task_id in final):
            # In this transaction: one delivery per outcome, none without it (docs/notifications.md)
            queries.notification_enqueue(conn, ids=[i for i in final if i in notifying])
        if snoozed:
            written.update(
                queries.task_snooze_many(
                    conn,
                    daemon_id=self.daemon_id,
                    ids=[o.task.id for o in snoozed],
                    claims=[o.task.claims for o in snoozed],
                    delays=[o.snooze_delay or 0.0 for o in snoozed],
                    messages=[o.message for o in snoozed],
                )
            )
        if back:
            written.update(
                queries.task_give_back_many(
                    conn,
                    daemon_id=self.daemon_id,
                    ids=[o.task.id for o in back],
                    claims=[o.task.claims for o in back],
                    messages=[o.message for o in back],
                )
            )
            queries.task_notify(conn)
        logs.write(conn, self.storage, self._discard_records(batch, written))
        touched = [o.task for o in batch if o.touched_progress]
        if touched:
            queries.progress_delete_many(
                conn,
                task_ids=[t.id for t in touched],
                claims=[t.claims for t in touched],
                daemon_id=self.daemon_id,
            )
        return written


def _unstorable(outcome: Outcome, exc: Exception | None) -> Outcome:
    """A final failure in place of an outcome the server refused to store; without ``exc``, the
    plainest one (a fixed message, no log record, no progress clean-up)."""
    if exc is None:
        message = "Failed: pgstask could not store the outcome"
        return Outcome(outcome.task, OutcomeKind.FAILED, message)
    why = describe(exc) if isinstance(exc, psycopg.Error) else f"{type(exc).__name__}: {exc}"
    message = storable(f"Failed: pgstask could not store the outcome: {why}")
    return Outcome(
        outcome.task,
        OutcomeKind.FAILED,
        message,
        error=message,
        logs=(LogRecord.make(outcome.task.id, "error", message),),
        touched_progress=outcome.touched_progress,
        peak_memory=outcome.peak_memory,
    )
