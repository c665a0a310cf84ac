"""What ``Client.create`` and ``create_many`` do with a task's ``notify`` targets
(docs/notifications.md): check them (``pgstask.notify``'s rule, and that the webhooks they name
exist), and write them to ``s_tasks.notify`` in the transaction that inserts the tasks, by a
statement of its own, so that the insert and the COPY of tasks without targets stay as they
are."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from pgstask import notify, queries
from pgstask.db import Conn
from pgstask.errors import InvalidTaskError, InvalidWebhookError
from pgstask.task import Task
from pgstask.task_spec import TaskSpec

Targets = dict[str, Any]


def targets(value: Any, where: str = "") -> Targets | None:
    """A task's ``notify``, checked; ``InvalidTaskError`` (prefixed with ``where``, an item's
    position) for a bad one."""
    try:
        return notify.check(value)
    except InvalidWebhookError as exc:
        raise InvalidTaskError(f"{where}{exc}") from None


def split(
    items: Sequence[Mapping[str, Any]],
) -> tuple[Sequence[Mapping[str, Any]], list[Targets | None] | None]:
    """``create_many``'s items without their ``notify`` key, and each one's checked targets;
    the items as they are and None when none has the key (the common case: one pass, no copy)."""
    if not any(isinstance(item, Mapping) and "notify" in item for item in items):
        return items, None
    bare: list[Mapping[str, Any]] = []
    found: list[Targets | None] = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping) and "notify" in item:
            found.append(targets(item["notify"], f"task #{i}: "))
            item = {k: v for k, v in item.items() if k != "notify"}
        else:
            found.append(None)
        bare.append(item)
    return bare, found


def webhooks_named(notifies: Sequence[Targets | None]) -> list[str]:
    """The webhooks the targets name, once each, sorted (to look up: ``webhook_names``)."""
    return sorted({name for n in notifies for name in notify.webhook_names(n)})


def check_found(missing: Sequence[str]) -> None:
    """``InvalidTaskError`` when ``webhook_names`` found a named webhook ``missing``."""
    if missing:
        raise InvalidTaskError(
            f"notify names no webhook {missing[0]!r}: add it first (`pgstask webhooks add`)"
        )


def check_webhooks_exist(conn: Conn, notifies: Sequence[Targets | None]) -> None:
    """``InvalidTaskError`` when a target names a webhook that does not exist."""
    names = webhooks_named(notifies)
    check_found(queries.webhook_names(conn, names=names) if names else [])


def matched(
    specs: Sequence[TaskSpec], created: Sequence[Task], notifies: Sequence[Targets | None]
) -> list[Targets | None]:
    """The targets of the tasks ``created`` from ``specs`` (parallel to ``notifies``), in the
    order of ``created``. The insert skips an item whose ``dedupe_key`` an incomplete task holds
    and returns the rest in order: a created task with a key is matched by its key, those
    without one in order."""
    by_key = {s.dedupe_key: n for s, n in zip(specs, notifies, strict=True) if s.dedupe_key}
    unkeyed = iter([n for s, n in zip(specs, notifies, strict=True) if not s.dedupe_key])
    return [by_key.get(t.dedupe_key) if t.dedupe_key else next(unkeyed, None) for t in created]


def set_targets(
    conn: Conn,
    specs: Sequence[TaskSpec],
    created: Sequence[Task],
    notifies: Sequence[Targets | None],
) -> list[Task]:
    """Write the targets of the tasks ``created`` from ``specs`` (``matched``); the tasks with
    their targets."""
    return set_in_order(conn, created, matched(specs, created, notifies))


def with_targets(
    tasks: Sequence[Task], notifies: Sequence[Targets | None]
) -> tuple[list[Task], dict[str, Any] | None]:
    """``tasks`` with ``notifies`` (parallel) set, and the parameters of
    ``task_set_notify_many`` that writes them (None: no task has targets)."""
    out = [
        task if value is None else dataclasses.replace(task, notify=value)
        for task, value in zip(tasks, notifies, strict=True)
    ]
    changed = [t for t in out if t.notify is not None]
    if not changed:
        return out, None
    return out, {"ids": [t.id for t in changed], "notifies": [Jsonb(t.notify) for t in changed]}


def set_in_order(
    conn: Conn, tasks: Sequence[Task], notifies: Sequence[Targets | None]
) -> list[Task]:
    """Write ``notifies`` (parallel to ``tasks``) to the tasks; the tasks with their targets."""
    out, params = with_targets(tasks, notifies)
    if params is not None:
        queries.task_set_notify_many(conn, **params)
    return out
