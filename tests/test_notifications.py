"""Webhook and email notifications (docs/notifications.md): the rules, the signature, the SSRF
guard, bad input at every entry point, and deliveries made by real ``pgstask daemon`` processes
to a real HTTP receiver and a real SMTP server started here."""

from __future__ import annotations

import contextlib
import email
import ipaddress
import json
import socketserver
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pgstask import notify, outbound, queries, webhooks
from pgstask.client import Client
from pgstask.db import make_pool
from pgstask.errors import InvalidTaskError, InvalidWebhookError, WebhookNotFoundError
from pgstask.runtime.rescuer import Rescuer
from pgstask.settings import Settings
from pgstask.task import Status
from pgstask.workers.notifiers import BUILTIN
from pgstask.workers.registry import register_workers
from tests.daemons import ROOT, daemon_env, stop_process, wait_for
from tests.http_support import api

# --- the rules ----------------------------------------------------------------------------------

BAD_URLS = [
    "ftp://hooks.example.com/x",
    "javascript:alert(1)",
    "hooks.example.com/x",
    "https://",
    "https://user:pw@hooks.example.com/",
    "https://hooks.example.com/a b",
    "http://hooks.example.com:99999/",
    "",
    5,
]


@pytest.mark.parametrize("url", BAD_URLS, ids=repr)
def test_a_url_that_is_not_http_or_https_is_refused(url: Any) -> None:
    with pytest.raises(InvalidWebhookError, match="url"):
        webhooks.check("ops", {"url": url})


def test_a_webhook_gets_a_secret_and_both_events_by_default() -> None:
    hook = webhooks.check("ops", {"url": "HTTPS://hooks.example.com/x?a=1"})
    assert hook.events == ("completed", "failed") and hook.active
    assert hook.secret.startswith("whsec_") and len(hook.secret) > 40
    assert webhooks.check("ops", {"url": "http://h/", "events": ["failed"]}).events == ("failed",)


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "http://h/", "events": []},
        {"url": "http://h/", "events": ["cancelled"]},
        {"url": "http://h/", "events": "failed"},
        {"url": "http://h/", "secret": "short"},
        {"url": "http://h/", "secret": "with a blank in it!"},
        {"url": "http://h/", "active": "yes"},
        {"url": "http://h/", "colour": "red"},
        {"url": "http://h/", "description": {}},
    ],
    ids=json.dumps,
)
def test_bad_webhook_fields_are_named(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidWebhookError, match="webhook 'ops'"):
        webhooks.check("ops", fields)


@pytest.mark.parametrize("name", ["", " ops", "a/b", "x" * 101, None])
def test_bad_webhook_names(name: Any) -> None:
    with pytest.raises(InvalidWebhookError, match="name"):
        webhooks.check(name, {"url": "http://h/"})


def test_a_signature_verifies_and_a_tampered_or_old_one_does_not() -> None:
    body = b'{"event":"task.completed"}'
    sig = webhooks.signature("s" * 20, 1_700_000_000, body)
    assert sig.startswith("v1=")
    ok = {"timestamp": "1700000000", "signature_header": sig, "now": 1_700_000_100}
    assert webhooks.verify("s" * 20, body, **ok)  # type: ignore[arg-type]
    assert not webhooks.verify("t" * 20, body, **ok)  # type: ignore[arg-type]
    assert not webhooks.verify("s" * 20, body + b" ", **ok)  # type: ignore[arg-type]
    late = {**ok, "now": 1_700_000_000 + webhooks.TOLERANCE + 1}
    assert not webhooks.verify("s" * 20, body, **late)  # type: ignore[arg-type]
    assert not webhooks.verify("s" * 20, body, None, sig)


def test_notify_values() -> None:
    assert notify.check(None) is None
    assert notify.check({"emails": ["a@example.com", "a@example.com"], "on": ["failed"]}) == {
        "emails": ["a@example.com"],
        "on": ["failed"],
    }
    for bad, said in [
        ({}, "names no target"),
        ([], "must be an object"),
        ({"webhooks": "ops"}, "list of webhook names"),
        ({"webhooks": ["ops/x"]}, "name"),
        ({"emails": ["not-an-address"]}, "not an email address"),
        ({"emails": ["a@example.com"], "on": ["cancelled"]}, "on must list"),
        ({"emails": ["a@example.com"], "when": "always"}, "unknown key"),
        ({"emails": [f"u{i}@example.com" for i in range(21)]}, "more than 20"),
    ]:
        with pytest.raises(InvalidWebhookError, match=said):
            notify.check(bad)


