"""The dashboard in a real headless Chromium, against a real ``pgstask serve --daemon`` process
on the test's own database (sample workers from ``tests.sample_workers`` plus pgstask's example
workers ``demo`` and ``report``).

The browser is Debian's ``chromium`` (``PGSTASK_CHROMIUM`` names another binary), driven by the
Python ``playwright`` package; ``scripts/test.sh`` installs it. Without it these tests skip, and
with ``CI`` set a skip fails the run. Every wait is one of Playwright's waiting expectations or
``wait_for`` on the API: nothing asserts how long anything takes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.daemons import scalar, wait_for
from tests.http_support import RO_TOKEN, RW_TOKEN
from tests.test_cli import env as env  # the fixture
from tests.test_http_serve import _free_port, serving

CHROMIUM = Path(os.environ.get("PGSTASK_CHROMIUM", "/usr/bin/chromium"))
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(2)</script>"

pytestmark = pytest.mark.slow
# Generous: a loaded CI machine starts tasks late. Expectations return as soon as they hold.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's chromium package "
            "(scripts/test.sh does it as root) or set PGSTASK_CHROMIUM"
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield launched
    launched.close()


class Server:
    """A running ``pgstask serve --daemon`` and a bearer-token client of its API."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.api = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {RW_TOKEN}"}, timeout=10
        )

    def run(self, worker: str, action: str, options: dict[str, Any], **control: Any) -> int:
        body = {"options": options, **control} if control else options
        created = self.api.post(f"/stask/worker/{worker}/run/{action}", json=body)
        assert created.status_code == 201, created.text
        return int(created.json()["id"])

    def create(self, identifier: str, action: str, data: dict[str, Any] | None = None) -> int:
        created = self.api.post(
            "/stask/task", json={"identifier": identifier, "action": action, "data": data or {}}
        )
        assert created.status_code == 201, created.text
        return int(created.json()["task"]["id"])

    def task(self, task_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"/stask/task/{task_id}").json()["task"]
        return found

    def wait_status(self, task_id: int, *statuses: str) -> None:
        wait_for(lambda: self.task(task_id)["status_text"] in statuses, timeout=60)


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    env = {
        **env,
        "PGSTASK_API_TOKENS": f"rw:{RW_TOKEN},ro:{RO_TOKEN}",
        "PGSTASK_WORKERS": "tests.sample_workers",
    }
    with serving(env, tmp_path / "serve.log", "--daemon") as (_, base):
        found = Server(base)
        try:
            yield found
        finally:
            found.api.close()


@pytest.fixture
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    made = browser.new_context(base_url=server.base, accept_downloads=True)
    yield made
    made.close()


@pytest.fixture
def dialogs(context: BrowserContext) -> list[str]:
    """Messages of every dialog (alert, confirm) any page of the context opens; dismissed."""
    seen: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    def on_page(page: Page) -> None:
        page.on("dialog", on_dialog)

    context.on("page", on_page)
    return seen


@pytest.fixture
def page(context: BrowserContext, dialogs: list[str]) -> Page:
    return context.new_page()


def sign_in(page: Page, token: str = RW_TOKEN) -> None:
    page.goto("/stask/")
    expect(page).to_have_url(f"{_origin(page)}/stask/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{_origin(page)}/stask/")


def _origin(page: Page) -> str:
    return "/".join(page.url.split("/")[:3])


def _session_cookies(context: BrowserContext) -> list[str]:
    return [c.get("value", "") for c in context.cookies() if _is_session(c.get("name", ""))]


def _is_session(name: str) -> bool:
    return name.startswith("pgstask_token_")  # pgstask serve: one name per port


