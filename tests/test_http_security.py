"""HTTP API security: tokens, scopes, Host allowlist, CSRF for the dashboard's cookie, body caps."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from pgstask.errors import ConfigurationError
from pgstask.http import create_app
from pgstask.http.auth import FailedAttempts, digest, find_token, new_token, parse_tokens
from pgstask.http.middleware import COOKIE
from pgstask.settings import Settings
from tests.http_support import BASE_URL, RO_TOKEN, RW_TOKEN, api, http_settings


def test_every_route_but_healthz_needs_a_token(settings: Settings) -> None:
    with api(settings, token=None) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        for method, path in [
            ("GET", "/stask/stats"),
            ("GET", "/readyz"),
            ("GET", "/stask/task/1"),
            ("POST", "/stask/task"),
            ("POST", "/stask/worker/demo/run/noop"),
        ]:
            response = http.request(method, path)
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["success"] is False


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-token-wrong-token", "Bearer ", "Basic dXNlcjpwYXNz", RW_TOKEN, "Bearer"],
)
def test_a_wrong_or_malformed_token_is_401(settings: Settings, authorization: str) -> None:
    with api(settings, token=None) as http:
        response = http.get("/stask/stats", headers={"Authorization": authorization})
    assert response.status_code == 401


def test_read_only_token_reads_but_cannot_write(settings: Settings) -> None:
    with api(settings, token=RO_TOKEN) as http:
        assert http.get("/stask/stats").status_code == 200
        response = http.post("/stask/task", json={"identifier": "a", "action": "b"})
        assert response.status_code == 403 and "read-only" in response.json()["message"]
    with api(settings) as http:
        assert http.get("/stask/stats").json()["total"] == 0


def test_host_header_must_be_allowed(settings: Settings) -> None:
    with api(settings) as http:
        assert http.get("/stask/stats", headers={"Host": "evil.example"}).status_code == 400
        assert http.get("/stask/stats", headers={"Host": "localhost:8000"}).status_code == 200
    with api(settings, allowed_hosts=("tasks.example.com",)) as http:
        ok = http.get("/stask/stats", headers={"Host": "tasks.example.com"})
        assert ok.status_code == 200


def _cookie_client(settings: Settings, token: str = RW_TOKEN) -> TestClient:
    client = TestClient(create_app(settings, http_settings()), base_url=BASE_URL)
    client.cookies.set(COOKIE, token)
    return client


def test_cookie_writes_need_the_csrf_header_and_same_origin(settings: Settings) -> None:
    body = {"identifier": "a", "action": "b"}
    with _cookie_client(settings) as http:
        assert http.get("/stask/stats").status_code == 200  # reads: the cookie is enough
        assert http.post("/stask/task", json=body).status_code == 403
        no_origin = http.post("/stask/task", json=body, headers={"X-Pgstask-Request": "1"})
        assert no_origin.status_code == 403
        cross = http.post(
            "/stask/task",
            json=body,
            headers={"X-Pgstask-Request": "1", "Origin": "http://evil.example"},
        )
        assert cross.status_code == 403
        same = http.post(
            "/stask/task", json=body, headers={"X-Pgstask-Request": "1", "Origin": BASE_URL}
        )
        assert same.status_code == 201, same.text
        referer = http.post(
            "/stask/task",
            json=body,
            headers={"X-Pgstask-Request": "1", "Referer": f"{BASE_URL}/stask/"},
        )
        assert referer.status_code == 201


def test_a_malformed_authorization_never_falls_back_to_the_cookie(settings: Settings) -> None:
    with _cookie_client(settings) as http:
        response = http.get("/stask/stats", headers={"Authorization": "Token abc"})
    assert response.status_code == 401


def test_tokens_are_never_logged(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with api(settings, token="not-a-configured-token-xyz") as http:
        http.get("/stask/stats")
    with api(settings) as http:
        http.get("/stask/stats")
        http.get("/stask/task/424242")
    assert "not-a-configured-token-xyz" not in caplog.text and RW_TOKEN not in caplog.text


def test_token_parsing() -> None:
    secret = new_token()
    assert len(secret) >= 40
    tokens = parse_tokens(f" rw:{secret} , ro:sha256:{digest('x' * 20).hex()} ,")
    assert [t.writable for t in tokens] == [True, False]
    assert find_token(tokens, secret) is tokens[0]
    assert find_token(tokens, "x" * 20) is tokens[1]
    assert find_token(tokens, "x" * 21) is None
    assert secret not in repr(tokens)
    for bad, needle in [
        ("admin:" + secret, "entry 1 must start with"),
        ("rw:short", "shorter than 16"),
        (f"ro:{secret},rw:sha256:xyz", "entry 2: sha256"),
    ]:
        with pytest.raises(ConfigurationError, match=needle) as raised:
            parse_tokens(bad)
        assert secret not in str(raised.value)


def test_json_bodies_are_capped_without_reading_past_the_cap(settings: Settings) -> None:
    with api(settings, max_body=1000) as http:
        declared = http.post("/stask/task", content=b"{" + b" " * 2000 + b"}")
        assert declared.status_code == 413

        def chunks():  # no Content-Length: the cap applies while reading
            for _ in range(100):
                yield b" " * 100

        streamed = http.post(
            "/stask/task", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413


def test_no_cors_headers_for_other_origins(settings: Settings) -> None:
    with api(settings) as http:
        preflight = http.options(
            "/stask/task",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        read = http.get("/stask/stats", headers={"Origin": "http://evil.example"})
    for response in (preflight, read):
        assert not any(h.lower().startswith("access-control-") for h in response.headers)


def test_readyz_reports_the_database_and_the_schema(settings: Settings) -> None:
    from pgstask import migrate

    with api(settings) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["schema"] == migrate.head_revision()
        migrate.downgrade(settings.dsn or "", "0001")
        stale = http.get("/readyz")
        assert stale.status_code == 503 and "pgstask migrate" in stale.json()["reason"]
    unreachable = settings.replace(dsn="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with api(unreachable) as http:
        down = http.get("/readyz")
        assert down.status_code == 503 and down.json()["database"] is False


def test_failed_attempts_slow_down_one_address_and_forget() -> None:
    now = [1000.0]
    failures = FailedAttempts(
        free=3, base=2.0, maximum=10.0, forget_after=60.0, clock=lambda: now[0]
    )
    for _ in range(3):
        assert failures.wait("a") == 0
        failures.failed("a")
    assert failures.wait("a") == 2  # the 3rd failure reached `free`: 2 s from the last one
    assert failures.wait("b") == 0  # other addresses are not affected
    now[0] += 2.0
    assert failures.wait("a") == 0
    failures.failed("a")
    assert failures.wait("a") == 4  # doubles with each failure
    for _ in range(10):
        failures.failed("a")
    assert failures.wait("a") == 10  # capped
    now[0] += 61.0
    assert failures.wait("a") == 0  # forgotten after `forget_after`
    failures.failed("a")
    assert failures.wait("a") == 0  # counted from zero again


def test_failed_attempts_remember_a_bounded_number_of_addresses() -> None:
    failures = FailedAttempts(free=1, capacity=100)
    for i in range(1000):
        failures.failed(f"10.0.{i // 256}.{i % 256}")
    assert failures.wait("10.0.0.0") == 0  # the oldest were dropped
    assert failures.wait("10.0.3.231") > 0  # the latest kept
    assert len(failures._seen) == 100


def test_repeated_wrong_tokens_get_429_but_tokens_in_use_go_on(settings: Settings) -> None:
    """The wrong-token limit slows guesses from an address, not the users who share it: a
    token accepted from the address before goes on working; any other token, valid or not,
    is refused without being told apart from a wrong one."""
    with api(settings, token=None) as http:
        right = {"Authorization": f"Bearer {RW_TOKEN}"}
        assert http.get("/stask/stats", headers=right).status_code == 200  # in use here
        wrong = {"Authorization": "Bearer wrong-token-wrong-token"}
        codes = [http.get("/stask/stats", headers=wrong).status_code for _ in range(5)]
        assert codes == [401] * 5
        refused = http.get("/stask/stats", headers=wrong)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "too many failed sign-ins" in refused.json()["message"]
        # The token already in use from this address still works while it is limited...
        assert http.get("/stask/stats", headers=right).status_code == 200
        # ...a valid one never accepted from here is refused like a guess: no answer to it.
        unused = http.get("/stask/stats", headers={"Authorization": f"Bearer {RO_TOKEN}"})
        assert unused.status_code == 429 and unused.json() == refused.json()
        # A request without credentials is not a guess: it is still told to authenticate.
        assert http.get("/stask/stats").status_code == 401
        assert http.get("/healthz").status_code == 200
    with api(settings) as other_app:  # each app counts its own failures
        assert other_app.get("/stask/stats").status_code == 200


def test_repeated_wrong_sign_ins_get_429(settings: Settings) -> None:
    app = create_app(settings, http_settings())
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as browser:
        same_origin = {"Origin": BASE_URL}
        for _ in range(5):
            wrong = browser.post("/stask/login", data={"token": "x" * 20}, headers=same_origin)
            assert wrong.status_code == 401
        refused = browser.post("/stask/login", data={"token": RW_TOKEN}, headers=same_origin)
        assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
        assert "set-cookie" not in refused.headers and refused.headers["retry-after"]
        # The cookie path counts and is refused the same way.
        browser.cookies.set(COOKIE, RW_TOKEN)
        assert browser.get("/stask/stats").status_code == 429
    # Signed in before the guessing started: the session goes on, and signing in again with
    # that token works, while guesses are still refused.
    app = create_app(settings, http_settings())
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as browser:
        same_origin = {"Origin": BASE_URL}
        signed = browser.post("/stask/login", data={"token": RW_TOKEN}, headers=same_origin)
        assert signed.status_code == 303
        for _ in range(6):
            browser.post("/stask/login", data={"token": "x" * 20}, headers=same_origin)
        guess = browser.post("/stask/login", data={"token": "y" * 20}, headers=same_origin)
        assert guess.status_code == 429
        assert browser.get("/stask/stats").status_code == 200  # the session's cookie
        again = browser.post("/stask/login", data={"token": RW_TOKEN}, headers=same_origin)
        assert again.status_code == 303


def test_addresses_of_one_ipv6_prefix_share_their_failures() -> None:
    """A host usually holds a whole /64: trying from each of its addresses is one client."""
    failures = FailedAttempts()
    for i in range(6):
        failures.failed(f"2001:db8:1:2::{i:x}")
    assert failures.wait("2001:db8:1:2::ffff") > 0
    assert failures.wait("2001:db8:1:3::1") == 0  # another /64
    for _ in range(6):
        failures.failed("::ffff:192.0.2.7")  # IPv4-mapped
    assert failures.wait("192.0.2.7") > 0


def test_a_token_accepted_from_an_address_passes_while_the_address_is_refused() -> None:
    now = [1000.0]
    failures = FailedAttempts(free=1, forget_after=60.0, clock=lambda: now[0])
    rw, ro = parse_tokens(f"rw:{RW_TOKEN},ro:{RO_TOKEN}")
    assert failures.may_pass("a", rw) and failures.may_pass("a", None)  # nothing failed yet
    failures.accepted("a", rw)
    failures.failed("a")
    assert failures.wait("a") > 0
    assert failures.may_pass("a", rw)
    assert not failures.may_pass("a", ro) and not failures.may_pass("a", None)
    failures.failed("b")
    assert not failures.may_pass("b", rw)  # accepted from another address only
    failures.accepted("2001:db8:1:2::1", ro)
    failures.failed("2001:db8:1:2::7")
    assert failures.may_pass("2001:db8:1:2::7", ro)  # the same /64
    now[0] += 61.0
    failures.failed("a")
    failures.failed("a")
    assert not failures.may_pass("a", rw)  # accepted too long ago


def test_connection_and_stream_settings_are_read_and_checked() -> None:
    from pgstask.http.config import HttpSettings

    read = HttpSettings.from_env(
        {
            "PGSTASK_API_MAX_STREAMS": "7",
            "PGSTASK_API_MAX_STREAMS_PER_TOKEN": "2",
            "PGSTASK_API_STREAM_IDLE": "30.5",
            "PGSTASK_API_HEADER_TIMEOUT": "2.5",
            "PGSTASK_API_BODY_TIMEOUT": "20",
            "PGSTASK_API_KEEP_ALIVE": "3",
            "PGSTASK_API_MAX_CONNECTIONS": "50",
            "PGSTASK_API_FORWARDED_ALLOW_IPS": " 10.0.0.5, 10.1.2.3/16 ,[::1] ",
        }
    )
    assert (read.max_streams, read.max_streams_per_token, read.stream_idle) == (7, 2, 30.5)
    assert (read.header_timeout, read.body_timeout, read.keep_alive) == (2.5, 20.0, 3)
    assert read.max_connections == 50
    assert read.forwarded_allow_ips == ("10.0.0.5", "10.1.0.0/16", "::1")
    assert HttpSettings.from_env({}).forwarded_allow_ips == ()  # nobody by default
    for name, value, needle in [
        ("PGSTASK_API_MAX_STREAMS", "0", "must be positive"),
        ("PGSTASK_API_MAX_CONNECTIONS", "many", "not a whole number"),
        ("PGSTASK_API_HEADER_TIMEOUT", "0", "more than 0 seconds"),
        ("PGSTASK_API_KEEP_ALIVE", "1.5", "not a whole number"),
        ("PGSTASK_API_FORWARDED_ALLOW_IPS", "*", "name the proxies"),
        ("PGSTASK_API_FORWARDED_ALLOW_IPS", "proxy.local", "not an IP address or network"),
    ]:
        with pytest.raises(ConfigurationError, match=needle) as raised:
            HttpSettings.from_env({name: value})
        assert name in str(raised.value)
