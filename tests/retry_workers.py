"""Workers of the retry tests (tests/test_retry.py): actions that snooze, ask for a retry or
raise a chosen exception, in a thread and in a child process, with and without retry settings.

Every action appends ``<task id> <attempt> <pid>`` to ``executions.log`` (``tests.sample_workers
.record``), so tests can count runs across processes.
"""

from __future__ import annotations

import time
from typing import Any

from pgstask import BaseWorker, Retry, Snooze, Task
from tests.sample_workers import record


class QuotaError(ConnectionError):
    """A subclass the retry rules match through its base class, or by its dotted path."""


ERRORS: dict[str, type[BaseException]] = {
    "ValueError": ValueError,
    "KeyError": KeyError,
    "RuntimeError": RuntimeError,
    "ConnectionError": ConnectionError,
    "QuotaError": QuotaError,
}


class ControlWorker(BaseWorker):
    """No retry settings of its own: the global ones, or what ``s_workers.settings`` says."""

    identifier = "control"

    def task_snooze(self, task: Task, options: dict[str, Any]) -> None:
        """Snooze ``seconds`` until the task has snoozed ``times`` times, then complete."""
        record(self, task)
        if task.snoozes < int(options.get("times", 1)):
            raise Snooze(options.get("seconds", 0), options.get("message"))
        self.mark_finished(task, result={"snoozes": task.snoozes, "attempts": task.attempts})

    def task_retry(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        raise Retry(options.get("delay"), options.get("message"))

    def task_raise(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        raise ERRORS[options["error"]]("raised on purpose")

    def task_bad_snooze(self, task: Task, options: dict[str, Any]) -> None:
        """Snooze with a bad value (``nan``/``inf`` given as text), or one changed after it was
        made (``patched``)."""
        record(self, task)
        seconds = options["seconds"]
        if seconds in ("nan", "inf"):
            seconds = float(seconds)
        if options.get("patched"):
            snooze = Snooze(1)
            snooze.seconds = seconds
            raise snooze
        raise Snooze(seconds)

    def task_bad_retry(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        raise Retry(delay=options["delay"])

    def task_spin(self, task: Task, options: dict[str, Any]) -> None:
        """Report progress until stopped (a timeout)."""
        record(self, task)
        while True:
            self.push_progress(task, message="spinning")
            time.sleep(0.02)


class ControlProcessWorker(ControlWorker):
    """The same actions in a child process."""

    identifier = "control_process"
    settings = {"isolation": "process"}


STRICT = {
    "retry_base_delay": 1000,
    "retry_max_delay": 1000,
    "retry_jitter": 0,
    "retry_on": ["ConnectionError"],
    "fail_on": ["ValueError"],
    "max_snoozes": 2,
}


class StrictWorker(ControlWorker):
    """Retry settings in its class defaults: a fixed 1000 s backoff, only ``ConnectionError``s
    (and subclasses) retried, ``ValueError`` failed at once, at most 2 snoozes."""

    identifier = "strict"
    settings = STRICT


class StrictProcessWorker(ControlWorker):
    """The same rules in a child process."""

    identifier = "strict_process"
    settings = {**STRICT, "isolation": "process"}