def test_sign_in_shows_the_counts_and_sign_out_ends_the_session(
    server: Server, page: Page, context: BrowserContext
) -> None:
    for n in range(3):  # no daemon runs worker "nobody": these stay pending
        server.create("nobody", "wait", {"n": n})
    page.goto("/stask/")
    expect(page).to_have_url(f"{server.base}/stask/login")
    page.get_by_label("API token").fill("this-is-not-the-token-0123456789")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
    assert _session_cookies(context) == []

    page.get_by_label("API token").fill(RW_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.base}/stask/")
    cookie = next(c for c in context.cookies() if _is_session(c.get("name", "")))
    assert cookie.get("httpOnly") is True and cookie.get("sameSite") == "Strict"

    stats = server.api.get("/stask/stats").json()
    card = page.locator("[data-stat]")
    expect(card.locator(".stat-value")).to_have_count(8)
    expect(page.locator("[data-stat=pending] .stat-value")).to_have_text("3")
    expect(page.locator("[data-stat=total] .stat-value")).to_have_text("3")
    expect(page.locator("[data-stat=running] .stat-value")).to_have_text("0")
    expect(page.locator("[data-stat=waiting] .stat-value")).to_have_text("0")
    expect(page.locator("[data-stat=active_workers] .stat-value")).to_have_text(
        str(stats["active_workers"])
    )
    expect(page.locator("#recent-tasks tbody tr")).to_have_count(3)
    expect(page.locator("#timeline-chart svg")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.base}/stask/login")
    assert _session_cookies(context) == []
    page.goto("/stask/")
    expect(page).to_have_url(f"{server.base}/stask/login")


def test_the_sign_in_link_fills_the_token_in(server: Server, page: Page) -> None:
    """``pgstask serve`` prints ``/stask/login#token=…`` when it made the token itself."""
    page.goto(f"/stask/login#token={RW_TOKEN}")
    expect(page).to_have_url(f"{server.base}/stask/login")  # the token left the address bar
    expect(page.get_by_label("API token")).to_have_value(RW_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.base}/stask/")
    expect(page.locator("[data-stat=total] .stat-value")).to_have_text("0")


def test_an_action_run_from_the_workers_tab_reaches_100_percent(server: Server, page: Page) -> None:
    sign_in(page)
    page.get_by_role("link", name="Workers").click()
    card = page.locator("[data-worker=demo]")
    card.get_by_label("Action", exact=True).select_option("count")
    card.get_by_label("Options (JSON object)", exact=True).fill('{"to": 20, "delay": 0.05}')
    card.get_by_role("button", name="Run").click()

    outcome = card.locator(".run-outcome [data-task-id]")
    expect(outcome.locator(".status")).to_have_text("completed")
    bar = outcome.locator(".progress-box")
    expect(bar).to_have_attribute("data-progress", "100")
    expect(bar.locator("progress")).to_have_js_property("value", 100)
    expect(bar).to_contain_text("100 %")
    task_id = int(outcome.get_attribute("data-task-id") or 0)
    task = server.task(task_id)
    assert task["identifier"] == "demo" and task["action"] == "count"
    assert task["meta"] == {"to": 20, "delay": 0.05} and task["status_text"] == "completed"


def test_a_result_file_downloads_from_the_task_detail(server: Server, page: Page) -> None:
    sign_in(page)
    page.get_by_role("link", name="Workers").click()
    card = page.locator("[data-worker=report]")
    card.get_by_label("Options (JSON object)", exact=True).fill('{"rows": 250}')
    card.get_by_role("button", name="Run").click()
    outcome = card.locator(".run-outcome [data-task-id]")
    expect(outcome.locator(".progress-box")).to_have_attribute("data-progress", "100")
    expect(outcome.locator(".status")).to_have_text("completed")

    outcome.get_by_role("link").click()  # "Task <id>": the detail on the Tasks tab
    detail = page.locator("#task-detail")
    expect(detail.locator(".status")).to_have_text("completed")
    expect(detail.locator(".log-lines")).to_contain_text("report written")
    with page.expect_download() as info:
        detail.get_by_role("link", name="Download result").click()
    download = info.value
    task_id = int(outcome.get_attribute("data-task-id") or 0)
    assert download.suggested_filename == f"report-{task_id}.csv"
    expected = io.StringIO(newline="")
    writer = csv.writer(expected)
    writer.writerow(["row", "square"])
    writer.writerows([i, i * i] for i in range(1, 251))
    assert Path(download.path()).read_bytes() == expected.getvalue().encode()


