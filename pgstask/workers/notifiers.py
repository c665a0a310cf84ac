"""The built-in delivery workers: ``pgstask.webhook`` and ``pgstask.email``.

When a task completes or fails for good, the statement that writes its outcome is followed, in
the same transaction, by ``notification_enqueue`` (docs/notifications.md): one task of these
workers per target, its ``meta`` ``{"task_id": …, "event": "completed" | "failed"}`` and the
``webhook`` name or the address ``to``. Every daemon runs them (``PGSTASK_NOTIFICATIONS=0``
leaves them out), so a delivery is an ordinary task: claimed, retried with the worker's backoff,
listed in the dashboard.

Each delivery reads the finished task when it runs (its message, result and time), and a webhook
delivery reads the webhook's URL and secret then too, so a URL changed or a secret rotated
meanwhile is used by the next attempt. What sending again can fix is retried (a connection that
failed or timed out, an HTTP 5xx, 408 or 429, an SMTP 4xx); the rest fails the delivery at once
(an address the SSRF guard refuses, any other HTTP answer that is not 2xx, an SMTP 5xx, a
webhook removed or deactivated, a task deleted).
"""

from __future__ import annotations

import json
import time
from typing import Any

from pgstask import mail, outbound, queries, webhooks
from pgstask._version import __version__
from pgstask.db import storable
from pgstask.notify import EMAIL_WORKER, WEBHOOK_WORKER
from pgstask.settings import Settings
from pgstask.task import Task
from pgstask.workers.base import BaseWorker

#: A webhook body larger than this leaves out the task's result (``result_omitted``: true).
MAX_BODY = 256 * 1024
#: Characters of a result or an error an email shows.
MAX_TEXT = 2000
#: Delivery settings: about an hour and a half of backoff in all (10 s doubling, 10 attempts), and
#: an action timeout above the webhook timeout's default.
DELIVERY_SETTINGS = {"retry_base_delay": 10, "retry_max_delay": 3600, "timeout": 120}


class DeliveryFailed(Exception):
    """A delivery attempt that failed in a way the next attempt may not (it is retried)."""


def task_link(settings: Settings, task_id: int) -> str | None:
    """The task's page in the dashboard under ``PGSTASK_PUBLIC_URL``, or None without one."""
    if not settings.public_url:
        return None
    return f"{settings.public_url.rstrip('/')}/stask/#task/{task_id}"


def webhook_body(settings: Settings, delivery: Task, subject: Task, event: str) -> bytes:
    """The JSON a webhook is sent for ``subject``'s outcome ``event`` (docs/notifications.md)."""
    task = {
        "id": subject.id,
        "identifier": subject.identifier,
        "action": subject.action,
        "status": event,
        "message": subject.message,
        "result": subject.result,
        "finished_at": subject.finished_at.isoformat() if subject.finished_at else None,
        "attempts": subject.attempts,
        "url": task_link(settings, subject.id),
    }
    if event == "failed":
        task["error"] = subject.last_error
    body = {"event": f"task.{event}", "delivery_id": delivery.id, "task": task}
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    if len(data) > MAX_BODY:
        task["result"], task["result_omitted"] = None, True
        task["error"] = (subject.last_error or "")[:MAX_TEXT] if event == "failed" else None
        data = json.dumps(body, separators=(",", ":"), default=str).encode()
    return data


def email_text(settings: Settings, subject: Task, event: str) -> tuple[str, str]:
    """The subject line and the plain-text body of an email about ``subject``'s outcome."""
    what = f"Task {subject.id} ({subject.identifier} / {subject.action})"
    when = subject.finished_at.strftime("%Y-%m-%d %H:%M:%S %Z") if subject.finished_at else "-"
    lines = [
        f"{what} {event} at {when}.",
        "",
        f"Message:  {subject.message or '-'}",
        f"Attempts: {subject.attempts} of {subject.max_attempts}",
    ]
    if event == "completed" and subject.result is not None:
        lines.append(f"Result:   {_clip(json.dumps(subject.result, default=str))}")
    if event == "failed" and subject.last_error:
        lines += ["", "Error:", _clip(subject.last_error)]
    link = task_link(settings, subject.id)
    if link:
        lines += ["", f"Dashboard: {link}"]
    lines += ["", "-- ", f"pgstask {__version__}: a notify setting of the task or its worker."]
    return f"[pgstask] {what} {event}", "\n".join(lines) + "\n"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " …"


