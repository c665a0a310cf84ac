"""Finding worker classes: the ``pgstask.workers`` entry-point group and ``PGSTASK_WORKERS``.

An entry point names a worker class (``demo = "pkg.module:DemoWorker"``) or a module, whose
``BaseWorker`` subclasses with an identifier are all taken. ``PGSTASK_WORKERS`` lists modules the
same way. Two classes with one identifier are a configuration error: the daemon would not know
which to run.

The registry also remembers every ``BaseWorker`` subclass with an identifier that this process
has defined, however it was imported (``BaseWorker.__init_subclass__`` calls ``remember``):
``check_action`` refuses a task whose worker this process knows but whose action none of its
classes has. An identifier it does not know is accepted: a daemon on another host may run it.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import weakref
from collections.abc import Iterable
from importlib.metadata import entry_points
from types import ModuleType

from pgstask.errors import ConfigurationError, UnknownActionError
from pgstask.workers.actions import action_key, action_methods
from pgstask.workers.base import BaseWorker

GROUP = "pgstask.workers"
_log = logging.getLogger(__name__)

WorkerClasses = dict[str, type[BaseWorker]]

# identifier → the classes of this process that have it (weakly: a class may be dropped again).
_defined: dict[str, weakref.WeakSet[type[BaseWorker]]] = {}
# (identifier, action) pairs check_action accepted; emptied when a class is defined.
_accepted: set[tuple[str, str]] = set()
_ACCEPTED_MAX = 10_000


def remember(cls: type[BaseWorker]) -> None:
    """Make ``cls`` known to ``check_action`` (``BaseWorker.__init_subclass__`` calls it)."""
    ident = cls.identifier
    if isinstance(ident, str) and ident:
        _defined.setdefault(ident, weakref.WeakSet()).add(cls)
        _accepted.clear()


def check_action(identifier: str, action: str) -> None:
    """``UnknownActionError`` if this process knows worker classes with ``identifier`` and none
    of them has ``action``; an identifier it does not know passes (another host may run it)."""
    classes = _defined.get(identifier)
    if not classes or (identifier, action) in _accepted:
        return
    key = action_key(action)
    known = list(classes)
    if not known or any(key in action_methods(cls) for cls in known):
        if len(_accepted) >= _ACCEPTED_MAX:
            _accepted.clear()
        _accepted.add((identifier, action))
        return
    names = sorted({name for cls in known for name in cls.actions()})
    raise UnknownActionError(
        f"worker {identifier!r} has no action {action!r} (its actions: "
        f"{', '.join(names) or 'none'})"
    )


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
