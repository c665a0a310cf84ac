"""Pure ASGI middleware: the body cap and the access rule (token, write scope, CSRF), and the
caller's trace context.

The first two run before any route reads the request, and both answer with the JSON error body.
``TraceContext`` (only in an app built with telemetry on) makes a request's ``traceparent`` the
current context, so the tasks it creates continue the caller's trace.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pgstask import telemetry
from pgstask.http.auth import ApiToken, FailedAttempts, find_token
from pgstask.http.errors import ApiError, error_response
from pgstask.http.paths import rooted, route_path

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "pgstask_token"
CSRF_HEADER = "x-pgstask-request"
#: Served without a token. The sign-in and sign-out routes check the origin themselves
#: (``same_origin``): signing out must work with a read-only or revoked token too.
PUBLIC_PATHS = frozenset({"/healthz", "/stask/login", "/stask/logout"})


class TraceContext:
    """Handle each HTTP request inside the trace context of its ``traceparent`` header, unless a
    span is current already (a server instrumentation's: ``pgstask.telemetry.incoming``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with telemetry.incoming(Headers(scope=scope)):
            await self.app(scope, receive, send)


class BodyLimit:
    """Reject bodies over the limit of their path: at once from ``Content-Length``, else while
    reading (chunked uploads), never reading more than the limit plus one message."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(route_path(scope))
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await error_response(400, "Bad request", "invalid Content-Length")(
                    scope, receive, send
                )
                return
            if declared > limit:
                await _too_large(limit)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(413, _too_large_text(limit))
            return message

        await self.app(scope, limited, send)


def _too_large_text(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


def _too_large(limit: int) -> Response:
    return error_response(413, "Request body too large", _too_large_text(limit))


class Access:
    """Who may do what. Every path but ``PUBLIC_PATHS`` needs a token: ``Authorization: Bearer``
    (scripts) or the dashboard's session cookie. Writes need a read-write token; writes with the
    cookie also need the ``X-Pgstask-Request`` header and a same-origin ``Origin`` (or, without
    one, ``Referer``), which a cross-site form or image cannot produce."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: Callable[[], tuple[ApiToken, ...]],
        failures: FailedAttempts,
        cookie: str = COOKIE,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.failures = failures
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        response = self._check(scope, headers)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, headers: Headers) -> Response | None:
        method = scope["method"]
        presented, by_cookie = _presented(headers, self.cookie)
        if presented is None:
            if method in SAFE_METHODS and _wants_html(scope, headers):
                return RedirectResponse(rooted(scope, "/stask/login"), status_code=303)
            return error_response(401, "Unauthorized", "send Authorization: Bearer <token>")
        address = client_address(scope)
        token = find_token(self.tokens(), presented)
        if not self.failures.may_pass(address, token):  # a guess gets no answer
            return too_many_failures(self.failures.wait(address))
        if token is None:
            self.failures.failed(address)
            if by_cookie and method in SAFE_METHODS and _wants_html(scope, headers):
                return RedirectResponse(rooted(scope, "/stask/login"), status_code=303)
            return error_response(401, "Unauthorized", "the token is not valid")
        self.failures.accepted(address, token)
        scope.setdefault("state", {})["token"] = token
        if method in SAFE_METHODS:
            return None
        if not token.writable:
            return error_response(403, "Forbidden", "this token is read-only")
        if by_cookie and not same_origin_write(headers):
            return _cross_site_write()
        return None


class HostAccess:
    """The access rule of an app whose host authenticates (``create_app(auth="app")``,
    docs/fastapi.md): the host's own middleware or proxy decided who reaches the mount, so
    every request that arrives is let through, as with a read-write token. One rule stays: a
    write that carries a cookie and no ``Authorization`` header needs the ``X-Pgstask-Request``
    header and a same-origin ``Origin``, since a browser sends the host's session cookie with a
    cross-site form too. What is counted per token (progress streams) is counted per client
    address."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            by_cookie = "cookie" in headers and "authorization" not in headers
            if scope["method"] not in SAFE_METHODS and by_cookie and not same_origin_write(headers):
                await _cross_site_write()(scope, receive, send)
                return
            name = f"app:{client_address(scope)}"
            scope.setdefault("state", {})["token"] = ApiToken(b"", True, name)
        await self.app(scope, receive, send)


def _cross_site_write() -> Response:
    return error_response(
        403,
        "Forbidden",
        "a write from the dashboard needs the X-Pgstask-Request header and a same-origin Origin",
    )


def client_address(scope: Scope) -> str:
    """The client's address as the server sees it: behind a proxy, the proxy's, unless the
    server believes that proxy's ``X-Forwarded-For`` (``PGSTASK_API_FORWARDED_ALLOW_IPS``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def too_many_failures(seconds: int) -> Response:
    """The 429 for an address refused after wrong tokens, with ``Retry-After`` (at least 1 s)."""
    seconds = max(seconds, 1)
    response = error_response(
        429,
        "Too Many Requests",
        f"too many failed sign-ins from this address; try again in {seconds} s",
    )
    response.headers["Retry-After"] = str(seconds)
    return response


def _presented(headers: Headers, cookie_name: str) -> tuple[str | None, bool]:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return "", False  # present but malformed: never fall back to the cookie
    cookie = cookie_parser(headers.get("cookie", "")).get(cookie_name)
    return (cookie, True) if cookie else (None, False)


def _wants_html(scope: Scope, headers: Headers) -> bool:
    path = route_path(scope)
    return (path == "/stask" or path == "/stask/") and "text/html" in headers.get("accept", "")


def same_origin_write(headers: Headers) -> bool:
    """The CSRF rule for cookie-authenticated writes."""
    return CSRF_HEADER in headers and same_origin(headers)


def same_origin(headers: Headers) -> bool:
    """Whether the request comes from a page of this host: its ``Origin`` (or, without one, its
    ``Referer``) names the ``Host`` it was sent to, and the browser's ``Sec-Fetch-Site``, when it
    sends one, does not say otherwise."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    host = headers.get("host", "")
    source = headers.get("origin") or headers.get("referer")
    if not source or source == "null":
        return False
    return urlsplit(source).netloc == host