# --- the SSRF guard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert outbound.refusal(ipaddress.ip_address(address)) is not None


def test_public_addresses_pass() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1"):
        assert outbound.refusal(ipaddress.ip_address(address)) is None


def test_a_post_to_loopback_is_refused_before_connecting_unless_allowed() -> None:
    with _receiver([200]) as receiver:
        with pytest.raises(outbound.AddressRefused, match="PGSTASK_WEBHOOK_ALLOW_PRIVATE"):
            outbound.post(receiver.url, b"{}", {}, timeout=5)
        assert receiver.requests == []  # never reached
        answer = outbound.post(receiver.url, b"{}", {}, timeout=5, allow_private=True)
    assert answer.status == 200 and len(receiver.requests) == 1


def test_a_long_answer_is_read_up_to_the_limit() -> None:
    with _receiver([200], answer=b"x" * 100_000) as receiver:
        answer = outbound.post(
            receiver.url, b"{}", {}, timeout=5, allow_private=True, max_response=1000
        )
    assert len(answer.body) == 1000 and answer.truncated


# --- bad input at every entry point -------------------------------------------------------------


def test_the_client_refuses_bad_webhooks_and_targets(settings: Settings) -> None:
    with Client(settings=settings) as client:
        with pytest.raises(InvalidWebhookError, match="http or https"):
            client.add_webhook("ops", "ftp://hooks.example.com/")
        assert client.webhooks() == []
        with pytest.raises(WebhookNotFoundError):
            client.remove_webhook("ops")
        with pytest.raises(InvalidTaskError, match="no webhook 'ops'"):
            client.create("sample", "noop", notify={"webhooks": ["ops"]})
        with pytest.raises(InvalidTaskError, match=r"task #1: notify\.emails"):
            client.create_many(
                [
                    {"identifier": "sample", "action": "noop"},
                    {"identifier": "sample", "action": "noop", "notify": {"emails": ["x"]}},
                ]
            )
        with pytest.raises(Exception, match="setting notify"):
            client.update_worker_settings("sample", {"notify": {"webhooks": "ops"}})


def test_the_secret_is_shown_once(settings: Settings) -> None:
    with Client(settings=settings) as client:
        added = client.add_webhook("ops", "https://hooks.example.com/x", events=["failed"])
        assert added["inserted"] and added["secret"].startswith("whsec_")
        assert "secret" not in client.webhook("ops") and "secret" not in client.webhooks()[0]
        replaced = client.add_webhook("ops", "https://hooks.example.com/y")
        assert not replaced["inserted"] and replaced["secret"] is None
        rotated = client.add_webhook("ops", "https://hooks.example.com/y", rotate_secret=True)
        assert rotated["secret"] not in (None, added["secret"])
        task = client.create(
            "sample", "noop", notify={"webhooks": ["ops"], "emails": ["a@example.com"]}
        )
        assert task.notify == {"webhooks": ["ops"], "emails": ["a@example.com"]}
        assert client.get(task.id).notify == task.notify


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgstask", *args],
        env=daemon_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_refuses_a_url_that_is_not_http(settings: Settings) -> None:
    done = _cli(settings, "webhooks", "add", "ops", "ftp://hooks.example.com/")
    assert done.returncode == 2, done.stderr
    assert "url must use http or https" in done.stderr
    done = _cli(settings, "webhooks", "add", "ops", "https://hooks.example.com/")
    assert done.returncode == 0, done.stderr
    assert "secret: whsec_" in done.stdout
    listed = _cli(settings, "webhooks", "list", "--json")
    assert json.loads(listed.stdout)[0]["name"] == "ops" and "whsec_" not in listed.stdout
    done = _cli(settings, "create", "sample", "noop", "--notify", '{"webhooks": ["nope"]}')
    assert done.returncode == 2 and "no webhook 'nope'" in done.stderr
    assert _cli(settings, "webhooks", "remove", "gone").returncode == 4


