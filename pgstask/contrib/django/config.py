"""The ``OPTIONS`` of a ``PgstaskBackend`` and how Django's task fields map onto pgstask's
(docs/django.md has the table):

- ``queue_name`` → the worker: ``django:<queue>`` runs the queue's ``def`` functions,
  ``django:<queue>:async`` its ``async def`` ones, so a daemon serves the queues whose workers
  it loads (``manage.py pgstask_daemon --queue``) and each queue has pgstask's per-worker
  settings (timeout, isolation, retries, limits);
- ``priority`` (-100..100) → ``high`` above 0, ``normal`` at 0, ``low`` below 0;
- ``run_after`` → ``start_at`` (a naive one read in Django's ``TIME_ZONE``);
- the result id → a UUID chosen at enqueue, the task's ``dedupe_key`` ``django:<uuid>``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pgstask import task_spec
from pgstask.errors import ConfigurationError, InvalidTaskError

#: The prefix of the identifiers of the workers that run Django's task functions.
PREFIX = "django:"
#: What a queue name may be: it becomes part of a worker identifier and of a class name.
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
KNOWN_OPTIONS = frozenset({"DATABASE", "DSN", "MAX_ATTEMPTS"})
#: The one action of those workers.
ACTION = "run"


@dataclasses.dataclass(frozen=True, slots=True)
class BackendConfig:
    """A ``PgstaskBackend``'s settings: the Django database whose transaction an enqueue joins
    (``DATABASE``, default ``"default"``), pgstask's database when it is another one (``DSN``),
    the attempts of each task (``MAX_ATTEMPTS``, pgstask's default 3), and its queues."""

    alias: str
    database: str = "default"
    dsn: str | None = None
    max_attempts: int = task_spec.DEFAULT_MAX_ATTEMPTS
    queues: frozenset[str] = frozenset({"default"})

    @classmethod
    def from_params(cls, alias: str, params: Mapping[str, Any]) -> BackendConfig:
        """The settings of ``TASKS[alias]``; ``ConfigurationError`` names what is wrong."""
        where = f"TASKS[{alias!r}]"
        options = params.get("OPTIONS", {}) or {}
        if not isinstance(options, Mapping):
            raise ConfigurationError(f"{where}['OPTIONS'] must be a dict")
        unknown = sorted(set(options) - KNOWN_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"{where}['OPTIONS'] has unknown keys {unknown}; pgstask's backend reads "
                f"{sorted(KNOWN_OPTIONS)}"
            )
        database = options.get("DATABASE", "default")
        if not isinstance(database, str) or not database:
            raise ConfigurationError(f"{where}['OPTIONS']['DATABASE'] must be a database alias")
        dsn = options.get("DSN")
        if dsn is not None and (not isinstance(dsn, str) or not dsn.strip()):
            raise ConfigurationError(f"{where}['OPTIONS']['DSN'] must be a libpq DSN or URI")
        try:
            attempts = task_spec.check_max_attempts(
                options.get("MAX_ATTEMPTS", task_spec.DEFAULT_MAX_ATTEMPTS)
            )
        except InvalidTaskError as exc:
            raise ConfigurationError(f"{where}['OPTIONS']['MAX_ATTEMPTS']: {exc}") from None
        queues = check_queues(where, params.get("QUEUES", ["default"]))
        return cls(alias, database, dsn, attempts, queues)


def check_queues(where: str, queues: Any) -> frozenset[str]:
    """The queue names of ``QUEUES``: a non-empty list of names pgstask can make workers of."""
    if isinstance(queues, str) or not isinstance(queues, Iterable):
        raise ConfigurationError(f"{where}['QUEUES'] must be a list of queue names")
    names = list(queues)
    if not names:
        raise ConfigurationError(
            f"{where}['QUEUES'] is empty: pgstask makes a worker per queue, so it must list "
            'them (the default is ["default"])'
        )
    for name in names:
        if not isinstance(name, str) or not QUEUE_NAME.match(name):
            raise ConfigurationError(
                f"{where}['QUEUES'] has the queue name {name!r}; a queue name is 1-100 "
                "letters, digits, '_' or '-', starting with a letter or digit"
            )
    return frozenset(names)


def identifier(queue: str, *, asynchronous: bool) -> str:
    """The worker that runs the functions of ``queue``: ``django:<queue>`` for ``def`` ones,
    ``django:<queue>:async`` for ``async def`` ones."""
    return f"{PREFIX}{queue}:async" if asynchronous else f"{PREFIX}{queue}"


def priority(value: int) -> str:
    """pgstask's priority for Django's (-100..100): ``high`` above 0, ``low`` below."""
    if value > 0:
        return "high"
    return "low" if value < 0 else "normal"


def start_at(run_after: dt.datetime | None, default_zone: dt.tzinfo) -> dt.datetime | None:
    """``run_after`` as an aware ``start_at`` (a naive one is in ``default_zone``)."""
    if run_after is None or run_after.tzinfo is not None:
        return run_after
    return run_after.replace(tzinfo=default_zone)


def dedupe_key(result_id: str) -> str:
    """The ``dedupe_key`` that names the task of a Django result id."""
    return f"{PREFIX}{result_id}"
