"""HTTP API files: result downloads from any host, the traversal corpus, task and worker uploads
(single and chunked) with their limits, and the cleanup of abandoned chunks."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from pgstask import Client
from pgstask.db import make_pool
from pgstask.runtime.cleaner import Cleaner
from pgstask.settings import Settings
from tests.daemons import running_daemon, wait_for
from tests.http_support import api


def _register(settings: Settings) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])


def _completed_with_result(settings: Settings, result: object) -> int:
    """A completed task whose result is ``result`` (as a worker returning a path would leave)."""
    with Client(settings=settings) as client:
        task = client.create("sample", "noop")
        with client.connection() as conn:
            conn.execute(
                "UPDATE s_tasks SET status = 80, result = %s::jsonb, finished_at = now() "
                "WHERE id = %s",
                (json.dumps(result), task.id),
            )
    return task.id


@pytest.mark.parametrize("base", ["/stask/task", "/stask/tasks"])
def test_a_result_file_downloads_with_its_type_and_a_safe_name(
    settings: Settings, base: str
) -> None:
    _register(settings)
    text = "name,qty\nwidget,3\n"
    with api(settings) as http, running_daemon(settings):
        created = http.post(
            "/stask/worker/sample/run/export", json={"text": text, "name": 'rép"ort;1.csv'}
        ).json()["id"]
        wait_for(lambda: http.get(f"{base}/{created}").json()["task"]["status"] == 80)
        response = http.get(f"{base}/{created}/download")
    assert response.status_code == 200, response.text
    assert response.content == text.encode()
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="r_p_ort_1.csv"')
    assert "filename*=UTF-8''r%C3%A9p%22ort%3B1.csv" in disposition


def test_a_result_stored_on_another_host_downloads_here(settings: Settings, tmp_path: Path) -> None:
    """The file lives in the database: the API host needs no copy of the worker's storage."""
    other_host = tmp_path / "other-host"
    other_host.mkdir()
    big = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    (other_host / "data.bin").write_bytes(big)
    with Client(settings=settings.replace(storage=other_host)) as worker_side:
        task = worker_side.create("sample", "noop")
        worker_side.store_file(task, other_host / "data.bin")
        with worker_side.connection() as conn:
            conn.execute("UPDATE s_tasks SET status = 80 WHERE id = %s", (task.id,))
    (other_host / "data.bin").unlink()
    with api(settings) as http:
        response = http.get(f"/stask/task/{task.id}/download")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(big).digest()
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(big))


def test_download_errors(settings: Settings) -> None:
    with Client(settings=settings) as client:
        pending = client.create("sample", "noop")
    done = _completed_with_result(settings, {"rows": 3})
    with api(settings) as http:
        not_done = http.get(f"/stask/task/{pending.id}/download")
        assert not_done.status_code == 409 and not_done.json()["error"] == "Task not completed"
        missing = http.get(f"/stask/task/{done}/download")
        assert missing.status_code == 404 and missing.json()["error"] == "Export file not found"
        assert http.get("/stask/task/424242/download").status_code == 404
        assert http.get("/stask/task/0/download").status_code == 400


TRAVERSAL = [
    "../../../../etc/passwd",
    "/etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "..%252f..%252fetc%252fpasswd",
    "..\\..\\..\\etc\\passwd",
    "C:\\Windows\\win.ini",
    "results/../../outside.txt",
    "results/x%00.csv",  # (jsonb cannot hold a NUL itself; see the URL test below)
    "",
    ".",
    "results",
]


@pytest.mark.parametrize("result", [*TRAVERSAL, *({"path": p} for p in TRAVERSAL[:4])])
def test_download_never_reads_outside_the_storage_directory(
    settings: Settings, tmp_path: Path, result: object
) -> None:
    storage = settings.storage
    (storage / "results").mkdir(parents=True, exist_ok=True)
    (tmp_path / "outside.txt").write_text("secret")
    task_id = _completed_with_result(settings, result)
    with api(settings) as http:
        response = http.get(f"/stask/task/{task_id}/download")
    assert response.status_code == 404, response.text
    assert b"secret" not in response.content and b"root:" not in response.content