def test_cancel_and_retry_a_running_task_from_the_tasks_tab(server: Server, page: Page) -> None:
    task_id = server.run("demo", "count", {"to": 100000, "delay": 0.05})
    server.wait_status(task_id, "running")
    sign_in(page)
    page.get_by_role("link", name="Tasks").click()
    row = page.locator(f"#task-list tr[data-task-id='{task_id}']")
    expect(row.locator(".status")).to_have_text("running")
    row.get_by_role("link", name=f"Task {task_id}").click()

    detail = page.locator("#task-detail")
    expect(detail.get_by_role("heading", name=f"Task {task_id}")).to_be_visible()
    detail.get_by_role("button", name="Cancel").click()
    expect(detail.locator(".status")).to_have_text("cancelled")
    expect(page.locator("#notice")).to_contain_text("Task cancelled")
    server.wait_status(task_id, "cancelled")

    detail.get_by_role("button", name="Retry").click()
    expect(detail.locator(".status")).to_have_text(re.compile("^(pending|preparing|running)$"))
    expect(detail.get_by_role("button", name="Cancel")).to_be_visible()
    server.wait_status(task_id, "pending", "preparing", "running")
    assert server.task(task_id)["attempts"] <= 1  # a fresh set of attempts


def test_strings_from_tasks_render_as_text(
    server: Server, page: Page, dialogs: list[str], dsn: str
) -> None:
    # By SQL: the API refuses an action that the sample worker does not have.
    hostile = scalar(
        dsn,
        "INSERT INTO s_tasks (identifier, action, meta, concurrency_key)"
        " VALUES ('sample', %s, %s, %s) RETURNING id",
        (XSS_IMG, json.dumps({"note": XSS_SCRIPT, XSS_IMG: XSS_IMG}), XSS_SCRIPT),
    )
    assert isinstance(hostile, int)
    failing = server.run("sample", "fail", {"error": f"{XSS_SCRIPT}{XSS_IMG}"}, max_attempts=1)
    server.wait_status(hostile, "failed")
    server.wait_status(failing, "failed")
    sign_in(page)

    recent = page.locator("#recent-tasks")
    expect(recent.locator(f"tr[data-task-id='{hostile}'] .action")).to_have_text(XSS_IMG)
    failures = page.locator("#recent-failures")
    expect(failures.locator(f"tr[data-task-id='{failing}'] .message")).to_contain_text(
        f"{XSS_SCRIPT}{XSS_IMG}"
    )
    page.goto(f"/stask/#task/{hostile}")
    detail = page.locator("#task-detail")
    expect(detail.locator(".action")).to_have_text(XSS_IMG)
    expect(detail.locator("pre.json").first).to_contain_text(XSS_SCRIPT)
    expect(detail.locator(".concurrency-key")).to_have_text(XSS_SCRIPT)
    page.goto(f"/stask/#task/{failing}")
    expect(detail.locator(".log-lines")).to_contain_text(XSS_SCRIPT)
    expect(detail.locator("dd .message").first).to_contain_text(XSS_IMG)
    expect(detail.locator(".concurrency-key")).to_have_count(0)  # shown only when set

    # Nothing was parsed as markup: no image, no script in the body, no handler, no dialog.
    assert page.locator("img").count() == 0
    assert page.locator("body script").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    assert dialogs == []


def test_bad_options_and_refused_writes_are_shown_as_messages(server: Server, page: Page) -> None:
    sign_in(page, RO_TOKEN)
    page.get_by_role("link", name="Workers").click()
    card = page.locator("[data-worker=demo]")
    options = card.get_by_label("Options (JSON object)", exact=True)
    error = card.locator("form.run .field-error")

    options.fill("{not json")
    card.get_by_role("button", name="Run").click()
    expect(error).to_contain_text("Options are not valid JSON")
    options.fill("[1, 2]")
    card.get_by_role("button", name="Run").click()
    expect(error).to_contain_text("Options must be a JSON object")
    options.fill('{"to": 1}')
    card.get_by_role("button", name="Run").click()  # valid, but the token is read-only
    expect(error).to_have_text("Forbidden: this token is read-only")
    assert server.api.get("/stask/tasks").json()["count"] == 0


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
def test_forms_posted_from_another_origin_are_refused(
    server: Server, browser: Browser, context: BrowserContext, page: Page, site: str
) -> None:
    """An attacker's page posts a form to a write endpoint with the victim's cookie (another
    port of the same host is the same *site*, so SameSite=Strict still sends it) and to the
    sign-in form with the attacker's own token."""
    task_id = server.create("nobody", "wait")
    sign_in(page)
    host = "127.0.0.1" if site == "same-site" else "localhost"
    attacker = f"http://{host}:{_free_port()}"
    forms = f"""<!doctype html><title>prize</title>
        <form id="cancel" method="post" action="{server.base}/stask/task/{task_id}/cancel">
          <button>Cancel it</button></form>
        <form id="login" method="post" action="{server.base}/stask/login">
          <input name="token" value="{RO_TOKEN}"><button>Sign in as the attacker</button></form>"""
    context.route(
        f"{attacker}/**", lambda route: route.fulfill(body=forms, content_type="text/html")
    )
    page.goto(f"{attacker}/prize")
    with page.expect_response(f"{server.base}/stask/task/{task_id}/cancel") as cancel:
        page.get_by_role("button", name="Cancel it").click()
    assert cancel.value.status == (403 if site == "same-site" else 401)
    assert server.task(task_id)["status_text"] == "pending"

    page.goto(f"{attacker}/prize")
    with page.expect_response(f"{server.base}/stask/login") as login:
        page.get_by_role("button", name="Sign in as the attacker").click()
    assert login.value.status == 403
    assert _session_cookies(context) == [RW_TOKEN]  # still the victim's own session


