"""HTTP API uploads at their limits: refused from ``Content-Length`` before the body is read, or
as soon as the streamed file passes its limit (over a real socket to uvicorn, the 413 arrives
while the client is still sending); the quotas on stored bytes and unfinished chunked uploads."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.testclient import TestClient

from pgstask import Client
from pgstask.errors import ConfigurationError
from pgstask.http import create_app
from pgstask.http.protocol import JsonH11Protocol
from pgstask.settings import Settings
from tests.daemons import wait_for
from tests.http_support import RW_TOKEN, api, http_settings

BOUNDARY = "pgstask-test-boundary"
PIECE = 64 * 1024
BIG = 32 * 1024 * 1024  # what a client tries to send; every limit here is far below it


def _register(settings: Settings, **worker_settings: object) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])
        if worker_settings:
            client.update_worker_settings("sample", worker_settings)


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[tuple[str, int]]:
    """The app under uvicorn (with ``pgstask serve``'s protocol) on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        create_app(settings, http_settings()), log_config=None, http=JsonH11Protocol
    )  # log_config=None: uvicorn's records reach the root logger (and caplog)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _head(path: str, *, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {RW_TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{framing}\r\n\r\n"
    ).encode()


def _form(fields: dict[str, str], filename: str, size: int) -> tuple[bytes, bytes]:
    """The multipart text before and after a file of ``size`` bytes, fields first."""
    before = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    )
    before += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    )
    return before.encode(), f"\r\n--{BOUNDARY}--\r\n".encode()


def _send_until_answered(
    address: tuple[str, int], head: bytes, pieces: Iterator[bytes]
) -> tuple[int, int, dict[str, object]]:
    """Send ``head``, then ``pieces`` while the server takes them, until it answers; the bytes
    sent, the status and the JSON body of the answer. Whether the server reads or answers
    decides, never a clock (the timeout only ends a test that hangs)."""
    sent = 0
    with socket.create_connection(address, timeout=60) as sock:
        sock.sendall(head)
        received = b""
        piece = next(pieces, None)
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < int(
            _header(received, b"content-length") or "0"
        ):
            writers = [sock] if piece is not None and not received else []
            readable, writable, _ = select.select([sock], writers, [], 60)
            assert readable or writable, "neither an answer nor room to send for 60 s"
            if readable:
                data = sock.recv(65536)
                assert data, "the server closed the connection without an answer"
                received += data
            elif piece is not None:
                sock.sendall(piece)
                sent += len(piece)
                piece = next(pieces, None)
    head_text, _, body = received.partition(b"\r\n\r\n")
    return sent, int(head_text.split(b" ")[1]), json.loads(body)


def _header(received: bytes, name: bytes) -> str | None:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode()
    return None


def _zeros(size: int) -> Iterator[bytes]:
    for start in range(0, size, PIECE):
        yield b"0" * min(PIECE, size - start)


def _chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _stored_files(settings: Settings) -> int:
    with Client(settings=settings) as client, client.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM s_task_files").fetchone()
    assert row is not None
    return int(row["n"])


def test_an_oversized_chunk_is_refused_while_the_client_still_sends(settings: Settings) -> None:
    _register(settings)
    fields = {
        "chunk_index": "0",
        "total_chunks": "2",
        "session_id": "big-chunk-0001",
        "original_filename": "rows.csv",
    }
    before, after = _form(fields, "rows.csv", BIG)
    length = len(before) + BIG + len(after)  # within PGSTASK_API_MAX_UPLOAD: read, then cut
    with served(settings) as address:
        sent, status, body = _send_until_answered(
            address,
            _head("/stask/worker/sample/upload", length=length),
            iter([before, *_zeros(BIG), after]),
        )
    assert status == 413 and body["message"] == "a chunk is at most 1048576 bytes"
    assert sent < BIG // 2, sent  # the answer came long before the body was sent
    assert _stored_files(settings) == 0


def test_a_file_past_the_workers_limit_is_cut_where_it_passes_it(settings: Settings) -> None:
    _register(settings, max_file_size=1024 * 1024)
    before, after = _form({}, "rows.csv", BIG)
    with served(settings) as address:
        sent, status, body = _send_until_answered(
            address,
            _head("/stask/worker/sample/upload", length=None),  # no Content-Length to go by
            _chunked(iter([before, *_zeros(BIG), after])),
        )
    assert status == 413 and body["message"] == "the file is larger than 1048576 bytes"
    assert sent < BIG // 2, sent
    assert _stored_files(settings) == 0


