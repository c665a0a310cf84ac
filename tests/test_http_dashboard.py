"""The dashboard's HTTP side: sign-in and sign-out, the page and its static files, their
security headers. What the page does in a browser is in ``test_dashboard.py``."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from pgstask.http import create_app
from pgstask.http.middleware import COOKIE
from pgstask.http.routes.dashboard import CSP, STATIC_DIR
from pgstask.settings import Settings
from tests.http_support import BASE_URL, RO_TOKEN, RW_TOKEN, http_settings
from tests.test_migrations import REPO, _build_wheel

SAME_ORIGIN = {"Origin": BASE_URL}


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    """A client without a token, as a browser arrives (it follows no redirects)."""
    app = create_app(settings, http_settings())
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as client:
        yield client


def _set_cookie(response: httpx.Response) -> str:
    return ";".join(response.headers.get_list("set-cookie"))


def test_the_sign_in_page_needs_no_token_and_forbids_framing(browser: TestClient) -> None:
    page = browser.get("/stask/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="login">' in page.text
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert re.search(r"style-src 'self' 'sha256-[A-Za-z0-9+/]+=*'", policy)
    assert page.headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in page.headers


def test_a_wrong_token_shows_the_form_again_and_sets_nothing(browser: TestClient) -> None:
    wrong = browser.post("/stask/login", data={"token": "not-a-token-at-all"}, headers=SAME_ORIGIN)
    assert wrong.status_code == 401
    assert "That token is not valid." in wrong.text
    assert "set-cookie" not in wrong.headers
    empty = browser.post("/stask/login", data={"token": "  "}, headers=SAME_ORIGIN)
    assert empty.status_code == 401 and "set-cookie" not in empty.headers
    too_long = browser.post("/stask/login", data={"token": "x" * 600}, headers=SAME_ORIGIN)
    assert too_long.status_code == 401 and "set-cookie" not in too_long.headers


def test_the_right_token_sets_a_strict_httponly_cookie(browser: TestClient) -> None:
    signed_in = browser.post("/stask/login", data={"token": RW_TOKEN}, headers=SAME_ORIGIN)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/stask/"
    cookie = _set_cookie(signed_in)
    assert cookie.startswith(f"{COOKIE}={RW_TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    page = browser.get("/stask/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and '<script type="module"' in page.text


def test_over_https_the_cookie_is_secure(settings: Settings) -> None:
    app = create_app(settings, http_settings())
    with TestClient(app, base_url="https://127.0.0.1", follow_redirects=False) as client:
        response = client.post(
            "/stask/login", data={"token": RO_TOKEN}, headers={"Origin": "https://127.0.0.1"}
        )
    assert response.status_code == 303
    assert "Secure" in _set_cookie(response)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/stask/login"},
        {"Origin": "http://127.0.0.1:9999"},
        {"Origin": BASE_URL, "Sec-Fetch-Site": "cross-site"},
        {"Origin": BASE_URL, "Sec-Fetch-Site": "same-site"},
    ],
)
def test_sign_in_and_out_from_another_origin_are_refused(
    browser: TestClient, headers: dict[str, str]
) -> None:
    login = browser.post("/stask/login", data={"token": RW_TOKEN}, headers=headers)
    assert login.status_code == 403, login.text
    assert login.json()["success"] is False
    assert "set-cookie" not in login.headers
    browser.cookies.set(COOKIE, RW_TOKEN)
    logout = browser.post("/stask/logout", headers=headers)
    assert logout.status_code == 403 and "set-cookie" not in logout.headers


def test_a_referer_of_this_host_is_enough_to_sign_in(browser: TestClient) -> None:
    response = browser.post(
        "/stask/login",
        data={"token": RW_TOKEN},
        headers={"Referer": f"{BASE_URL}/stask/login", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 303


def test_sign_out_clears_the_cookie_even_for_a_read_only_token(browser: TestClient) -> None:
    browser.post("/stask/login", data={"token": RO_TOKEN}, headers=SAME_ORIGIN)
    assert browser.get("/stask/stats").status_code == 200
    out = browser.post("/stask/logout", headers=SAME_ORIGIN)
    assert out.status_code == 303 and out.headers["location"] == "/stask/login"
    assert re.search(rf'{COOKIE}=""; .*Max-Age=0', _set_cookie(out))
    assert browser.get("/stask/stats").status_code == 401


def test_the_dashboard_sends_browsers_without_a_cookie_to_sign_in(browser: TestClient) -> None:
    for path in ("/stask", "/stask/"):
        response = browser.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 303 and response.headers["location"] == "/stask/login"
    browser.cookies.set(COOKIE, "a-token-that-is-not-configured")
    stale = browser.get("/stask/", headers={"Accept": "text/html"})
    assert stale.status_code == 303
    assert browser.get("/stask/static/js/main.js").status_code == 401


def test_the_page_and_its_files_carry_the_security_headers(browser: TestClient) -> None:
    browser.cookies.set(COOKIE, RO_TOKEN)
    assert browser.get("/stask").headers["location"] == "/stask/"
    page = browser.get("/stask/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    script = browser.get("/stask/static/js/main.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.headers["x-content-type-options"] == "nosniff"
    assert script.headers["content-security-policy"] == CSP
    assert browser.get("/stask/static/../routes/dashboard.py").status_code == 404
    assert browser.get("/stask/static/missing.js").status_code == 404


def test_the_scripts_never_write_html() -> None:
    """Data reaches the page only as text: no HTML sinks, no eval, no inline handlers."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"setAttribute\(\s*[\"']on"
    )
    scripts = sorted(STATIC_DIR.rglob("*.js"))
    assert scripts
    for path in scripts:
        found = sinks.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path.name}: {found}"
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)|\son[a-z]+=|style=", page)


@pytest.mark.slow
def test_the_wheel_carries_the_dashboard(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        assert path.relative_to(REPO).as_posix() in names


def test_a_cookie_write_the_browser_calls_cross_site_is_refused(browser: TestClient) -> None:
    """``Sec-Fetch-Site`` (sent by every current browser) vetoes an ``Origin`` that matches."""
    browser.cookies.set(COOKIE, RW_TOKEN)
    body = {"identifier": "a", "action": "b"}
    csrf = {"X-Pgstask-Request": "1", "Origin": BASE_URL}
    refused = browser.post(
        "/stask/task", json=body, headers={**csrf, "Sec-Fetch-Site": "same-site"}
    )
    assert refused.status_code == 403
    allowed = browser.post(
        "/stask/task", json=body, headers={**csrf, "Sec-Fetch-Site": "same-origin"}
    )
    assert allowed.status_code == 201, allowed.text
