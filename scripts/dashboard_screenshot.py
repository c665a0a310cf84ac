"""Take docs/dashboard.png: the Dashboard tab with a few tasks, in headless Chromium.

    .venv/bin/python scripts/dashboard_screenshot.py [OUTPUT.png] [--width PX] [--tab TAB ...]

`--width` sets the viewport width (default 1280; 390 is a phone). `--tab` picks what to show:
dashboard (the default), tasks, task (the running task's detail), failure (a failed task's
detail), workers or performance; with
several, each goes to OUTPUT with the tab's name before the suffix (dashboard-workers.png).

It runs `pgstask serve --daemon` (example workers `demo` and `report`) on an embedded PostgreSQL
in a temporary directory (never your PGSTASK_DSN), enqueues some tasks, waits until all but one
long count have finished, signs in and saves the page. The browser is Debian's chromium
(PGSTASK_CHROMIUM names another), as in the dashboard tests.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
from playwright.sync_api import expect, sync_playwright

from pgstask import embedded
from pgstask.http.auth import new_token

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("PGSTASK_CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"dashboard_screenshot: gave up waiting for {what}")
        time.sleep(0.2)


def enqueue(api: httpx.Client) -> dict[str, int]:
    """Some finished tasks of each kind and one long count left running; returns the ids of
    that one (`running`) and of a failed one (`failed`)."""

    def run(worker: str, action: str, body: dict[str, object]) -> int:
        answer = api.post(f"/stask/worker/{worker}/run/{action}", json=body)
        answer.raise_for_status()
        return int(answer.json()["id"])

    ids = [run("demo", "count", {"to": n, "delay": 0.05}) for n in (10, 25, 40)]
    ids.append(run("report", "export", {"rows": 1200}))
    ids.append(run("report", "export", {"rows": 300}))
    failed = run("demo", "fail", {"options": {"error": "upstream timed out"}, "max_attempts": 1})
    ids.append(failed)
    ids.append(run("demo", "noop", {}))
    cancelled = run("demo", "count", {"to": 500, "delay": 0.05})
    running = run("demo", "count", {"to": 400, "delay": 0.25})

    def status(task_id: int) -> str:
        return str(api.get(f"/stask/task/{task_id}").json()["task"]["status_text"])

    wait(lambda: status(cancelled) == "running", "a task to cancel")
    api.post(f"/stask/task/{cancelled}/cancel").raise_for_status()
    wait(lambda: all(status(i) in ("completed", "failed") for i in ids), "the tasks to finish")
    later: dict[str, object] = {"options": {}, "start_at": "2099-01-01T00:00:00Z"}
    run("report", "export", later)  # stays pending
    return {"running": running, "failed": failed}


TABS = {
    "dashboard": "#dashboard",
    "tasks": "#tasks",
    "task": "#task/{running}",
    "failure": "#task/{failed}",
    "workers": "#workers",
    "performance": "#performance",
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", nargs="?", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels")
    parser.add_argument("--tab", action="append", choices=sorted(TABS), help="what to show")
    return parser.parse_args()


def main() -> int:
    args = arguments()
    output: Path = args.output
    tabs: list[str] = args.tab or ["dashboard"]
    token = new_token()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="pgstask-screenshot-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGSTASK_")}
        env.update(
            PGSTASK_API_TOKENS=f"rw:{token}",
            PGSTASK_DATA_DIR=f"{tmp}/pgdata",
            PGSTASK_SHUTDOWN_GRACE="1",
        )
        log = open(Path(tmp) / "serve.log", "w", encoding="utf-8")  # noqa: SIM115
        serve = subprocess.Popen(
            [sys.executable, "-m", "pgstask", "serve", "--daemon", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        try:

            def up() -> bool:
                try:
                    return api.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    return serve.poll() is not None

            wait(up, "pgstask serve")
            if serve.poll() is not None:
                raise SystemExit((Path(tmp) / "serve.log").read_text())
            ids = enqueue(api)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = browser.new_page(viewport={"width": args.width, "height": 860})
                page.goto(f"{base}/stask/login")
                page.get_by_label("API token").fill(token)
                page.get_by_role("button", name="Sign in").click()
                running = ids["running"]
                row = page.locator(f"#recent-tasks tr[data-task-id='{running}'] .progress-box")
                expect(row).not_to_have_attribute("data-progress", "", timeout=60_000)
                expect(row).not_to_have_attribute("data-progress", "0", timeout=60_000)
                for tab in tabs:
                    path = output
                    if len(tabs) > 1:
                        path = output.with_name(f"{output.stem}-{tab}{output.suffix}")
                    page.goto(f"{base}/stask/{TABS[tab].format(**ids)}")
                    page.wait_for_timeout(2000)  # the tab has loaded its data
                    page.screenshot(path=str(path), full_page=True)
                    print(f"dashboard_screenshot: wrote {path}")
                browser.close()
        finally:
            api.close()
            serve.send_signal(signal.SIGTERM)  # the running count is given back after 1 s
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
            finally:
                log.close()
                embedded.stop(Path(tmp) / "pgdata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