def test_filters_and_pages_of_the_tasks_tab(server: Server, page: Page) -> None:
    for n in range(30):
        server.create("nobody", "wait", {"n": n})
    other = [server.create("elsewhere", "sync", {}) for _ in range(2)]
    sign_in(page)
    page.get_by_role("link", name="Tasks").click()
    rows = page.locator("#task-list tbody tr[data-task-id]")
    expect(rows).to_have_count(25)
    page.get_by_role("button", name="Older tasks").click()
    expect(rows).to_have_count(32)
    expect(page.get_by_role("button", name="Older tasks")).to_be_hidden()

    page.get_by_label("Worker").fill("elsewhere")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-task-id", str(other[1]))
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#task-list tbody tr.empty")).to_have_text("No tasks match.")
    page.get_by_role("button", name="Reset").click()
    expect(rows).to_have_count(25)


def test_workers_are_switched_and_their_settings_saved(server: Server, page: Page) -> None:
    sign_in(page)
    page.get_by_role("link", name="Workers").click()
    card = page.locator("[data-worker=demo]")
    card.get_by_role("button", name="Deactivate").click()
    expect(card.locator(".state")).to_have_text("inactive")
    expect(card.get_by_role("button", name="Run")).to_be_disabled()
    assert server.api.get("/stask/worker/demo").json()["worker"]["active"] is False
    card.get_by_role("button", name="Activate").click()
    expect(card.locator(".state")).to_have_text("active")
    assert server.api.get("/stask/worker/demo").json()["worker"]["active"] is True

    card.get_by_text("Settings", exact=True).click()
    card.get_by_role("button", name="Edit").click()
    editor = card.get_by_label("Settings (JSON)")
    editor.fill('{"timeout": "soon"')
    card.get_by_role("button", name="Save settings").click()
    expect(card.locator("details .field-error")).to_contain_text("Settings are not valid JSON")
    editor.fill('{"timeout": 30, "note": "set from the dashboard"}')
    card.get_by_role("button", name="Save settings").click()
    expect(card.locator("details pre.json")).to_contain_text('"timeout": 30')
    settings = server.api.get("/stask/worker/demo").json()["worker"]["settings"]
    assert settings == {"timeout": 30, "note": "set from the dashboard"}

    # Limits: a value the claim could not enforce is refused with the server's message; a valid
    # one is shown on the card as the claim enforces it.
    expect(card.locator(".limits")).to_have_count(0)
    card.get_by_text("Settings", exact=True).click()
    card.get_by_role("button", name="Edit").click()
    editor.fill('{"max_running": 0}')
    card.get_by_role("button", name="Save settings").click()
    expect(card.locator("details .field-error")).to_contain_text("max_running must be a whole")
    editor.fill('{"max_running": 2, "rate_limit": {"limit": 5, "per": 60, "per_key": true}}')
    card.get_by_role("button", name="Save settings").click()
    expect(card.locator(".limits")).to_have_text(
        "Limits: at most 2 running, 5 starts per 60 s per key"
    )
    flow = server.api.get("/stask/worker/demo").json()["worker"]["flow"]
    assert flow == {"max_running": 2, "rate_limit": {"limit": 5, "per": 60.0, "per_key": True}}