def test_a_symlink_out_of_the_storage_directory_is_not_followed(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (settings.storage / "results").mkdir(parents=True, exist_ok=True)
    link = settings.storage / "results" / "link.csv"
    link.symlink_to(tmp_path / "outside.txt")
    linked = _completed_with_result(settings, str(link))
    inside = settings.storage / "results" / "ok.csv"
    inside.write_text("a,b\n")
    fine = _completed_with_result(settings, "results/ok.csv")
    absolute = _completed_with_result(settings, {"path": str(inside)})
    with api(settings) as http:
        assert http.get(f"/stask/task/{linked}/download").status_code == 404
        assert http.get(f"/stask/task/{fine}/download").content == b"a,b\n"
        assert http.get(f"/stask/task/{absolute}/download").content == b"a,b\n"
        for url in (
            f"/stask/task/{fine}%00/download",
            f"/stask/task/{fine}/download%00",
            "/stask/task/..%2f..%2fetc%2fpasswd/download",
        ):
            assert http.get(url).status_code == 404, url


def _multipart(name: str, data: bytes, **fields: str) -> dict[str, object]:
    return {"files": {"file": (name, io.BytesIO(data), "text/csv")}, "data": fields}


def test_upload_to_a_pending_task_is_attached_and_read_by_its_worker(settings: Settings) -> None:
    _register(settings)
    with Client(settings=settings) as client:
        task = client.create("sample", "count_lines")
    with api(settings) as http:
        response = http.post(
            f"/stask/task/{task.id}/upload", **_multipart("rows.CSV", b"a\nb\nc\n")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["file_size"] == 6 and body["original_filename"] == "rows.CSV"
        meta = http.get(f"/stask/task/{task.id}").json()["task"]["meta"]
        assert meta["uploaded_file_id"] == body["file_id"] and meta["file_size"] == 6
        with running_daemon(settings):
            wait_for(lambda: http.get(f"/stask/task/{task.id}").json()["task"]["status"] == 80)
        assert http.get(f"/stask/task/{task.id}").json()["task"]["result"] == {"lines": 3}
        late = http.post(f"/stask/task/{task.id}/upload", **_multipart("x.csv", b"1"))
        assert late.status_code == 409


@pytest.mark.parametrize(
    ("kwargs", "code", "error"),
    [
        (
            {"files": {"file": ("x.exe", io.BytesIO(b"MZ"), "application/x")}},
            422,
            "Invalid file type",
        ),
        ({"files": {"file": ("../../x.csv", io.BytesIO(b"1"), "text/csv")}}, 200, None),
        ({"files": {"other": ("x.csv", io.BytesIO(b"1"), "text/csv")}}, 400, "No file uploaded"),
        ({"json": {"file": "x"}}, 415, None),
        ({"files": {"file": ("big.csv", io.BytesIO(b"x" * 3000), "text/csv")}}, 413, None),
    ],
)
def test_task_upload_checks(
    settings: Settings, kwargs: dict[str, object], code: int, error: str | None
) -> None:
    _register(settings)
    with Client(settings=settings) as client:
        task = client.create("sample", "noop")
        client.update_worker_settings("sample", {"max_file_size": 2000})
    with api(settings) as http:
        response = http.post(f"/stask/task/{task.id}/upload", **kwargs)  # type: ignore[arg-type]
        assert response.status_code == code, response.text
        if error:
            assert response.json()["error"] == error
        if code == 200:
            assert response.json()["original_filename"] == "x.csv"  # the path part is dropped


def test_server_limit_caps_uploads_before_reading_them(settings: Settings) -> None:
    _register(settings)
    with api(settings, max_upload=10_000) as http:
        response = http.post("/stask/worker/sample/upload", **_multipart("big.csv", b"x" * 200_000))
    assert response.status_code == 413


def test_chunked_upload_to_a_worker(settings: Settings) -> None:
    _register(settings)
    payload = os.urandom(2 * 1024 * 1024 + 100)
    parts = [payload[i : i + 1024 * 1024] for i in range(0, len(payload), 1024 * 1024)]
    session = "sess-0123456789"
    with api(settings) as http:

        def send(index: int, **extra: str) -> object:
            fields = {
                "chunk_index": str(index),
                "total_chunks": str(len(parts)),
                "session_id": session,
                "original_filename": "big.csv",
                **extra,
            }
            return http.post(
                "/stask/worker/sample/upload", **_multipart("blob", parts[index], **fields)
            )

        first = send(2)  # out of order
        assert first.status_code == 200 and first.json()["message"] == "Chunk uploaded successfully"
        assert send(0).json()["received"] == 2
        assert send(0).json()["received"] == 2  # a chunk sent twice counts once
        done = send(1).json()
        assert done["message"] == "File uploaded successfully" and done["file_size"] == len(payload)
        with Client(settings=settings) as client:
            stored = b"".join(client.read_file(done["file_id"]))
        assert stored == payload
        assert send(1).status_code == 422  # the session is complete
        bad = [
            {"session_id": "../../etc"},
            {"session_id": "short"},
            {"total_chunks": "0"},
            {"chunk_index": "9"},
            {"original_filename": "x.exe"},
        ]
        for extra in bad:
            fields = {
                "chunk_index": "0",
                "total_chunks": "2",
                "session_id": "other-session-1",
                "original_filename": "a.csv",
                **extra,
            }
            response = http.post(
                "/stask/worker/sample/upload", **_multipart("blob", b"1", **fields)
            )
            assert response.status_code == 422, (extra, response.text)
        changed = {
            "chunk_index": "1",
            "total_chunks": "5",
            "session_id": session + "x",
            "original_filename": "a.csv",
        }
        assert (
            http.post(
                "/stask/worker/sample/upload", **_multipart("blob", b"1", **changed)
            ).status_code
            == 200
        )
        changed["total_chunks"] = "6"
        assert (
            http.post(
                "/stask/worker/sample/upload", **_multipart("blob", b"1", **changed)
            ).status_code
            == 422
        )


def test_chunked_uploads_respect_the_size_limit(settings: Settings) -> None:
    _register(settings)
    with Client(settings=settings) as client:
        client.update_worker_settings("sample", {"max_file_size": 1500})
    with api(settings) as http:
        fields = {"total_chunks": "3", "session_id": "limit-session", "original_filename": "a.csv"}
        ok = http.post(
            "/stask/worker/sample/upload", **_multipart("b", b"x" * 1000, chunk_index="0", **fields)
        )
        assert ok.status_code == 200
        over = http.post(
            "/stask/worker/sample/upload", **_multipart("b", b"x" * 1000, chunk_index="1", **fields)
        )
        assert over.status_code == 413


def test_worker_upload_needs_an_active_worker(settings: Settings) -> None:
    _register(settings)
    with Client(settings=settings) as client:
        client.deactivate_worker("sample")
    with api(settings) as http:
        response = http.post("/stask/worker/sample/upload", **_multipart("a.csv", b"1"))
        assert response.status_code == 404
        assert (
            http.post("/stask/worker/nobody/upload", **_multipart("a.csv", b"1")).status_code == 404
        )


def test_abandoned_chunks_are_cleaned(settings: Settings) -> None:
    _register(settings)
    with api(settings) as http:
        fields = {
            "chunk_index": "0",
            "total_chunks": "2",
            "session_id": "abandoned-1",
            "original_filename": "a.csv",
        }
        assert (
            http.post(
                "/stask/worker/sample/upload", **_multipart("b", b"123", **fields)
            ).status_code
            == 200
        )
    with Client(settings=settings) as client, client.connection() as conn:
        conn.execute(
            "UPDATE s_task_files SET created_at = now() - '2 days'::interval,"
            " updated_at = now() - '2 days'::interval"
        )
    pool = make_pool(settings.dsn or "", max_size=2)
    try:
        cleaned = Cleaner(
            pool=pool, storage=settings.storage, task_retention_days=30, log_retention_days=30
        ).step()
    finally:
        pool.close()
    assert cleaned.stored_files == 1
    with Client(settings=settings) as client, client.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM s_task_file_chunks").fetchone() == {"n": 0}


@pytest.mark.parametrize(
    ("task_path", "worker_path"),
    [
        ("/stask/task/{id}/upload", "/stask/worker/sample/upload"),
        ("/stask/tasks/{id}/upload", "/stask/workers/sample/upload"),
    ],
)
def test_upload_path_forms(settings: Settings, task_path: str, worker_path: str) -> None:
    _register(settings)
    with Client(settings=settings) as client:
        task = client.create("sample", "noop")
    with api(settings) as http:
        to_task = http.post(task_path.format(id=task.id), **_multipart("a.csv", b"1\n"))
        to_worker = http.post(worker_path, **_multipart("b.csv", b"2\n"))
        logs = http.get(task_path.format(id=task.id).replace("upload", "logs/download"))
    assert to_task.status_code == 200 and to_worker.status_code == 200
    assert logs.status_code == 200
    with Client(settings=settings) as client:
        assert b"".join(client.read_file(to_worker.json()["file_id"])) == b"2\n"
