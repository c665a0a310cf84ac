"""Email: sending one plain-text message through the configured SMTP server (``smtplib``).

The server is the ``PGSTASK_SMTP_*`` settings' (``Settings.smtp_host`` and the rest, checked by
``settings.py``): plain, STARTTLS (the default) or TLS from the first byte, with a login when a
user is set. ``send`` raises ``MailRefused`` for what sending again cannot fix (no server
configured, a recipient or sender refused with a 5xx code) and lets the rest propagate
(``OSError``, ``smtplib.SMTPException`` with a 4xx code): the delivery worker retries those.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pgstask.errors import PgstaskError
from pgstask.settings import Settings

#: Seconds each exchange with the SMTP server may take.
TIMEOUT = 30.0


class MailRefused(PgstaskError):
    """The message cannot be sent, and sending it again would not change that."""


def message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message from ``PGSTASK_SMTP_FROM`` to ``to``."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_from or ""
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=(settings.smtp_from or "@pgstask").rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg.set_content(body)
    return msg


def send(settings: Settings, msg: EmailMessage) -> None:
    """Send ``msg`` through the configured server (see the module docstring)."""
    if not settings.smtp_host:
        raise MailRefused(
            "no SMTP server is configured: set PGSTASK_SMTP_HOST and PGSTASK_SMTP_FROM "
            "(docs/notifications.md) where the daemons run"
        )
    host, port = settings.smtp_host, settings.smtp_port_or_default
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_tls == "tls":
        smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
    try:
        if settings.smtp_tls == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_user is not None:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        try:
            smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise MailRefused(
                    f"the SMTP server refused the recipient: {exc.recipients}"
                ) from exc
            raise
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if exc.smtp_code >= 500:
                raise MailRefused(f"the SMTP server refused the message: {exc}") from exc
            raise
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
