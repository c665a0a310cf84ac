"""Action names → worker methods, by sTask's rule.

sTask strips ``-``, ``_`` and spaces from the action and looks up ``task<Action>``
case-insensitively, so ``sync_stock``, ``sync-stock``, ``Sync Stock``, ``SYNC_STOCK`` and
``syncStock`` all reach the same method. In Python the method is ``task_sync_stock``; both sides
are reduced to the same key (lower case, no separators) for the lookup.
"""

from __future__ import annotations

import functools
import inspect
import re
import weakref

PREFIX = "task_"
_SEPARATORS = re.compile(r"[-_ ]+")


@functools.lru_cache(maxsize=4096)
def action_key(action: str) -> str:
    """The lookup key of an action name (``Sync-Stock`` → ``syncstock``); remembered for the
    last 4,096 names, since the runner looks up the action of every task it runs."""
    return _SEPARATORS.sub("", action.strip()).lower()


def method_key(method_name: str) -> str | None:
    """The lookup key of a method name, or None if it is not an action method."""
    if not method_name.startswith(PREFIX) or len(method_name) == len(PREFIX):
        return None
    return action_key(method_name[len(PREFIX) :])


_cache: weakref.WeakKeyDictionary[type, dict[str, str]] = weakref.WeakKeyDictionary()


def action_methods(cls: type) -> dict[str, str]:
    """``{key: method name}`` for every public ``task_*`` method of ``cls`` (MRO included).

    Cached per class: the runner resolves an action for every task it runs."""
    cached = _cache.get(cls)
    if cached is not None:
        return cached
    found: dict[str, str] = {}
    for name in dir(cls):
        key = method_key(name)
        if key and callable(getattr(cls, name, None)):
            found.setdefault(key, name)
    _cache[cls] = found
    return found


_async_cache: weakref.WeakKeyDictionary[type, frozenset[str]] = weakref.WeakKeyDictionary()


def async_methods(cls: type) -> frozenset[str]:
    """The names of the action methods of ``cls`` that are ``async def``; cached per class, as
    ``action_methods`` (the runner asks for every task it runs)."""
    cached = _async_cache.get(cls)
    if cached is None:
        cached = frozenset(
            name
            for name in action_methods(cls).values()
            if inspect.iscoroutinefunction(getattr(cls, name))
        )
        _async_cache[cls] = cached
    return cached


def action_name(method_name: str) -> str:
    """The canonical action name of a method (``task_sync_stock`` → ``sync_stock``)."""
    return method_name[len(PREFIX) :]