def test_schedules_are_listed_paused_resumed_and_run_from_their_tab(
    server: Server, page: Page
) -> None:
    added = server.api.post(
        "/stask/schedules",
        json={
            "name": "nightly",
            "identifier": "demo",
            "action": "count",
            "cron": "0 3 * * *",
            "timezone": "Europe/Kyiv",
            "data": {"to": 3},
        },
    )
    assert added.status_code == 201, added.text
    sign_in(page)
    page.get_by_role("link", name="Schedules").click()
    row = page.locator("[data-schedule=nightly]")
    expect(row).to_contain_text("0 3 * * *")
    expect(row).to_contain_text("Europe/Kyiv")
    expect(row).to_contain_text("demo · count")
    expect(row.locator(".state")).to_have_text("active")

    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".state")).to_have_text("paused")
    assert server.api.get("/stask/schedules/nightly").json()["schedule"]["active"] is False
    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".state")).to_have_text("active")
    assert server.api.get("/stask/schedules/nightly").json()["schedule"]["active"] is True

    row.get_by_role("button", name="Run now").click()
    expect(page.locator("#notice")).to_contain_text("Task queued by schedule nightly")
    tasks = server.api.get("/stask/tasks", params={"identifier": "demo"}).json()["tasks"]
    assert [t["meta"] for t in tasks] == [{"to": 3}]


def test_presets_are_listed_and_started_from_their_tab(server: Server, page: Page) -> None:
    preset = {
        "name": "count-to-3",
        "identifier": "demo",
        "action": "count",
        "data": {"to": 3, "label": XSS_IMG},
        "priority": "low",
        "description": f"Counts to three {XSS_SCRIPT}",
    }
    assert server.api.post("/stask/presets", json=preset).status_code == 201
    schedule = {"name": "nightly", "preset": "count-to-3", "cron": "0 3 * * *"}
    assert server.api.post("/stask/schedules", json=schedule).status_code == 201
    sign_in(page)
    page.get_by_role("link", name="Presets").click()
    row = page.locator("[data-preset=count-to-3]")
    expect(row).to_contain_text("demo · count")
    expect(row).to_contain_text(XSS_IMG)  # as text, never as markup
    expect(row).to_contain_text(f"Counts to three {XSS_SCRIPT}")
    expect(row).to_contain_text("low")
    expect(row).to_contain_text("nightly")

    row.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator("#notice")).to_contain_text("Task queued from preset count-to-3")
    expect(row.locator(".started a")).to_have_text(re.compile(r"#\d+"))

    row.get_by_text("Start with…").click()
    editor = row.get_by_label("Data merged over the preset's (JSON)")
    editor.fill('{"to": 5')
    row.get_by_role("button", name="Start with this data").click()
    expect(row.locator(".field-error")).to_contain_text("Data are not valid JSON")
    editor.fill('{"to": 5, "delay": 0}')
    row.get_by_role("button", name="Start with this data").click()
    expect(row.locator(".field-error")).to_be_hidden()

    def metas() -> list[dict[str, Any]]:
        tasks = server.api.get("/stask/tasks", params={"identifier": "demo"}).json()["tasks"]
        return [t["meta"] for t in tasks]

    wait_for(lambda: len(metas()) == 2)
    assert metas() == [
        {"to": 5, "delay": 0, "label": XSS_IMG},
        {"to": 3, "label": XSS_IMG},
    ]

    # Removed meanwhile: the server's answer shows under the row.
    assert server.api.delete("/stask/presets/count-to-3").status_code == 200
    row.get_by_role("button", name="Start", exact=True).click()
    expect(row.locator(".field-error")).to_contain_text("no preset is named 'count-to-3'")

    page.get_by_role("link", name="Schedules").click()
    scheduled = page.locator("[data-schedule=nightly]")
    expect(scheduled).to_contain_text("preset count-to-3")
    expect(scheduled).to_contain_text("missing")