def test_the_http_api_refuses_a_url_that_is_not_http(settings: Settings) -> None:
    with api(settings) as http:
        bad = http.post("/stask/webhooks", json={"name": "ops", "url": "file:///etc/passwd"})
        assert bad.status_code == 422 and "http or https" in bad.json()["message"]
        added = http.post("/stask/webhooks", json={"name": "ops", "url": "https://h.example/"})
        assert added.status_code == 201 and added.json()["webhook"]["secret"].startswith("whsec_")
        shown = http.get("/stask/webhooks/ops").json()["webhook"]
        assert "secret" not in shown and shown["events"] == ["completed", "failed"]
        put = http.put("/stask/webhooks/ops", json={"url": "gopher://h.example/"})
        assert put.status_code == 422
        created = http.post(
            "/stask/task",
            json={"identifier": "sample", "action": "noop", "notify": {"webhooks": ["ops"]}},
        )
        assert created.status_code == 201 and created.json()["task"]["notify"] == {
            "webhooks": ["ops"]
        }
        bad_notify = http.post(
            "/stask/task",
            json={"identifier": "sample", "action": "noop", "notify": {"webhooks": ["x"]}},
        )
        assert bad_notify.status_code == 422 and "no webhook 'x'" in bad_notify.json()["message"]
        assert http.delete("/stask/webhooks/ops").status_code == 200
        assert http.delete("/stask/webhooks/ops").status_code == 404


# --- deliveries by real daemons -----------------------------------------------------------------


class _Receiver:
    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[tuple[dict[str, str], bytes]] = []


