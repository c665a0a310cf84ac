"""The dashboard mounted in a real FastAPI app under ``/admin/tasks`` (``tests/fastapi_app.py``),
served by a real uvicorn process and driven by a real headless Chromium (the fixtures of
``tests/test_dashboard.py``): sign-in, the task the host's ``AsyncClient`` dependency created,
its detail and its Cancel button; and every request the page sends stays under the prefix."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.daemons import wait_for
from tests.http_support import RO_TOKEN, RW_TOKEN
from tests.test_cli import env as env  # the fixture
from tests.test_dashboard import browser as browser  # the fixtures
from tests.test_dashboard import playwright as playwright
from tests.test_http_serve import _free_port

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/admin/tasks"

pytestmark = pytest.mark.slow
expect.set_options(timeout=30_000)


@contextlib.contextmanager
def uvicorn(env: dict[str, str], log: Path) -> Iterator[str]:
    """``uvicorn tests.fastapi_app:app`` on a free port; its base URL once it answers."""
    port = _free_port()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.fastapi_app:app", "--port", str(port)],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if proc.poll() is not None:
                return True
            try:
                return httpx.get(f"{base}{PREFIX}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(up, timeout=60)
            assert proc.poll() is None, log.read_text()
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def host(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    env = {**env, "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN},ro:{RO_TOKEN}"}
    with uvicorn(env, tmp_path / "uvicorn.log") as base:
        yield base


@pytest.fixture
def page(browser: Browser, host: str) -> Iterator[Page]:
    context = browser.new_context(base_url=host)
    yield context.new_page()
    context.close()


def test_the_mounted_dashboard_lists_shows_and_cancels_the_hosts_task(
    host: str, page: Page
) -> None:
    ordered = httpx.post(f"{host}/reports", timeout=10)  # the host's route, its AsyncClient
    assert ordered.status_code == 200, ordered.text
    task_id = ordered.json()["task"]
    sent: list[str] = []

    def on_request(request: Request) -> None:
        sent.append(request.url)

    page.on("request", on_request)
    page.goto(f"{PREFIX}/stask/")
    expect(page).to_have_url(f"{host}{PREFIX}/stask/login")
    page.get_by_label("API token").fill(RW_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{host}{PREFIX}/stask/")
    expect(page.locator("[data-stat=pending] .stat-value")).to_have_text("1")

    page.get_by_role("link", name="Tasks").click()
    row = page.locator(f"#task-list tr[data-task-id='{task_id}']")
    expect(row.locator(".status")).to_have_text("pending")
    row.get_by_role("link", name=f"Task {task_id}").click()
    detail = page.locator("#task-detail")
    expect(detail.get_by_role("heading", name=f"Task {task_id}")).to_be_visible()
    expect(detail).to_contain_text("report")
    detail.get_by_role("button", name="Cancel").click()
    expect(detail.locator(".status")).to_have_text("cancelled")
    expect(page.locator("#notice")).to_contain_text("Task cancelled")

    for tab in ("Workers", "Schedules", "Presets", "Performance", "Dashboard"):
        page.get_by_role("link", name=tab, exact=True).click()
        expect(page.locator(f"[data-tab={tab.lower()}]")).to_have_attribute("aria-current", "page")
        page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{host}{PREFIX}/stask/login")

    api = {"Authorization": f"Bearer {RO_TOKEN}"}
    shown = httpx.get(f"{host}{PREFIX}/stask/task/{task_id}", headers=api, timeout=10).json()
    assert shown["task"]["status_text"] == "cancelled"
    outside = [u for u in sent if not u.startswith(f"{host}{PREFIX}/") and u.startswith("http")]
    assert outside == []
    paths = {u.split("?")[0].removeprefix(host) for u in sent}
    stask = f"{PREFIX}/stask"
    assert {f"{stask}/tasks", f"{stask}/task/{task_id}/cancel", f"{stask}/workers"} <= paths
    assert {f"{stask}/schedules", f"{stask}/presets", f"{stask}/performance/summary"} <= paths
