"""Finding worker classes: the ``pgstask.workers`` entry-point group and ``PGSTASK_WORKERS``.

An entry point names a worker class (``demo = "pkg.module:DemoWorker"``) or a module, whose
``BaseWorker`` subclasses with an identifier are all taken. ``PGSTASK_WORKERS`` lists modules the
same way. Two classes with one identifier are a configuration error: the daemon would not know
which to run.

``register_workers`` writes the rows of worker classes in ``s_workers``; the daemon and the client
both register through it. ``check_action`` (from ``pgstask.workers.known``) refuses a task whose
worker this process defines but whose action none of its classes has, ``check_options`` one whose
data does not match the options model of that action.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from psycopg.types.json import Jsonb

from pgstask import limits, notify, queries
from pgstask.db import Conn
from pgstask.errors import ConfigurationError
from pgstask.settings import Settings
from pgstask.workers import notifiers
from pgstask.workers.base import BaseWorker
from pgstask.workers.known import check_action as check_action  # Client.create checks here
from pgstask.workers.known import check_options as check_options

GROUP = "pgstask.workers"
_log = logging.getLogger(__name__)

WorkerClasses = dict[str, type[BaseWorker]]


def class_path(cls: type) -> str:
    """``module:QualName``, the form stored in ``s_workers.class``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str) -> type[BaseWorker]:
    """The worker class at ``module:QualName``; raises whatever importing it raises, and
    ``ConfigurationError`` when the path does not name a ``BaseWorker`` subclass."""
    module_name, _, qualname = path.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if inspect.isclass(obj) and issubclass(obj, BaseWorker):
        return obj
    raise ConfigurationError(f"{path} is not a BaseWorker subclass")


def load_class(path: str) -> type[BaseWorker] | None:
    """The worker class at ``module:QualName``, or None if it cannot be imported any more."""
    try:
        return import_class(path)
    except Exception:  # an orphan may fail to import in any way
        return None


def _workers_in(module: ModuleType) -> list[type[BaseWorker]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseWorker)
        and obj.__module__ == module.__name__
        and obj.identifier
    ]


def _add(found: WorkerClasses, cls: type[BaseWorker]) -> None:
    ident = cls.check_identifier()
    other = found.get(ident)
    if other is not None and other is not cls:
        raise ConfigurationError(
            f"two worker classes have the identifier {ident!r}: {class_path(other)} and "
            f"{class_path(cls)}; give one of them another identifier"
        )
    found[ident] = cls


def discover(modules: Iterable[str] = (), *, entry_point_group: str = GROUP) -> WorkerClasses:
    """Every worker class installed (entry points) or named in ``modules``."""
    found: WorkerClasses = {}
    for ep in entry_points(group=entry_point_group):
        try:
            obj = ep.load()
        except ConfigurationError as exc:  # a worker class pgstask refuses: not to be skipped
            raise ConfigurationError(f"worker entry point {ep.name} ({ep.value}): {exc}") from exc
        except Exception as exc:
            _log.warning("skipping worker entry point %s (%s): %s", ep.name, ep.value, exc)
            continue
        if inspect.ismodule(obj):
            for cls in _workers_in(obj):
                _add(found, cls)
        elif inspect.isclass(obj) and issubclass(obj, BaseWorker):
            _add(found, obj)
        else:
            _log.warning("entry point %s (%s) is not a worker class or module", ep.name, ep.value)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise ConfigurationError(
                f"cannot import worker module {name!r} (from PGSTASK_WORKERS): {exc}"
            ) from exc
        classes = _workers_in(module)
        if not classes:
            _log.warning("worker module %s defines no BaseWorker subclass with an identifier", name)
        for cls in classes:
            _add(found, cls)
    return dict(sorted(found.items()))


def daemon_workers(settings: Settings) -> WorkerClasses:
    """The workers a daemon runs: those ``discover`` finds (entry points and
    ``PGSTASK_WORKERS``) and the built-in delivery workers, unless ``PGSTASK_NOTIFICATIONS=0``
    (docs/notifications.md): ``pgstask.webhook``, and ``pgstask.email`` where an SMTP server is
    configured (``PGSTASK_SMTP_HOST``): a daemon that could not send an email leaves it to one
    that can, and claims for one worker less."""
    found = discover(settings.worker_modules)
    if settings.notifications:
        for cls in notifiers.BUILTIN.values():
            if cls is not notifiers.EmailWorker or settings.smtp_host:
                _add(found, cls)
    return dict(sorted(found.items()))


def register_workers(
    conn: Conn, classes: Iterable[type[BaseWorker]], *, active: bool
) -> list[dict[str, Any]]:
    """Insert the rows of new worker classes (``active`` for those only) and refresh class path,
    metadata and action names of known ones; returns ``identifier``/``inserted`` per change."""
    items = list(classes)
    if not items:
        return []
    for worker in items:
        try:
            limits.check(worker.settings)
            notify.check_setting(worker.settings, worker.identifier)
        except ValueError as exc:
            where = f"worker {worker.identifier!r} ({class_path(worker)})"
            raise ConfigurationError(f"{where}: {exc}") from None
    return queries.worker_register_many(
        conn,
        active=active,
        identifiers=[w.identifier for w in items],
        classes=[class_path(w) for w in items],
        scopes=[w.scope for w in items],
        titles=[w.display_title() for w in items],
        descriptions=[w.description for w in items],
        icons=[w.icon for w in items],
        actions=[Jsonb(w.actions()) for w in items],
        defaults=[
            Jsonb({**limits.defaults_of(w.settings), **notify.defaults_of(w.settings)})
            for w in items
        ],
    )