def test_the_performance_tab_shows_figures_and_clears_the_cache(server: Server, page: Page) -> None:
    done = server.run("sample", "fail", {"error": "disk full"}, max_attempts=1)
    server.wait_status(done, "failed")
    sign_in(page)
    page.get_by_role("link", name="Performance").click()
    expect(page.locator("#performance-summary")).to_contain_text("disk full")
    worker_row = page.locator("#performance-workers tbody tr", has_text="sample")
    expect(worker_row).to_be_visible()
    expect(page.locator("#cache-stats")).to_contain_text("Hit rate")
    page.get_by_role("button", name="Clear cache").click()
    expect(page.locator("#notice")).to_have_text("All worker cache cleared")
    expect(page.locator("#cache-stats dd").nth(3)).to_have_text("0")  # entries
    page.get_by_label("Window").select_option("1")
    expect(worker_row).to_be_visible()


def test_running_tasks_show_their_live_message_and_a_counting_duration(
    server: Server, page: Page
) -> None:
    counting = server.run("demo", "count", {"to": 100000, "delay": 0.05})
    silent = server.run("demo", "count", {"to": 1, "delay": 600})  # no report for 10 minutes
    server.wait_status(counting, "running")
    server.wait_status(silent, "running")
    sign_in(page)

    for table in ("#recent-tasks", "#task-list"):
        if table == "#task-list":
            page.get_by_role("link", name="Tasks").click()
        row = page.locator(f"{table} tr[data-task-id='{counting}']")
        expect(row.locator(".col-message")).to_have_text(re.compile(r"^Counted \d+ of 100000$"))
        duration = row.locator(".col-duration .duration")
        expect(duration).to_have_text(re.compile(r"^(\d+ s|\d+m \d\ds)$"))
        expect(duration).not_to_have_text(duration.inner_text())  # it counts up
        quiet = page.locator(f"{table} tr[data-task-id='{silent}']")
        expect(quiet.locator(".status")).to_have_text("running")
        expect(quiet.locator(".col-message")).to_have_text("Task started")  # not "Task queued"
        expect(quiet.locator(".col-duration .duration")).to_have_text(re.compile(r"^\d"))

    page.goto(f"/stask/#task/{counting}")
    detail = page.locator("#task-detail")
    message = detail.locator(".live-message")
    expect(message).to_have_text(re.compile(r"^Counted \d+ of 100000$"))
    expect(message).not_to_have_text(message.inner_text())  # the live message, as it changes
    duration = detail.locator(".duration")
    expect(duration).to_have_text(re.compile(r"^(\d+ s|\d+m \d\ds)$"))
    expect(duration).not_to_have_text(duration.inner_text())
    page.goto(f"/stask/#task/{silent}")
    expect(detail.get_by_role("heading", name=f"Task {silent}")).to_be_visible()
    expect(detail.locator(".live-message")).to_have_text("Task started")


def test_tracebacks_and_multi_line_log_values_are_preformatted_text(
    server: Server, page: Page, dialogs: list[str]
) -> None:
    error = f"{XSS_SCRIPT}\nsecond line"
    failing = server.run("sample", "fail", {"error": error}, max_attempts=1)
    server.wait_status(failing, "failed")
    sign_in(page)
    page.goto(f"/stask/#task/{failing}")
    detail = page.locator("#task-detail")

    last_error = detail.locator("pre.last-error")
    expect(last_error).to_contain_text("Traceback (most recent call last):")
    expect(last_error).to_contain_text(f"RuntimeError: {error}")
    assert "\n  File " in last_error.inner_text()  # rendered on lines of their own
    assert last_error.evaluate("e => getComputedStyle(e).whiteSpace") in ("pre", "pre-wrap")

    record = detail.locator(".log-lines .log-record", has_text="Failed: RuntimeError")
    traceback = record.locator(".log-context pre")
    expect(traceback).to_contain_text("Traceback (most recent call last):")
    assert "\n  File " in traceback.inner_text()
    assert "\\n" not in record.inner_text()  # no escaped newlines
    expect(record.locator(".log-message")).to_contain_text(XSS_SCRIPT)
    expect(record.locator(".log-context")).to_contain_text("max_attempts")

    assert page.locator("body script").count() == 0
    assert dialogs == []


