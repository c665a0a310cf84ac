"""``pgstask serve``: a real uvicorn process, with and without its in-process daemon; its
connection limits, forwarded headers, start-up checks, development token and shutdown."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2 as httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from pgstask.client import Client
from pgstask.http import create_app
from pgstask.http.server import uvicorn_config
from pgstask.settings import Settings
from tests.daemons import wait_for
from tests.http_support import RO_TOKEN, RW_TOKEN, api, http_settings
from tests.test_cli import cli, command
from tests.test_cli import env as env  # the fixture

if TYPE_CHECKING:
    from tests.conftest import Server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(
    env: dict[str, str], log: Path, *args: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A ``pgstask serve`` started in the log's directory (where it keeps ``.pgstask/``)."""
    listen = _free_port()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            command("serve", "--port", str(listen), *args),
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{listen}"

        def up() -> bool:
            if proc.poll() is not None:
                return True
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(up, timeout=60)
            assert proc.poll() is None, log.read_text()
            yield proc, base
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_serve_with_daemon_runs_what_the_api_creates(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}"}
    auth = {"Authorization": f"Bearer {RW_TOKEN}"}
    log = tmp_path / "serve.log"
    with serving(env, log, "--daemon") as (proc, base):
        created = httpx.post(
            f"{base}/stask/worker/demo/run/count", json={"to": 3, "delay": 0.01}, headers=auth
        )
        assert created.status_code == 201, created.text
        url = f"{base}/stask/task/{created.json()['id']}/progress"
        wait_for(lambda: httpx.get(url, headers=auth).json()["status"] == "completed", timeout=30)
        assert httpx.get(f"{base}/stask/stats").status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    assert RW_TOKEN not in log.read_text()


def _printed_token(text: str) -> str:
    found = re.search(r"/stask/login#token=([A-Za-z0-9_-]+) ", text)
    assert found, text
    return found.group(1)