@contextlib.contextmanager
def _receiver(statuses: list[int], answer: bytes = b"ok") -> Iterator[_Receiver]:
    """An HTTP server on loopback answering POSTs with ``statuses`` in turn (then 200)."""
    lock = threading.Lock()
    receiver: _Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                receiver.requests.append((dict(self.headers.items()), body))
                n = len(receiver.requests)
            self.send_response(statuses[n - 1] if n <= len(statuses) else 200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = _Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, name="test-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def _daemon(settings: Settings, **env: str) -> Iterator[None]:
    """A real ``pgstask daemon`` (the built-in delivery workers included), with ``env``."""
    log = settings.storage / "daemon.out"
    settings.storage.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgstask", "daemon"],
            env={**daemon_env(settings), **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        assert stop_process(proc) == 0, log.read_text()


def _quick_deliveries(client: Client) -> None:
    """Register the delivery workers with a backoff of tenths of seconds (the class's is 10 s)."""
    with client.connection() as conn:
        register_workers(conn, BUILTIN.values(), active=True)
    for identifier in BUILTIN:
        client.update_worker_settings(
            identifier, {"retry_base_delay": 0.05, "retry_max_delay": 0.2, "retry_jitter": 0}
        )


def test_a_webhook_answering_500_twice_gets_the_delivery_on_the_third_try(
    settings: Settings,
) -> None:
    with Client(settings=settings) as client, _receiver([500, 500]) as receiver:
        _quick_deliveries(client)
        secret = client.add_webhook("ops", receiver.url, events=["completed"])["secret"]
        task = client.create("sample", "noop", notify={"webhooks": ["ops"]})
        with _daemon(
            settings,
            PGSTASK_WEBHOOK_ALLOW_PRIVATE="1",
            PGSTASK_PUBLIC_URL="https://tasks.example.com/",
        ):
            wait_for(lambda: _deliveries(client, task.id, Status.COMPLETED), timeout=60)
        (delivery,) = _deliveries(client, task.id)
        assert delivery.identifier == "pgstask.webhook" and delivery.attempts == 3
        assert delivery.message == "Delivered to webhook 'ops': HTTP 200 OK"
        assert len(receiver.requests) == 3
        headers, body = receiver.requests[-1]
        assert webhooks.verify(
            secret, body, headers[webhooks.TIMESTAMP_HEADER], headers[webhooks.SIGNATURE_HEADER]
        )
        assert headers[webhooks.EVENT_HEADER] == "task.completed"
        assert headers[webhooks.DELIVERY_HEADER] == str(delivery.id)
        sent = json.loads(body)
        assert sent["event"] == "task.completed" and sent["delivery_id"] == delivery.id
        assert sent["task"]["id"] == task.id and sent["task"]["status"] == "completed"
        assert sent["task"]["url"] == f"https://tasks.example.com/stask/#task/{task.id}"
        # Every attempt was signed afresh, over the same body.
        assert {b for _, b in receiver.requests} == {body}


def test_a_webhook_on_a_private_address_is_refused_by_the_daemon(settings: Settings) -> None:
    with Client(settings=settings) as client, _receiver([]) as receiver:
        _quick_deliveries(client)
        client.add_webhook("ops", receiver.url)
        task = client.create("sample", "noop", notify={"webhooks": ["ops"]})
        with _daemon(settings):
            wait_for(lambda: _deliveries(client, task.id, Status.FAILED), timeout=60)
        (delivery,) = _deliveries(client, task.id)
        assert delivery.attempts == 1 and "PGSTASK_WEBHOOK_ALLOW_PRIVATE" in str(delivery.message)
        assert receiver.requests == []


def test_a_failure_is_emailed_through_the_local_smtp_server(settings: Settings) -> None:
    with Client(settings=settings) as client, _smtp_server() as smtp:
        _quick_deliveries(client)
        client.discover_workers(["tests.sample_workers"])
        client.update_worker_settings(
            "sample", {"notify": {"emails": ["ops@example.com"], "on": ["failed"]}}
        )
        ok = client.create("sample", "noop")
        failed = client.create("sample", "fail", max_attempts=1)
        with _daemon(
            settings,
            PGSTASK_SMTP_HOST="127.0.0.1",
            PGSTASK_SMTP_PORT=str(smtp.port),
            PGSTASK_SMTP_TLS="none",
            PGSTASK_SMTP_FROM="pgstask@example.com",
            PGSTASK_PUBLIC_URL="https://tasks.example.com",
        ):
            wait_for(lambda: _deliveries(client, failed.id, Status.COMPLETED), timeout=60)
        assert _deliveries(client, ok.id) == []  # "on": failed only
        assert len(smtp.messages) == 1
        recipients, msg = smtp.messages[0]
        assert recipients == ["ops@example.com"]
        assert msg["From"] == "pgstask@example.com" and msg["To"] == "ops@example.com"
        assert msg["Subject"] == f"[pgstask] Task {failed.id} (sample / fail) failed"
        text = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert f"Task {failed.id} (sample / fail) failed at" in text
        assert f"Dashboard: https://tasks.example.com/stask/#task/{failed.id}" in text


def _deliveries(client: Client, task_id: int, status: Status | None = None) -> list[Any]:
    """The delivery tasks of task ``task_id`` (all of them, if every one has ``status``)."""
    found = [
        t
        for ident in BUILTIN
        for t in client.list(identifier=ident, limit=100)
        if t.meta.get("task_id") == task_id
    ]
    if status is not None and not (found and all(t.status == status for t in found)):
        return []
    return found


class _Smtp:
    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[list[str], Message]] = []


@contextlib.contextmanager
def _smtp_server() -> Iterator[_Smtp]:
    """A small SMTP server on loopback (RFC 5321's commands that smtplib sends), keeping what
    it is sent."""
    smtp: _Smtp

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            say = self.wfile.write
            say(b"220 test ESMTP\r\n")
            recipients: list[str] = []
            while line := self.rfile.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    say(b"250 test\r\n")
                elif verb == b"MAIL":
                    recipients = []
                    say(b"250 OK\r\n")
                elif verb == b"RCPT":
                    recipients.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                    say(b"250 OK\r\n")
                elif verb == b"DATA":
                    say(b"354 go on\r\n")
                    data = []
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    smtp.messages.append((recipients, email.message_from_bytes(b"".join(data))))
                    say(b"250 queued\r\n")
                elif verb == b"QUIT":
                    say(b"221 bye\r\n")
                    return
                else:
                    say(b"250 OK\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    smtp = _Smtp(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="test-smtp", daemon=True)
    thread.start()
    try:
        yield smtp
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_final_failure_by_the_rescuer_is_notified_in_its_transaction(
    settings: Settings,
) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        task = client.create(
            "sample", "noop", max_attempts=1, notify={"emails": ["ops@example.com"]}
        )
        with client.connection() as conn:  # claimed by a daemon that has no row: dead
            (claimed,) = queries.task_claim(
                conn, daemon_id=uuid.uuid4(), identifiers=["sample"], limit=1, age=None
            )
        assert claimed.id == task.id
        pool = make_pool(str(settings.dsn), max_size=2, name="test-rescuer")
        try:
            rescuer = Rescuer(
                pool=pool,
                storage=settings.storage,
                stale_after=settings.stale_after,
                base_delay=0.1,
                max_delay=0.1,
                interval=1.0,
            )
            assert rescuer.step() == 1
        finally:
            pool.close()
        assert client.get(task.id).status == Status.FAILED
        (delivery,) = _deliveries(client, task.id)
        assert delivery.identifier == "pgstask.email" and delivery.meta == {
            "task_id": task.id,
            "event": "failed",
            "to": "ops@example.com",
        }


def test_outcomes_without_targets_make_no_deliveries(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.storage.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("PGSTASK_STORAGE", str(settings.storage))  # the sample's record
    with Client(settings=settings.replace(worker_modules=("tests.sample_workers",))) as client:
        ok = client.create("sample", "noop")
        assert client.process_pending_tasks(batch_size=5) >= 1
        assert client.get(ok.id).status == Status.COMPLETED
        assert _deliveries(client, ok.id) == []
