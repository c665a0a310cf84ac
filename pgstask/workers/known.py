"""The worker classes this process has defined, by identifier, and ``check_action``.

``BaseWorker.__init_subclass__`` hands every subclass with an identifier to ``remember``, however
its module was imported: ``check_action`` refuses a task whose worker this process knows but whose
action none of its classes has. An identifier it does not know is accepted: a daemon on another
host may run it. This module sits below ``workers/base.py`` (it knows classes only as classes), so
that ``BaseWorker`` can remember its subclasses without importing the registry, which imports it.
"""

from __future__ import annotations

import weakref

from pgstask.errors import UnknownActionError
from pgstask.workers.actions import action_key, action_methods, action_name

# identifier → the classes of this process that have it (weakly: a class may be dropped again).
_defined: dict[str, weakref.WeakSet[type]] = {}
# (identifier, action) pairs check_action accepted; emptied when a class is defined.
_accepted: set[tuple[str, str]] = set()
_ACCEPTED_MAX = 10_000


def remember(cls: type, identifier: object) -> None:
    """Make ``cls``, a worker class with ``identifier``, known to ``check_action``."""
    if isinstance(identifier, str) and identifier:
        _defined.setdefault(identifier, weakref.WeakSet()).add(cls)
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
    names = sorted({action_name(m) for cls in known for m in action_methods(cls).values()})
    raise UnknownActionError(
        f"worker {identifier!r} has no action {action!r} (its actions: "
        f"{', '.join(names) or 'none'})"
    )
