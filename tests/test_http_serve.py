"""``pgstask serve``: a real uvicorn process, with and without its in-process daemon."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.daemons import wait_for
from tests.http_support import RW_TOKEN
from tests.test_cli import ROOT, cli, command
from tests.test_cli import env as env  # the fixture


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(
    env: dict[str, str], log: Path, *args: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    listen = _free_port()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            command("serve", "--port", str(listen), *args),
            env=env,
            cwd=ROOT,
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


def test_serve_without_tokens_prints_a_token_for_this_run(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with serving(env, log) as (proc, base):
        text = log.read_text()
        assert "read-write token for this run" in text
        token = text.split("read-write token for this run:\n", 1)[1].split()[0]
        ok = httpx.get(f"{base}/stask/stats", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


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