def test_the_chart_names_the_days_and_times_of_its_axis(
    server: Server, browser: Browser, dialogs: list[str]
) -> None:
    before = datetime.now(UTC)
    made = browser.new_context(base_url=server.base, locale="en-US", timezone_id="UTC")
    try:
        page = made.new_page()
        sign_in(page)
        labels = page.locator("#timeline-chart text.axis.time")
        expect(labels.locator(".date").first).to_be_visible()
        shown = labels.evaluate_all(
            "ls => ls.map(l => [l.dataset.time, l.firstChild.textContent,"
            " l.querySelector('.date')?.textContent ?? null])"
        )
    finally:
        made.close()
    assert len(shown) >= 2
    days = []
    for iso, label, day in shown:
        at = datetime.fromisoformat(iso)
        time = label.replace("\u202f", " ")  # ICU puts a narrow space before AM/PM
        assert time == at.strftime("%I:%M %p"), shown
        if day is not None:
            assert day == f"{at:%a}, {at:%b} {at.day}", shown
            days.append(day)
    assert shown[0][2] is not None  # the first tick names its day
    # 24 hours always cross today's midnight (the day the page was drawn on).
    today = {f"{d:%a}, {d:%b} {d.day}" for d in (before, datetime.now(UTC))}
    assert today & set(days), (today, days)


def test_workers_show_an_icon_from_the_built_in_set(server: Server, page: Page) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page)
    page.get_by_role("link", name="Workers").click()
    for worker, icon in (("demo", "play"), ("report", "file"), ("sample", "default")):
        box = page.locator(f"[data-worker={worker}] .worker-icon")
        expect(box.locator(f"svg[data-icon={icon}]")).to_have_count(1)
        expect(box).to_have_text("")  # a picture, not a letter
        assert box.locator("svg > *").count() > 0
    names = page.evaluate(
        """async () => {
            const icons = await import("./static/js/icons.js");
            const given = ['<i class="fa fa-envelope"></i>', "fa-solid fa-cube", "cube",
                "Database", "bi-clock", "", "nonsense", "<img src=x>"];
            const drawn = icons.ICON_NAMES.map((n) => icons.workerIcon(n).childElementCount);
            return {names: given.map(icons.iconName), drawn};
        }"""
    )
    assert names["names"] == [
        "mail",
        "box",
        "box",
        "database",
        "clock",
        "default",
        "default",
        "default",
    ]
    assert len(names["drawn"]) >= 20 and all(n > 0 for n in names["drawn"])
    assert all(url.startswith(f"{server.base}/") for url in requests), requests


def test_every_tab_fits_a_phone_screen(server: Server, browser: Browser) -> None:
    running = server.run("demo", "count", {"to": 100000, "delay": 0.05})
    long_error = "a-very-long-error-without-spaces-" * 8
    failed = server.run("sample", "fail", {"error": long_error}, max_attempts=1)
    for n in range(3):
        server.create("nobody", "wait", {"n": n})
    server.wait_status(running, "running")
    server.wait_status(failed, "failed")
    schedule = {
        "identifier": "demo",
        "action": "count",
        "cron": "@hourly",
        "timezone": "America/Argentina/Buenos_Aires",
    }
    assert server.api.post("/stask/schedules", json={"name": "hourly-count", **schedule}).is_success
    preset = {"name": "count-to-3", "identifier": "demo", "action": "count", "data": {"to": 3}}
    assert server.api.post("/stask/presets", json=preset).is_success
    made = browser.new_context(base_url=server.base, viewport={"width": 390, "height": 844})
    try:
        page = made.new_page()
        page.goto("/stask/login")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        sign_in(page)
        views = {
            "#dashboard": "#recent-tasks tbody tr[data-task-id]",
            "#tasks": "#task-list tbody tr[data-task-id]",
            f"#task/{failed}": "#task-detail pre.last-error",
            f"#task/{running}": "#task-detail .log-lines li",
            "#workers": "[data-worker=demo] .worker-icon svg",
            "#schedules": "[data-schedule=hourly-count]",
            "#presets": "[data-preset=count-to-3]",
            "#performance": "#performance-workers tbody tr",
        }
        for view, ready in views.items():
            page.goto(f"/stask/{view}")
            expect(page.locator(ready).first).to_be_visible()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{view} is {width} px wide"
            nav = page.get_by_role("link", name="Performance").bounding_box()
            assert nav is not None and nav["x"] + nav["width"] <= 390, view
    finally:
        made.close()


#: The fill of a node of each status in the workflow graph (the status badges' colours).
NODE_FILL = {
    "pending": "rgb(148, 163, 184)",
    "waiting": "rgb(124, 58, 237)",
    "completed": "rgb(22, 163, 74)",
}


