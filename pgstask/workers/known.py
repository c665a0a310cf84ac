"""The worker classes this process has defined, by identifier; ``check_action`` and
``check_options``.

``BaseWorker.__init_subclass__`` hands every subclass with an identifier to ``remember``, however
its module was imported: ``check_action`` refuses a task whose worker this process knows but whose
action none of its classes has, ``check_options`` one whose data does not match the options model
that action declares (``pgstask.workers.options``). An identifier it does not know is accepted:
a daemon on another host may run it. This module sits below ``workers/base.py`` (it knows classes
only as classes), so that ``BaseWorker`` can remember its subclasses without importing the
registry, which imports it.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from typing import Any

from pgstask.errors import InvalidOptionsError, UnknownActionError
from pgstask.workers.actions import action_key, action_methods, action_name
from pgstask.workers.options import OptionsModel, model_of

# identifier → the classes of this process that have it (weakly: a class may be dropped again).
_defined: dict[str, weakref.WeakSet[type]] = {}
# (identifier, action) pairs check_action accepted; emptied when a class is defined.
_accepted: set[tuple[str, str]] = set()
_ACCEPTED_MAX = 10_000
# (identifier, action) → the options models of its classes (None: one of them takes any data);
# emptied when a class is defined.
_models: dict[tuple[str, str], tuple[OptionsModel, ...] | None] = {}


def remember(cls: type, identifier: object) -> None:
    """Make ``cls``, a worker class with ``identifier``, known to ``check_action``."""
    if isinstance(identifier, str) and identifier:
        _defined.setdefault(identifier, weakref.WeakSet()).add(cls)
        _accepted.clear()
        _models.clear()


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


def check_options(identifier: str, action: str, data: Mapping[str, Any] | str) -> None:
    """``InvalidOptionsError`` (naming the fields: ``data.count: …``) if this process knows
    worker classes with ``identifier`` whose method for ``action`` declares an options model,
    and ``data`` (a mapping, or its JSON text, decoded only when a model is to judge it)
    matches none of those models. An identifier it does not know passes, and so does an action
    that one of its classes takes without a model. ``ConfigurationError`` when a model cannot
    be resolved (``options.model_of``)."""
    pair = (identifier, action)
    try:
        models = _models[pair]
    except KeyError:
        models = _models_of(identifier, action)
        if len(_models) >= _ACCEPTED_MAX:
            _models.clear()
        _models[pair] = models
    if not models:
        return
    given: Mapping[str, Any] = json.loads(data) if isinstance(data, str) else data
    first: InvalidOptionsError | None = None
    for model in models:
        try:
            model.build(given)
            return
        except InvalidOptionsError as exc:
            first = first or exc
    assert first is not None
    raise first


def _models_of(identifier: str, action: str) -> tuple[OptionsModel, ...] | None:
    key = action_key(action)
    found: list[OptionsModel] = []
    for cls in list(_defined.get(identifier, ())):
        method = action_methods(cls).get(key)
        if method is None:
            continue
        model = model_of(cls, method)
        if model is None:
            return None
        found.append(model)
    return tuple(found) or None
