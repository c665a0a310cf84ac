"""Notification targets: what a valid ``notify`` setting of a worker or a task is.

A ``notify`` value names who is told when a task finishes::

    {"webhooks": ["ops-hook"], "emails": ["ops@example.com"], "on": ["failed"]}

``webhooks`` names rows of ``s_webhooks``; ``emails`` are addresses; ``on`` the outcomes
(``completed``, ``failed``; both when left out). A worker's ``notify`` (a key of its
``settings``: the class's default, overridable in ``s_workers.settings``) and a task's own
(``s_tasks.notify``) both count: each outcome is delivered once to every target either names for
it (docs/notifications.md).

``check`` gives the value as it is stored, or raises ``InvalidWebhookError`` saying what is
wrong; ``webhook_names`` lists the webhooks it names, for the client to check they exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pgstask.errors import InvalidWebhookError, shown
from pgstask.webhooks import EVENTS, check_name

KEYS = ("webhooks", "emails", "on")
#: Targets of each kind in one ``notify`` value.
MAX_TARGETS = 20
MAX_ADDRESS = 254
#: The identifiers of the built-in delivery workers; their own tasks notify nobody.
WEBHOOK_WORKER = "pgstask.webhook"
EMAIL_WORKER = "pgstask.email"

_ADDRESS = re.compile(r"[^\s@,;<>\"()\[\]\\]{1,64}@[^\s@,;<>\"()\[\]\\]+\.[^\s@,;<>\"()\[\]\\]+")


def check(value: Any, *, where: str = "notify") -> dict[str, list[str]] | None:
    """``value`` as it is stored (lists de-duplicated, ``on`` in ``EVENTS``' order), or None for
    None; ``InvalidWebhookError`` starting with ``where`` for anything else."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidWebhookError(
            f'{where} must be an object such as {{"webhooks": ["ops"], "on": ["failed"]}}, '
            f"not {shown(value)}"
        )
    unknown = sorted(str(k) for k in value if k not in KEYS)
    if unknown:
        raise InvalidWebhookError(
            f"{where}: unknown key(s) {', '.join(unknown)}; use {', '.join(KEYS)}"
        )
    webhooks = _texts(value.get("webhooks"), f"{where}.webhooks", "webhook names")
    for name in webhooks:
        try:
            check_name(name)
        except InvalidWebhookError as exc:
            raise InvalidWebhookError(f"{where}.webhooks: {exc}") from None
    emails = _texts(value.get("emails"), f"{where}.emails", "email addresses")
    for address in emails:
        if len(address) > MAX_ADDRESS or not _ADDRESS.fullmatch(address):
            raise InvalidWebhookError(
                f"{where}.emails: {shown(address)} is not an email address such as ops@example.com"
            )
    if not webhooks and not emails:
        raise InvalidWebhookError(
            f"{where} names no target: give webhooks (names from `pgstask webhooks list`) or emails"
        )
    out: dict[str, list[str]] = {}
    if webhooks:
        out["webhooks"] = webhooks
    if emails:
        out["emails"] = emails
    on = value.get("on")
    if on is not None:
        events = _texts(on, f"{where}.on", "outcomes")
        wrong = [e for e in events if e not in EVENTS]
        if wrong or not events:
            raise InvalidWebhookError(
                f"{where}.on must list {' and/or '.join(EVENTS)}"
                + (f", not {shown(wrong[0])}" if wrong else "")
            )
        out["on"] = [e for e in EVENTS if e in events]
    return out


def check_setting(settings: Mapping[str, Any], identifier: str) -> dict[str, list[str]] | None:
    """The ``notify`` key of worker ``identifier``'s settings, checked (a JSON null or no key:
    None); ``ValueError`` naming the worker, as the other worker settings' checks raise."""
    try:
        return check(settings.get("notify"), where=f"worker {identifier!r} setting notify")
    except InvalidWebhookError as exc:
        raise ValueError(str(exc)) from None


def webhook_names(value: Mapping[str, Any] | None) -> list[str]:
    """The webhooks a checked ``notify`` value names."""
    return list((value or {}).get("webhooks", []))


def defaults_of(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``notify`` part of a worker class's settings (written to ``s_workers.defaults``, so
    that the daemon rescuing a task of a worker it does not run knows the class's targets)."""
    return {"notify": settings["notify"]} if settings.get("notify") is not None else {}


def _texts(value: Any, where: str, what: str) -> list[str]:
    """A list of strings, each once, in the order given (None: empty)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidWebhookError(f"{where} must be a list of {what}, not {shown(value)}")
    if not all(isinstance(v, str) for v in value):
        raise InvalidWebhookError(f"{where} must be a list of {what} (text), not {shown(value)}")
    if len(value) > MAX_TARGETS:
        raise InvalidWebhookError(f"{where} lists more than {MAX_TARGETS} {what}")
    return list(dict.fromkeys(value))
