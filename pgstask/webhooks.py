"""Webhooks: what a valid one is, and how a delivery is signed and verified.

A webhook is a row of ``s_webhooks`` (revision 0011): a ``name`` that workers' and tasks'
``notify`` targets refer to, the ``url`` it is POSTed to (http or https), the ``events`` it takes
(``completed``, ``failed``), a ``secret`` and whether it is ``active``. ``check`` turns its fields
into a ``Webhook`` or raises ``InvalidWebhookError`` saying which field is wrong and how.

Every delivery is signed: ``signature(secret, timestamp, body)`` is HMAC-SHA256 over
``"<timestamp>.<body>"``, sent as ``v1=<hex>`` in ``X-Pgstask-Signature`` beside the Unix time in
``X-Pgstask-Timestamp``. A receiver checks both with ``verify`` (or the ten lines of
docs/notifications.md): a signature that does not match, or a timestamp further than
``tolerance`` seconds from its clock (a replay), is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pgstask.errors import InvalidWebhookError, shown

#: The outcomes a webhook (and a ``notify`` target) can be told of.
EVENTS = ("completed", "failed")
#: The fields of a webhook besides its name.
FIELDS = ("url", "events", "secret", "active", "description")
MAX_NAME = 100
MAX_URL = 2000
MIN_SECRET, MAX_SECRET = 16, 200
MAX_DESCRIPTION = 1000
#: Seconds a receiver accepts a delivery's timestamp away from its own clock, by default.
TOLERANCE = 300

TIMESTAMP_HEADER = "X-Pgstask-Timestamp"
SIGNATURE_HEADER = "X-Pgstask-Signature"
EVENT_HEADER = "X-Pgstask-Event"
DELIVERY_HEADER = "X-Pgstask-Delivery"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_SECRET = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no blanks


@dataclass(frozen=True, slots=True)
class Webhook:
    """A checked webhook, as ``s_webhooks`` stores it."""

    name: str
    url: str
    events: tuple[str, ...]
    secret: str
    active: bool = True
    description: str = ""


def check(name: Any, fields: Mapping[str, Any]) -> Webhook:
    """Webhook ``name`` from its ``fields`` (``url`` required; ``events`` both by default,
    ``secret`` made when not given, ``active`` true, ``description`` empty; None meaning the
    default); ``InvalidWebhookError`` naming the webhook and the field otherwise."""
    check_name(name)
    unknown = sorted(str(k) for k in fields if k not in FIELDS)
    if unknown:
        raise InvalidWebhookError(
            f"webhook {name!r}: unknown field(s) {', '.join(unknown)}; use {', '.join(FIELDS)}"
        )
    try:
        active = fields.get("active")
        if active is not None and not isinstance(active, bool):
            raise InvalidWebhookError(f"active must be true or false, not {shown(active)}")
        description = fields.get("description")
        description = "" if description is None else description
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidWebhookError(
                f"description must be text of at most {MAX_DESCRIPTION} chars"
            )
        secret = fields.get("secret")
        return Webhook(
            name,
            check_url(fields.get("url")),
            check_events(fields.get("events")),
            new_secret() if secret is None else check_secret(secret),
            True if active is None else active,
            description.replace("\x00", ""),
        )
    except InvalidWebhookError as exc:
        raise InvalidWebhookError(f"webhook {name!r}: {exc}") from None


def check_name(name: Any) -> str:
    """A webhook's name: a letter or digit, then letters, digits and ``_ . : -``, up to
    ``MAX_NAME`` characters."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise InvalidWebhookError(
            f"a webhook's name is a letter or digit followed by letters, digits, _ . : or -, "
            f"up to {MAX_NAME} characters, not {shown(name)}"
        )
    return name


def check_url(url: Any) -> str:
    """An absolute http or https URL with a host, without credentials or blanks."""
    if not isinstance(url, str) or not url:
        raise InvalidWebhookError(f"url must be an http(s) URL, not {shown(url)}")
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidWebhookError(
            f"url must be an http(s) URL of at most {MAX_URL} characters without blanks or "
            f"control characters, not {shown(url)}"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookError(f"url {shown(url)} does not parse: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidWebhookError(
            f"url must use http or https, not {parts.scheme or 'no scheme'!r} ({shown(url)}); "
            "e.g. https://hooks.example.com/pgstask"
        )
    if not parts.hostname:
        raise InvalidWebhookError(f"url {shown(url)} has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookError(
            "url must not hold credentials (user:password@): the receiver checks the signature"
        )
    if port == 0:
        raise InvalidWebhookError(f"url {shown(url)} has port 0")
    return url


def check_events(events: Any) -> tuple[str, ...]:
    """A non-empty list of ``EVENTS`` (None: all of them), each once, in ``EVENTS``' order."""
    if events is None:
        return EVENTS
    if isinstance(events, str) or not isinstance(events, Iterable):
        raise InvalidWebhookError(f"events must be a list of {' and '.join(EVENTS)}")
    given = list(events)
    wrong = [e for e in given if e not in EVENTS]
    if wrong or not given:
        raise InvalidWebhookError(
            f"events must be a non-empty list of {', '.join(EVENTS)}"
            + (f", not {shown(wrong[0])}" if wrong else "")
        )
    return tuple(e for e in EVENTS if e in given)


def check_secret(secret: Any) -> str:
    """A secret given by the user: printable ASCII without blanks, 16 to 200 characters."""
    if (
        not isinstance(secret, str)
        or not MIN_SECRET <= len(secret) <= MAX_SECRET
        or not _SECRET.fullmatch(secret)
    ):
        raise InvalidWebhookError(
            f"secret must be {MIN_SECRET} to {MAX_SECRET} printable ASCII characters without "
            "blanks (leave it out and pgstask makes one)"
        )
    return secret


def new_secret() -> str:
    """A new random secret: ``whsec_`` and 43 URL-safe characters (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether a delivery is genuine and fresh: ``signature_header`` (``X-Pgstask-Signature``)
    is the signature of ``body`` at ``timestamp`` (``X-Pgstask-Timestamp``) under ``secret``,
    and that timestamp is within ``tolerance`` seconds of ``now`` (the receiver's clock)."""
    if not timestamp or not signature_header or not timestamp.isdigit():
        return False
    at = int(timestamp)
    if abs((time.time() if now is None else now) - at) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, at, body), signature_header.strip())
