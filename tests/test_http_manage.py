"""HTTP API: task lists, cancel, retry, logs, clean, workers, cache, server limits."""

from __future__ import annotations

import psycopg
import pytest

from pgstask import Client, Status
from pgstask.settings import Settings
from tests.daemons import running_daemon, wait_for
from tests.http_support import api


def _register(settings: Settings) -> None:
    with Client(settings=settings) as client:
        client.discover_workers(["tests.sample_workers"])


def test_task_list_filters_and_keyset_pages(settings: Settings) -> None:
    with Client(settings=settings) as client:
        ids = [client.create("sample", "noop", {"n": i}).id for i in range(7)]
        client.create("sample", "fail", priority="high")
        client.create("other", "noop")
    with api(settings) as http:
        page = http.get(
            "/stask/tasks", params={"identifier": "sample", "action": "noop", "limit": 3}
        ).json()
        assert [t["id"] for t in page["tasks"]] == ids[::-1][:3]
        assert page["next_before_id"] == ids[4]
        rest = http.get(
            "/stask/tasks",
            params={
                "identifier": "sample",
                "action": "noop",
                "limit": 5,
                "before_id": page["next_before_id"],
            },
        )
        assert [t["id"] for t in rest.json()["tasks"]] == ids[::-1][3:]
        assert rest.json()["next_before_id"] is None
        assert http.get("/stask/tasks", params={"priority": "high"}).json()["count"] == 1
        assert http.get("/stask/tasks", params={"status": "pending"}).json()["count"] == 9
        assert http.get("/stask/tasks", params={"status": "80"}).json()["count"] == 0
        assert (
            http.get("/stask/tasks", params={"created_to": "2000-01-01T00:00:00Z"}).json()["tasks"]
            == []
        )
        for bad in (
            {"status": "done"},
            {"priority": "x"},
            {"limit": 0},
            {"limit": "many"},
            {"before_id": -1},
            {"created_from": "yesterday"},
            {"sort": "id"},
        ):
            response = http.get("/stask/tasks", params=bad)
            assert response.status_code == 422, (bad, response.text)


