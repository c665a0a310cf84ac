"""What a valid task to create is: the rule of each field, coded once.

``check`` turns ``Client.create``'s arguments into a ``TaskSpec`` or raises ``InvalidTaskError``
with a message that says what to do; ``check_many`` does the same for ``create_many``'s items,
naming the item's position. The HTTP API and the CLI read their input their own way (JSON,
query strings, flags) and take the rules they check before the client from here:
``check_priority``, ``check_max_attempts``, the defaults and the limits.

The order of the checks is part of the contract: the first problem of a task is the one
reported, and its data is encoded last, once the cheaper fields passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from pgstask.db import json_text, text_problem
from pgstask.errors import InvalidTaskError
from pgstask.task import PRIORITIES, meta_problem, timestamp_problem
from pgstask.workers import registry

DEFAULT_PRIORITY = "normal"
DEFAULT_MAX_ATTEMPTS = 3
MIN_ATTEMPTS, MAX_ATTEMPTS = 1, 1000
#: Characters of an identifier or an action (their columns are ``varchar(255)``).
MAX_NAME = 255
MAX_META_BYTES = 1024 * 1024
MAX_DEDUPE_KEY = 255
#: Characters of a concurrency key (the bound of ``s_tasks_concurrency_key_check``).
MAX_CONCURRENCY_KEY = 255


class TaskSpec(NamedTuple):
    """A task to create, its fields checked. (A named tuple, not a frozen dataclass: one is
    built per item of a bulk enqueue, and a frozen dataclass's ``__init__`` cost 1.5 µs more,
    a quarter of the whole check.)"""

    identifier: str
    action: str
    #: The options as JSON text, as ``jsonb`` is sent it.
    data: str
    priority: str
    start_at: dt.datetime | None
    max_attempts: int
    user_id: int | None
    dedupe_key: str | None
    concurrency_key: str | None


FIELDS = frozenset(TaskSpec._fields)


def check(
    *,
    identifier: Any,
    action: Any,
    data: Any = None,
    priority: Any = DEFAULT_PRIORITY,
    start_at: Any = None,
    max_attempts: Any = DEFAULT_MAX_ATTEMPTS,
    user_id: Any = None,
    dedupe_key: Any = None,
    concurrency_key: Any = None,
) -> TaskSpec:
    """One task's fields, checked (``InvalidTaskError`` naming the first problem; an action an
    installed worker does not have is ``UnknownActionError``, data that does not match its
    options model ``InvalidOptionsError`` naming the fields)."""
    check_name("identifier", identifier)
    check_name("action", action)
    registry.check_action(identifier, action)  # only for workers this process defines
    if data is None:
        data = {}
    elif type(data) is not dict and not isinstance(data, Mapping):
        raise InvalidTaskError(f"data must be a JSON object (a dict), not {type(data).__name__}")
    priority = check_priority(priority)
    if start_at is not None:
        check_start_at(start_at)
    max_attempts = check_max_attempts(max_attempts)
    if user_id is not None:
        check_user_id(user_id)
    if dedupe_key is not None:
        check_dedupe_key(dedupe_key)
    if concurrency_key is not None:
        check_concurrency_key(concurrency_key)
    text = data_json(data if isinstance(data, dict) else dict(data))
    # Its options model, if it declares one, judges the JSON the action will be given.
    registry.check_options(identifier, action, text)
    return TaskSpec(
        identifier,
        action,
        text,
        priority,
        start_at,
        max_attempts,
        user_id,
        dedupe_key,
        concurrency_key,
    )


def check_many(items: Iterable[Mapping[str, Any]]) -> Iterator[TaskSpec]:
    """The checked fields of each ``create_many`` item (a mapping of ``check``'s arguments), one
    at a time; errors name the item's position (``task #3: …``)."""
    for i, item in enumerate(items):
        if type(item) is not dict and not isinstance(item, Mapping):
            raise InvalidTaskError(f"task #{i}: must be a mapping of create's arguments")
        if not FIELDS.issuperset(item):
            names = ", ".join(sorted(map(str, item.keys() - FIELDS)))
            raise InvalidTaskError(f"task #{i}: unknown field(s) {names}")
        try:
            yield check(
                identifier=item.get("identifier"),
                action=item.get("action"),
                data=item.get("data"),
                priority=item.get("priority", DEFAULT_PRIORITY),
                start_at=item.get("start_at"),
                max_attempts=item.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
                user_id=item.get("user_id"),
                dedupe_key=item.get("dedupe_key"),
                concurrency_key=item.get("concurrency_key"),
            )
        except InvalidTaskError as exc:
            raise InvalidTaskError(f"task #{i}: {exc}") from None


# --- the rule of each field ----------------------------------------------------------------------


def columns(specs: Sequence[TaskSpec]) -> dict[str, list[Any]]:
    """``specs`` as the parallel columns the batch inserts take (``task_insert_many``,
    ``task_replace_many``, ``task_insert_linked``), one list per parameter, for ``Client`` and
    ``AsyncClient`` alike."""
    return {
        "identifiers": [s.identifier for s in specs],
        "actions": [s.action for s in specs],
        "metas": [s.data for s in specs],
        "priorities": [s.priority for s in specs],
        "start_ats": [s.start_at for s in specs],
        "max_attempts": [s.max_attempts for s in specs],
        "started_by": [s.user_id for s in specs],
        "dedupe_keys": [s.dedupe_key for s in specs],
        "concurrency_keys": [s.concurrency_key for s in specs],
    }


def check_name(name: str, value: Any) -> None:
    """An identifier or an action: non-blank text PostgreSQL can store, up to 255 characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidTaskError(f"{name} must be a non-empty string, not {value!r}")
    if len(value) > MAX_NAME:
        raise InvalidTaskError(f"{name} is longer than {MAX_NAME} characters")
    check_storable(name, value)


def check_priority(value: Any, *, shown: Callable[[Any], str] = repr) -> str:
    """One of ``PRIORITIES``; ``shown`` prints a wrong value in the message."""
    if value not in PRIORITIES:
        raise InvalidTaskError(f"unknown priority {shown(value)}; use high, normal or low")
    return str(value)


def check_start_at(value: Any) -> None:
    """A timezone-aware ``datetime`` that a task's timestamp can hold."""
    if not isinstance(value, dt.datetime):
        raise InvalidTaskError(f"start_at must be a datetime, not {value!r}")
    if value.utcoffset() is None:
        raise InvalidTaskError("start_at must be timezone-aware (e.g. datetime.now(UTC))")
    problem = timestamp_problem(value)
    if problem:
        raise InvalidTaskError(f"start_at {problem}, not {value.isoformat()}")


def check_max_attempts(value: Any) -> int:
    """A whole number from ``MIN_ATTEMPTS`` to ``MAX_ATTEMPTS``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTaskError(f"max_attempts must be a whole number, not {value!r}")
    if not MIN_ATTEMPTS <= value <= MAX_ATTEMPTS:
        raise InvalidTaskError(
            f"max_attempts must be between {MIN_ATTEMPTS} and {MAX_ATTEMPTS}, not {value}"
        )
    return value


def check_user_id(value: Any) -> None:
    """A whole number that fits ``bigint``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTaskError(f"user_id must be a whole number, not {value!r}")
    if not -(2**63) <= value < 2**63:
        raise InvalidTaskError("user_id is out of range (a 64-bit integer)")


def check_dedupe_key(value: Any) -> None:
    """Non-empty text PostgreSQL can store, up to ``MAX_DEDUPE_KEY`` characters."""
    if not isinstance(value, str) or not value:
        raise InvalidTaskError("dedupe_key must be a non-empty string")
    check_storable("dedupe_key", value)
    if len(value) > MAX_DEDUPE_KEY:
        # A longer key could pass the btree's row limit (2,704 bytes) of its unique index.
        raise InvalidTaskError(
            f"dedupe_key is longer than {MAX_DEDUPE_KEY} characters; use a hash of a long key"
        )


#: The longest throttle window, in seconds (366 days; pgstask_enqueue has the same bound).
MAX_THROTTLE = 366 * 86400.0


def check_window(dedupe_key: Any, throttle: Any, replace: Any) -> float | None:
    """The de-duplication window of a create (docs/dedupe.md): ``throttle`` in seconds (None:
    none), checked; ``replace`` a bool; either needs a ``dedupe_key``."""
    if not isinstance(replace, bool):
        raise InvalidTaskError(f"replace must be true or false, not {replace!r}")
    if throttle is not None:
        if isinstance(throttle, bool) or not isinstance(throttle, int | float):
            raise InvalidTaskError(f"throttle must be a number of seconds, not {throttle!r}")
        if not 0 < throttle <= MAX_THROTTLE:  # NaN fails both comparisons
            raise InvalidTaskError(
                f"throttle must be more than 0 and at most {MAX_THROTTLE:.0f} seconds (366 "
                f"days), not {throttle!r}"
            )
    if (throttle is not None or replace) and dedupe_key is None:
        raise InvalidTaskError(
            "throttle and replace need a dedupe_key: they apply to the tasks that share it"
        )
    return None if throttle is None else float(throttle)


def check_concurrency_key(value: Any) -> None:
    """Text PostgreSQL can store that is not blank, up to ``MAX_CONCURRENCY_KEY`` characters (what
    ``s_tasks_concurrency_key_check`` allows: a blank key would group tasks by an invisible
    name)."""
    if not isinstance(value, str):
        raise InvalidTaskError(f"concurrency_key must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidTaskError("concurrency_key must not be empty or blank; leave it out for none")
    check_storable("concurrency_key", value)
    if len(value) > MAX_CONCURRENCY_KEY:
        raise InvalidTaskError(
            f"concurrency_key is longer than {MAX_CONCURRENCY_KEY} characters; use a shorter key "
            "(e.g. a hash of a long one)"
        )


def data_json(value: dict[str, Any]) -> str:
    """A task's data as the JSON text ``jsonb`` accepts and pgstask can read back, at most
    ``MAX_META_BYTES`` long."""
    problem = meta_problem(value)
    if problem:
        raise InvalidTaskError(f"data {problem}")
    try:
        text = json_text(value)
    except ValueError as exc:
        raise InvalidTaskError(f"data is not JSON-serialisable: {exc}") from None
    if len(text.encode()) > MAX_META_BYTES:
        raise InvalidTaskError(f"data is larger than {MAX_META_BYTES} bytes once encoded as JSON")
    return text


def check_storable(name: str, value: str) -> None:
    """Text a ``text`` column accepts (no NUL, no lone surrogate)."""
    problem = text_problem(value)
    if problem:
        raise InvalidTaskError(f"{name} {problem.removeprefix('it ')}")