def test_a_workflow_is_drawn_as_a_graph_whose_colours_follow_the_statuses(
    server: Server, page: Page, dsn: str
) -> None:
    # A diamond A -> B, C -> D. No daemon has worker "nobody": A and C stay pending until the
    # test ends A itself; B and D are the sample worker's, which the daemon runs once released.
    created = server.api.post(
        "/stask/workflows",
        json={
            "tasks": [
                {"ref": "a", "identifier": "nobody", "action": "wait"},
                {"ref": "b", "identifier": "sample", "action": "noop", "depends_on": ["a"]},
                {"ref": "c", "identifier": "nobody", "action": "wait", "depends_on": ["a"]},
                {"ref": "d", "identifier": "sample", "action": "noop", "depends_on": ["b", "c"]},
            ]
        },
    )
    assert created.status_code == 201, created.text
    ids = created.json()["refs"]
    a, b, c, d = (ids[r] for r in "abcd")
    sign_in(page)

    # The Tasks tab filters on the new status; a task's detail links its parents and children.
    page.get_by_role("link", name="Tasks").click()
    page.get_by_label("Status").select_option("waiting")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#task-list tbody tr[data-task-id]")
    expect(rows).to_have_count(3)
    expect(rows.locator(".status-waiting")).to_have_count(3)
    page.goto(f"/stask/#task/{b}")
    detail = page.locator("#task-detail")
    expect(detail.locator(".related.parents li")).to_have_count(1)
    expect(detail.locator(".related.parents").get_by_role("link")).to_have_text(f"#{a}")
    expect(detail.locator(".related.children li")).to_have_attribute("data-task-id", str(d))
    expect(detail).to_contain_text("1 of 1 parent(s) to finish")
    detail.locator(".related.parents").get_by_role("link", name=f"Task {a}").click()
    expect(page).to_have_url(f"{server.base}/stask/#task/{a}")
    expect(detail.locator(".related.children li")).to_have_count(2)
    expect(detail.locator(".related.parents")).to_have_count(0)

    detail.get_by_role("link", name="Workflow graph").click()
    expect(page).to_have_url(f"{server.base}/stask/#workflow/{a}")
    graph = page.locator("#workflow-graph svg")
    nodes = graph.locator(".node")
    expect(nodes).to_have_count(4)
    edges = graph.locator(".edge")
    expect(edges).to_have_count(4)
    drawn = {
        (int(e.get_attribute("data-from") or 0), int(e.get_attribute("data-to") or 0))
        for e in edges.all()
    }
    assert drawn == {(a, b), (a, c), (b, d), (c, d)}
    expect(graph.locator(f".node[data-task-id='{a}']")).to_have_class(re.compile(r"\bcurrent\b"))

    def node(task_id: int) -> Any:
        return graph.locator(f".node[data-task-id='{task_id}']")

    def colours(expected: dict[int, str]) -> None:
        for task_id, status in expected.items():
            expect(node(task_id)).to_have_attribute("data-status", status)
            expect(node(task_id).locator("rect")).to_have_css("fill", NODE_FILL[status])

    colours({a: "pending", b: "waiting", c: "waiting", d: "waiting"})
    # Layered by depth: A above B and C, which are side by side above D.
    y = {t: (node(t).bounding_box() or {}).get("y", -1.0) for t in (a, b, c, d)}
    assert y[a] < y[b] == y[c] < y[d]

    # A completes (as any SQL client may end it): B is released and run by the daemon, C is
    # released and stays pending, D waits for C. The graph follows without a reload.
    scalar(
        dsn,
        "UPDATE s_tasks SET status = 80, finished_at = now(), message = 'ended by the test'"
        " WHERE id = %s RETURNING id",
        (a,),
    )
    colours({a: "completed", b: "completed", c: "pending", d: "waiting"})
    expect(node(d).locator(".state")).to_have_text("waiting for 1")
    expect(graph.locator(f".edge[data-from='{a}'][data-to='{b}']")).to_have_class(
        re.compile("from-completed")
    )
    expect(page.locator(".workflow-summary [data-status=completed]")).to_contain_text("2")

    node(c).click()  # a node links to its task
    expect(page).to_have_url(f"{server.base}/stask/#task/{c}")
    expect(detail.get_by_role("heading", name=f"Task {c}")).to_be_visible()