def test_serve_without_tokens_keeps_its_token_across_restarts(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    kept = tmp_path / ".pgstask" / "serve-token"
    with serving(env, log) as (proc, base):
        text = log.read_text()
        assert "made a read-write token and kept it in .pgstask/serve-token" in text
        token = _printed_token(text)
        assert kept.read_text().strip() == token
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        ok = httpx.get(f"{base}/stask/stats", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    kept.chmod(0o644)
    with serving(env, log) as (proc, base):
        text = log.read_text()
        assert "using the read-write token in .pgstask/serve-token" in text
        assert _printed_token(text) == token  # the dashboard stays signed in
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # made private again
        ok = httpx.get(f"{base}/stask/stats", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    kept.write_text("short\n")
    with serving(env, log) as (proc, base):
        assert "made a read-write token and kept it" in log.read_text()
        assert _printed_token(log.read_text()) != token
        assert len(kept.read_text().strip()) >= 40


def _sign_in(browser: httpx.Client, base: str, token: str) -> None:
    signed = browser.post(f"{base}/stask/login", data={"token": token}, headers={"Origin": base})
    assert signed.status_code == 303, signed.text


def test_two_servers_on_one_host_keep_their_own_session_cookie(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A browser keeps cookies per host name, not per port: each server names its cookie after
    its port, so signing in to one does not sign the browser out of the other."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        serving({**env, "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}"}, tmp_path / "a" / "log") as a,
        serving({**env, "PGSTASK_API_TOKENS": f"rw:{RO_TOKEN}"}, tmp_path / "b" / "log") as b,
        httpx.Client() as browser,
    ):
        (_, base_a), (_, base_b) = a, b
        _sign_in(browser, base_a, RW_TOKEN)
        _sign_in(browser, base_b, RO_TOKEN)
        names = sorted(cookie.name for cookie in browser.cookies.jar)
        ports = sorted(base.rsplit(":", 1)[1] for base in (base_a, base_b))
        assert names == [f"pgstask_token_{port}" for port in ports]
        assert browser.get(f"{base_a}/stask/stats").status_code == 200
        assert browser.get(f"{base_b}/stask/stats").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_serve_refuses_a_public_address_without_a_token(env: dict[str, str], host: str) -> None:
    started = time.monotonic()
    result = cli(env, "serve", "--host", host)
    assert result.returncode == 2, result.stderr
    assert "refusing to listen on" in result.stderr and "PGSTASK_API_TOKENS" in result.stderr
    assert time.monotonic() - started < 60


def test_serve_rejects_a_bad_port_and_bad_tokens(env: dict[str, str]) -> None:
    assert cli(env, "serve", "--port", "70000").returncode == 2
    bad = cli({**env, "PGSTASK_API_TOKENS": "admin:secret"}, "serve")
    assert bad.returncode == 2 and "PGSTASK_API_TOKENS entry 1" in bad.stderr


# --- connections --------------------------------------------------------------------------------


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def _closed_by_server(sock: socket.socket, *, within: float = 30.0) -> bool:
    """Whether the server closes ``sock`` (reading what it may send first) before ``within``
    seconds pass: a generous bound, far above the settings under test."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


@pytest.fixture
def guarded(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A server with short connection bounds: heads within 1 s, bodies stalled for at most
    1 s, keep-alive 1 s."""
    env = {
        **env,
        "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}",
        "PGSTASK_API_HEADER_TIMEOUT": "1",
        "PGSTASK_API_BODY_TIMEOUT": "1",
        "PGSTASK_API_KEEP_ALIVE": "1",
    }
    with serving(env, tmp_path / "serve.log") as (_, base):
        yield base


def test_a_half_sent_request_is_closed(guarded: str) -> None:
    with _connect(guarded) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line
        assert _closed_by_server(sock)
    with _connect(guarded) as sock:  # nothing at all
        assert _closed_by_server(sock)


def test_a_request_head_sent_a_line_at_a_time_is_closed(guarded: str) -> None:
    """Each line arrives well within the bound, the whole head never does."""
    with _connect(guarded) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for n in range(200):  # 200 lines, 0.25 s apart: far longer than the 1 s bound
            try:
                sock.sendall(f"X-Drip-{n}: a\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                break
            if _closed_by_server(sock, within=0.25):
                break
        else:
            pytest.fail("the server kept a dripping request head open")


def test_a_stalled_request_body_is_closed(guarded: str, tmp_path: Path) -> None:
    with _connect(guarded) as sock:
        sock.sendall(
            b"POST /stask/task HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {RW_TOKEN}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            + b'{"identifier": '  # and no more
        )
        assert _closed_by_server(sock)
    log = tmp_path / "serve.log"
    wait_for(lambda: "the client left before its body was read" in log.read_text())
    assert "Traceback" not in log.read_text()  # not a server error


def test_a_slow_body_that_keeps_coming_is_read(guarded: str) -> None:
    body = b'{"identifier": "demo", "action": "noop"}'
    with _connect(guarded) as sock:
        sock.sendall(
            b"POST /stask/task HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {RW_TOKEN}\r\n".encode()
            + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        for n in range(0, len(body), 4):  # 10 pieces, 0.25 s apart: longer than the 1 s bound
            assert not _closed_by_server(sock, within=0.25)
            sock.sendall(body[n : n + 4])
        sock.settimeout(30)
        assert sock.recv(4096).startswith(b"HTTP/1.1 201"), "the upload was cut off"


def test_an_idle_keep_alive_connection_is_closed(guarded: str) -> None:
    with _connect(guarded) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(30)
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert _closed_by_server(sock)


def test_connections_over_the_cap_are_refused_with_503(env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **env,
        "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}",
        "PGSTASK_API_MAX_CONNECTIONS": "4",
        "PGSTASK_API_HEADER_TIMEOUT": "600",  # the held connections stay open
        "PGSTASK_API_KEEP_ALIVE": "600",
    }
    with serving(env, tmp_path / "serve.log") as (_, base):
        _over_the_cap(base)
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, timeout=30)


def _over_the_cap(base: str) -> None:
    held = [_connect(base) for _ in range(3)]
    try:
        with _connect(base) as fourth:  # the cap: answered
            fourth.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            fourth.settimeout(30)
            assert fourth.recv(4096).startswith(b"HTTP/1.1 200")
            with _connect(base) as fifth:  # over it: 503 at once, then closed
                fifth.settimeout(30)
                answer = b""
                while chunk := fifth.recv(4096):
                    answer += chunk
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 503"), answer
                assert json.loads(body)["message"] == "too many connections; try again shortly"
    finally:
        for sock in held:
            sock.close()


# --- forwarded headers --------------------------------------------------------------------------


def _wrong_tokens(base: str, count: int) -> list[int]:
    """Status codes of ``count`` wrong-token requests, each claiming another client address."""
    return [
        httpx.get(
            f"{base}/stask/stats",
            headers={
                "Authorization": "Bearer wrong-token-wrong-token",
                "X-Forwarded-For": f"198.51.100.{n}",
            },
        ).status_code
        for n in range(count)
    ]


def test_forwarded_for_is_believed_only_from_named_proxies(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}"}
    with serving(env, tmp_path / "serve.log") as (proc, base):
        # From loopback, which is no named proxy: every request is 127.0.0.1's.
        assert _wrong_tokens(base, 6) == [401] * 5 + [429]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    with serving(env, tmp_path / "serve.log", "--forwarded-allow-ips", "127.0.0.1") as (_, base):
        assert _wrong_tokens(base, 6) == [401] * 6  # six clients behind a trusted proxy
    proxied = {**env, "PGSTASK_API_FORWARDED_ALLOW_IPS": "127.0.0.0/8"}
    with serving(proxied, tmp_path / "serve.log") as (_, base):
        assert _wrong_tokens(base, 6) == [401] * 6
    bad = cli({**env, "PGSTASK_API_FORWARDED_ALLOW_IPS": "*"}, "serve")
    assert bad.returncode == 2 and "name the proxies" in bad.stderr


# --- start-up checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("daemon", [False, True], ids=["api", "daemon"])
def test_serve_fails_at_start_on_an_unmigrated_database(
    env: dict[str, str], pg: Server, daemon: bool
) -> None:
    name = pg.create_database("blank")
    try:
        env = {**env, "PGSTASK_DSN": pg.dsn(name), "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}"}
        result = cli(env, "serve", "--port", str(_free_port()), *(["--daemon"] * daemon))
    finally:
        pg.drop_database(name)
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("pgstask: error:")]
    assert len(errors) == 1 and "run `pgstask migrate`" in errors[0], result.stderr
    assert "Uvicorn running" not in result.stderr


@pytest.mark.parametrize("daemon", [False, True], ids=["api", "daemon"])
def test_serve_fails_at_start_when_the_database_cannot_be_reached(
    env: dict[str, str], daemon: bool
) -> None:
    env = {
        **env,
        "PGSTASK_DSN": "postgresql://nobody:wrong@127.0.0.1:1/none?connect_timeout=2",
        "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}",
    }
    result = cli(env, "serve", "--port", str(_free_port()), *(["--daemon"] * daemon))
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("pgstask: error:")]
    assert len(errors) == 1 and "cannot use PostgreSQL" in errors[0], result.stderr
    assert "check PGSTASK_DSN" in errors[0] and "wrong" not in result.stderr


# --- shutdown -----------------------------------------------------------------------------------


def test_serve_daemon_says_what_it_waits_for_when_stopping(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN}", "PGSTASK_SHUTDOWN_GRACE": "60"}
    auth = {"Authorization": f"Bearer {RW_TOKEN}"}
    log = tmp_path / "serve.log"
    with serving(env, log, "--daemon") as (proc, base):
        created = httpx.post(
            f"{base}/stask/worker/demo/run/count", json={"to": 10_000, "delay": 0.05}, headers=auth
        )
        url = f"{base}/stask/task/{created.json()['id']}/progress"
        wait_for(lambda: (httpx.get(url, headers=auth).json()["processed"] or 0) > 0, timeout=30)
        proc.send_signal(signal.SIGTERM)
        waiting = "stopping: waiting up to 60 s for 1 running task; press Ctrl-C again to stop now"
        wait_for(lambda: waiting in log.read_text(), timeout=30)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, log.read_text()
    text = log.read_text()
    assert "stopping now: unfinished tasks are given back" in text
    assert "pgstask: stopped: 1 given back" in text


# --- progress streams ---------------------------------------------------------------------------


@contextlib.contextmanager
def threaded(app: Starlette) -> Iterator[str]:
    """``app`` served by uvicorn (``pgstask serve``'s configuration) in a thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn_config(app, host="127.0.0.1", port=port, http=http_settings())
    config.log_level = "warning"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=30)
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


def _pending_task(settings: Settings) -> int:
    with Client(settings=settings) as client:
        return client.create("nobody", "wait", {}).id  # no worker: it stays pending


def test_progress_streams_are_capped_per_token_and_in_all(settings: Settings) -> None:
    task_id = _pending_task(settings)
    app = create_app(settings, http_settings(max_streams=3, max_streams_per_token=2))
    slots = app.state.pgstask.streams
    with threaded(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        url = f"/stask/task/{task_id}/stream"

        def headers(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        with contextlib.ExitStack() as streams:
            first = streams.enter_context(http.stream("GET", url, headers=headers(RO_TOKEN)))
            second = streams.enter_context(http.stream("GET", url, headers=headers(RO_TOKEN)))
            assert (first.status_code, second.status_code) == (200, 200)
            per_token = http.get(url, headers=headers(RO_TOKEN))
            assert per_token.status_code == 429, per_token.text
            assert per_token.json()["message"].startswith("this token has 2 progress streams")
            third = streams.enter_context(http.stream("GET", url, headers=headers(RW_TOKEN)))
            assert third.status_code == 200  # another token: its own share
            in_all = http.get(url, headers=headers(RW_TOKEN))
            assert in_all.status_code == 429
            assert in_all.json()["message"].startswith("3 progress streams are open")
            assert in_all.json()["success"] is False
            first.close()  # the client goes away: its slot comes back
            wait_for(lambda: slots.count() == 2, timeout=30)
            with http.stream("GET", url, headers=headers(RO_TOKEN)) as again:
                assert again.status_code == 200
        wait_for(lambda: slots.count() == 0, timeout=30)
        missing = http.get("/stask/task/999999/stream", headers=headers(RO_TOKEN))
        assert missing.status_code == 404 and slots.count() == 0  # a 404 holds no slot


def test_a_progress_stream_without_changes_ends_with_an_idle_event(settings: Settings) -> None:
    task_id = _pending_task(settings)
    with api(settings, stream_idle=0.5) as http:
        events: list[tuple[str, dict[str, object]]] = []
        with http.stream("GET", f"/stask/task/{task_id}/stream") as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((event, json.loads(line.removeprefix("data: "))))
        assert http.app.state.pgstask.streams.count() == 0
    assert [kind for kind, _ in events] == ["progress", "idle"]
    idle = events[-1][1]
    assert idle["id"] == task_id and idle["status"] == "pending"
    assert "no change of progress for 0.5 s" in str(idle["reason"])