@pytest.mark.parametrize("target", ["task", "worker"])
def test_a_content_length_past_the_limit_is_refused_before_the_body(
    settings: Settings, target: str
) -> None:
    _register(settings, max_file_size=1000)
    with Client(settings=settings) as client:
        task = client.create("sample", "count_lines")
    path = f"/stask/task/{task.id}/upload" if target == "task" else "/stask/worker/sample/upload"
    with served(settings) as address:
        # Headers only: the answer must come without a byte of the body (else this waits).
        _, status, body = _send_until_answered(address, _head(path, length=BIG), iter([]))
    assert status == 413 and body["message"] == "the file is larger than 1000 bytes"


def _upload(http: TestClient, size: int, name: str = "a.csv", **fields: str) -> Any:
    files = {"file": (name, io.BytesIO(b"x" * size), "text/csv")}
    return http.post("/stask/worker/sample/upload", files=files, data=fields)


def test_stored_files_past_the_storage_limit_are_refused_with_507(settings: Settings) -> None:
    _register(settings)
    with api(settings.replace(file_storage_limit=5000)) as http:
        assert _upload(http, 3000).status_code == 200
        full = _upload(http, 3000)
        assert full.status_code == 507
        body = full.json()
        assert body["error"] == "File storage full"
        assert "5000 bytes (PGSTASK_FILE_STORAGE_LIMIT), 3000 are taken" in body["message"]
        assert _upload(http, 1000).status_code == 200
        chunk = _upload(
            http,
            1500,
            chunk_index="0",
            total_chunks="2",
            session_id="quota-session",
            original_filename="b.csv",
        )
        assert chunk.status_code == 507
    assert _stored_files(settings) == 2


def test_unfinished_chunked_uploads_past_the_limit_are_refused_with_429(
    settings: Settings,
) -> None:
    _register(settings)

    def chunk(http: TestClient, session: str, index: int) -> int:
        fields = {"total_chunks": "2", "session_id": session, "original_filename": "c.csv"}
        response = _upload(http, 10, chunk_index=str(index), **fields)
        return int(response.status_code)

    with api(settings.replace(max_open_uploads=2)) as http:
        assert chunk(http, "session-one", 0) == 200
        assert chunk(http, "session-two", 0) == 200
        refused = _upload(
            http,
            10,
            chunk_index="0",
            total_chunks="2",
            session_id="session-three",
            original_filename="c.csv",
        )
        assert refused.status_code == 429
        assert "PGSTASK_MAX_OPEN_UPLOADS" in refused.json()["message"]
        assert chunk(http, "session-two", 1) == 200  # an open session goes on, and finishes
        assert chunk(http, "session-three", 0) == 200
        assert _upload(http, 10).status_code == 200


def test_the_upload_quotas_are_settings() -> None:
    settings = Settings.from_env(
        {"PGSTASK_FILE_STORAGE_LIMIT": "1048576", "PGSTASK_MAX_OPEN_UPLOADS": "7"}
    )
    assert settings.file_storage_limit == 1048576 and settings.max_open_uploads == 7
    assert Settings().file_storage_limit == 10 * 1024**3 and Settings().max_open_uploads == 100
    for name, raw in [
        ("FILE_STORAGE_LIMIT", "0"),
        ("MAX_OPEN_UPLOADS", "x"),
        ("MAX_OPEN_UPLOADS", "-1"),
    ]:
        with pytest.raises(ConfigurationError, match=f"PGSTASK_{name}|max_open_uploads|file_"):
            Settings.from_env({f"PGSTASK_{name}": raw})


def test_a_client_that_leaves_mid_upload_is_no_error(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    _register(settings)
    caplog.set_level(logging.INFO)
    before, _ = _form({}, "rows.csv", BIG)
    with served(settings) as address:
        with socket.create_connection(address, timeout=60) as sock:
            sock.sendall(_head("/stask/worker/sample/upload", length=BIG) + before + b"0" * PIECE)
        wait_for(lambda: "the client left before its body was read" in caplog.text)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert _stored_files(settings) == 0