class _Delivery(BaseWorker):
    """What both delivery workers share: the finished task their delivery is about."""

    scope = "pgstask"
    settings = DELIVERY_SETTINGS

    def _subject(self, task: Task, options: dict[str, Any]) -> tuple[Task, str] | None:
        """The finished task and the event of the delivery; None (the delivery failed) when the
        task is gone or ``meta`` is not what pgstask writes."""
        task_id, event = options.get("task_id"), options.get("event")
        if not isinstance(task_id, int) or event not in webhooks.EVENTS:
            self.mark_failed(task, f"Not a delivery pgstask made: {json.dumps(options)[:200]}")
            return None
        with self.client.connection() as conn:
            subject = queries.task_get(conn, id=task_id)
        if subject is None:
            self.mark_failed(task, f"Task {task_id} no longer exists")
            return None
        return subject, str(event)


class WebhookWorker(_Delivery):
    """POSTs a signed notice of a finished task to a registered webhook."""

    identifier = WEBHOOK_WORKER
    title = "Webhook deliveries"
    icon = "send"
    description = "POSTs a signed notice of a finished task to a webhook (docs/notifications.md)"

    def task_deliver(self, task: Task, options: dict[str, Any]) -> None:
        """Deliver ``options["task_id"]``'s outcome to webhook ``options["webhook"]``."""
        found = self._subject(task, options)
        if found is None:
            return
        subject, event = found
        name = str(options.get("webhook"))
        with self.client.connection() as conn:
            hook = queries.webhook_get_for_delivery(conn, name=name)
        if hook is None or not hook["active"]:
            why = "no longer exists" if hook is None else "is inactive"
            self.mark_failed(task, f"Not delivered: webhook {name!r} {why}")
            return
        settings = self.client.settings
        body = webhook_body(settings, task, subject, event)
        at = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"pgstask/{__version__}",
            webhooks.EVENT_HEADER: f"task.{event}",
            webhooks.DELIVERY_HEADER: str(task.id),
            webhooks.TIMESTAMP_HEADER: str(at),
            webhooks.SIGNATURE_HEADER: webhooks.signature(hook["secret"], at, body),
        }
        try:
            answer = outbound.post(
                hook["url"],
                body,
                headers,
                timeout=settings.webhook_timeout,
                allow_private=settings.webhook_allow_private,
            )
        except outbound.AddressRefused as exc:
            self.mark_failed(task, f"Not delivered to webhook {name!r}: {exc}")
            return
        except OSError as exc:  # connection refused, reset, timed out, name not resolved
            raise DeliveryFailed(f"webhook {name!r}: {type(exc).__name__}: {exc}") from exc
        said = f"HTTP {answer.status} {answer.reason}".strip()
        result = {
            "status": answer.status,
            "body": storable(answer.body.decode("utf-8", "replace")[:1000]),
        }
        if 200 <= answer.status < 300:
            self.mark_finished(task, result, f"Delivered to webhook {name!r}: {said}")
        elif answer.status >= 500 or answer.status in (408, 429):
            raise DeliveryFailed(f"webhook {name!r} answered {said}")
        else:
            self.mark_failed(task, f"Not delivered: webhook {name!r} answered {said} (not retried)")


class EmailWorker(_Delivery):
    """Emails a plain-text notice of a finished task to one address."""

    identifier = EMAIL_WORKER
    title = "Email notifications"
    icon = "mail"
    description = "Emails a notice of a finished task through PGSTASK_SMTP_HOST"

    def task_send(self, task: Task, options: dict[str, Any]) -> None:
        """Email ``options["task_id"]``'s outcome to ``options["to"]``."""
        found = self._subject(task, options)
        if found is None:
            return
        subject, event = found
        settings = self.client.settings
        to = str(options.get("to"))
        title, text = email_text(settings, subject, event)
        try:
            mail.send(settings, mail.message(settings, to, title, text))
        except mail.MailRefused as exc:
            self.mark_failed(task, f"Not sent to {to}: {exc}")
            return
        self.mark_finished(task, {"to": to}, f"Sent to {to}")


#: The built-in delivery workers, by identifier.
BUILTIN: dict[str, type[BaseWorker]] = {
    WebhookWorker.identifier: WebhookWorker,
    EmailWorker.identifier: EmailWorker,
}