@pytest.mark.parametrize("base", ["/stask/task", "/stask/tasks"])
def test_cancel_and_retry(settings: Settings, base: str) -> None:
    with Client(settings=settings) as client:
        task = client.create("nobody", "x")
    with api(settings) as http:
        cancelled = http.post(f"{base}/{task.id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["task"]["status_text"] == "cancelled"
        again = http.post(f"{base}/{task.id}/cancel")
        assert again.status_code == 409 and again.json()["error"] == "Invalid task status"
        retried = http.post(f"{base}/{task.id}/retry")
        assert retried.status_code == 200 and retried.json()["task"]["status_text"] == "pending"
        assert http.post(f"{base}/{task.id}/retry").status_code == 409
        assert http.post(f"{base}/987654/cancel").status_code == 404
        assert http.post(f"{base}/0/retry").status_code == 400


def test_logs_as_json_as_a_file_and_cleared(settings: Settings) -> None:
    _register(settings)
    with Client(settings=settings) as client, running_daemon(settings):
        task = client.create("sample", "log")
        wait_for(lambda: client.get(task).is_finished)
    with api(settings) as http:
        every = http.get(f"/stask/task/{task.id}/logs").json()
        assert [r["message"] for r in every["logs"]] == ["first", "second", "third"]
        assert every["count"] == 3 and every["logs"][0]["context"] == {"n": 1}
        last = http.get(f"/stask/tasks/{task.id}/logs", params={"limit": 1}).json()
        assert [r["message"] for r in last["logs"]] == ["third"]
        errors = http.get(f"/stask/task/{task.id}/logs", params={"errors_only": "true"}).json()
        assert [r["level"] for r in errors["logs"]] == ["error"]
        download = http.get(f"/stask/task/{task.id}/logs/download")
        assert download.status_code == 200
        assert download.headers["content-disposition"] == (
            f'attachment; filename="task-{task.id}.log"'
        )
        assert download.text.count("\n") == 3 and "[WARNING] second" in download.text
        assert http.get(f"/stask/task/{task.id}/logs", params={"limit": -2}).status_code == 422
        assert http.get("/stask/task/999999/logs").status_code == 404
        cleared = http.delete(f"/stask/task/{task.id}/logs")
        assert cleared.json() == {
            "success": True,
            "message": "Logs cleared successfully",
            "deleted": 3,
        }
        assert http.get(f"/stask/task/{task.id}/logs").json()["count"] == 0


def test_clean_deletes_old_finished_tasks(settings: Settings) -> None:
    with Client(settings=settings) as client:
        old = client.create("sample", "noop")
        keep = client.create("sample", "noop")
        with client.connection() as conn:
            conn.execute(
                "UPDATE s_tasks SET status = 100, finished_at = now() - '40 days'::interval "
                "WHERE id = %s",
                (old.id,),
            )
    with api(settings) as http:
        assert http.post("/stask/clean", json={"days": "soon"}).status_code == 422
        assert http.post("/stask/clean", json={"days": -1}).status_code == 422
        assert http.post("/stask/clean", json={"days": 10**400}).status_code == 422  # was a 500
        # whitespace is not JSON (a body left out is: the defaults)
        blank = {"content-type": "application/json"}
        assert http.post("/stask/clean", content=b"\r\n\r\n", headers=blank).status_code == 400
        response = http.post("/stask/clean", json={"days": 30}).json()
        assert response["deleted_tasks"] == 1 and response["message"] == "Cleaned 1 tasks"
        assert http.get(f"/stask/task/{old.id}").status_code == 404
        assert http.get(f"/stask/task/{keep.id}").status_code == 200


@pytest.mark.parametrize("base", ["/stask/worker", "/stask/workers"])
def test_workers_activate_deactivate_discover_rescan_clean(settings: Settings, base: str) -> None:
    _register(settings)
    with Client(settings=settings) as client, client.connection() as conn:
        conn.execute("INSERT INTO s_workers (identifier, class) VALUES ('gone', 'no.such:Class')")
    with api(settings) as http:
        listed = http.get("/stask/workers").json()["workers"]
        by_id = {w["identifier"]: w for w in listed}
        assert (
            by_id["sample"]["installed_here"] is True and by_id["gone"]["installed_here"] is False
        )
        assert "sync_stock" in by_id["sample"]["actions"]
        off = http.post(f"{base}/deactivate", json={"identifier": "sample"})
        assert off.json()["message"] == "Worker deactivated" and not off.json()["worker"]["active"]
        run = http.post("/stask/worker/sample/run/noop", json={})
        assert run.status_code == 404  # the cache was cleared with the change
        assert http.post(f"{base}/activate", json={"identifier": "sample"}).status_code == 200
        assert http.post("/stask/worker/sample/run/noop", json={}).status_code == 201
        assert http.post(f"{base}/activate", json={"identifier": "nope"}).status_code == 404
        assert http.post(f"{base}/activate", json={}).status_code == 422
        assert http.post(f"{base}/discover").json()["success"] is True
        assert http.post(f"{base}/rescan").json()["success"] is True
        cleaned = http.post(f"{base}/clean-orphaned").json()
        assert "gone" in cleaned["identifiers"] and cleaned["deleted"] == len(
            cleaned["identifiers"]
        )
        shown = http.get("/stask/worker/sample").json()["worker"]
        assert shown["identifier"] == "sample"
        assert http.get("/stask/worker/gone").status_code == 404


def test_worker_settings_are_saved_and_reach_a_running_daemon(settings: Settings) -> None:
    _register(settings)
    with api(settings) as http, running_daemon(settings) as daemon:
        saved = http.post("/stask/worker/sample/settings", json={"settings": {"greeting": "hi"}})
        assert saved.status_code == 200 and saved.json()["worker"]["settings"] == {"greeting": "hi"}
        wait_for(lambda: daemon.workers["sample"].settings["greeting"] == "hi")
        assert http.post("/stask/worker/sample/settings", json={"settings": [1]}).status_code == 422
        surrogate = b'{"settings": {"greeting": "\\udc00"}}'  # was a 500
        refused = http.post("/stask/worker/sample/settings", content=surrogate)
        assert refused.status_code == 422 and "settings.greeting" in refused.json()["message"]
        assert http.post("/stask/worker/nope/settings", json={"settings": {}}).status_code == 404


def test_cache_counts_persist_across_requests_and_clear_notifies_daemons(
    settings: Settings,
) -> None:
    _register(settings)
    with api(settings) as http:
        assert http.get("/stask/cache/stats").json()["data"]["misses"] == 0
        for _ in range(3):
            assert http.post("/stask/worker/sample/run/noop", json={}).status_code == 201
        http.post("/stask/worker/nobody/run/noop", json={})
        data = http.get("/stask/cache/stats").json()["data"]
        assert (data["hits"], data["misses"], data["cache_size"]) == (2, 2, 2)
        assert data["hit_rate"] == 50.0 and data["memory_usage"] > 0
        with psycopg.connect(settings.dsn or "", autocommit=True) as listener:
            listener.execute("LISTEN pgstask_workers")
            cleared = http.post("/stask/cache/clear", json={"identifier": "sample"}).json()
            assert cleared["message"] == "Cache cleared for worker: sample"
            got = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
        assert got == ["sample"]
        after = http.get("/stask/cache/stats").json()["data"]
        assert after["cache_size"] == 1 and after["evictions"] == 1
        assert http.post("/stask/cache/clear").json()["message"] == "All worker cache cleared"
        assert http.get("/stask/cache/stats").json()["data"]["cache_size"] == 0


def test_server_limits_follow_the_settings(settings: Settings) -> None:
    with api(settings, max_upload=5 * 1024 * 1024) as http:
        limits = http.get("/stask/server-limits").json()
    assert limits == {
        "maxFileSize": 5 * 1024 * 1024,
        "chunkSize": 1048576,
        "singleUploadLimit": 2097152,
    }


def test_read_only_token_sees_but_cannot_manage(settings: Settings) -> None:
    from tests.http_support import RO_TOKEN

    with Client(settings=settings) as client:
        task = client.create("nobody", "x")
    with api(settings, token=RO_TOKEN) as http:
        assert http.get("/stask/tasks").status_code == 200
        for path in (
            f"/stask/task/{task.id}/cancel",
            "/stask/clean",
            "/stask/cache/clear",
            "/stask/worker/discover",
        ):
            assert http.post(path).status_code == 403, path
        assert http.delete(f"/stask/task/{task.id}/logs").status_code == 403
    with Client(settings=settings) as client:
        assert client.get(task).status == Status.PENDING


def test_prometheus_metrics(settings: Settings) -> None:
    _register(settings)
    with Client(settings=settings) as client:
        client.create("sample", "noop")
        client.create("nobody", "x")
        client.create("nobody", "y")
    with api(settings) as http:
        with running_daemon(settings):
            wait_for(lambda: "pgstask_daemons_alive 1.0" in http.get("/metrics").text)
            wait_for(
                lambda: (
                    'pgstask_tasks_finished_5m{identifier="sample",status="completed"} 1.0'
                    in http.get("/metrics").text
                )
            )
            response = http.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert 'pgstask_tasks{identifier="nobody",status="pending"} 2.0' in text
        assert 'pgstask_oldest_due_pending_seconds{identifier="nobody"}' in text
        assert (
            'pgstask_task_duration_seconds_5m{identifier="sample",quantile="0.5",status="completed"}'
            in text
        )
        assert "pgstask_daemon_slots 10.0" in text
    with api(settings, token=None) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
