"""The dashboard: sign-in and sign-out with the session cookie, the page at ``/stask/`` and its
static files (``pgstask/http/static/``).

Signing in posts a token once (``POST /stask/login``, form field ``token``); the answer sets it
as the session cookie (``HttpSettings.cookie``: ``pgstask_token``, or ``pgstask_token_<port>``
under ``pgstask serve``; HttpOnly, SameSite=Strict, Secure over https), which the
``Access`` middleware then accepts like a bearer token. Both ``/stask/login`` and
``/stask/logout`` are public paths, so each checks itself that the form was posted by a page of
this host: another site can neither sign a browser in with its own token nor sign it out.

Every HTML answer carries a strict Content-Security-Policy (scripts and styles from this origin
only, no framing), ``X-Frame-Options: DENY`` and ``Referrer-Policy: same-origin``; the page's
scripts build the DOM from API data with ``textContent``, never as HTML.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pgstask.http.auth import find_token
from pgstask.http.errors import error_response
from pgstask.http.middleware import client_address, same_origin
from pgstask.http.paths import rooted
from pgstask.http.state import state

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
#: A token longer than this is not one (they are 43 characters; the form field is capped).
MAX_TOKEN_LENGTH = 512

# The sign-in page is shown before the browser holds the cookie that the static files need, so
# it carries its few styles inline; the policy allows exactly that block by its hash.
_LOGIN_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; background: #f1f5f9; color: #0f172a; margin: 0; }
main { max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem;
       border-radius: 10px; box-shadow: 0 1px 3px rgb(0 0 0 / 0.12); }
h1 { font-size: 1.3rem; margin: 0 0 1rem; }
label { display: block; font-weight: 600; margin-bottom: .3rem; }
input { width: 100%; box-sizing: border-box; padding: .5rem; font: inherit;
        border: 1px solid #94a3b8; border-radius: 6px; }
button { margin-top: 1rem; padding: .5rem 1.2rem; font: inherit; color: #fff;
         background: #2563eb; border: 0; border-radius: 6px; cursor: pointer; }
p.error { color: #b91c1c; background: #fef2f2; padding: .5rem; border-radius: 6px; }
p.hint { color: #475569; font-size: .85rem; }
"""
# The sign-in link `pgstask serve` prints (`/stask/login#token=…`) fills the field in; the user
# still presses the button, so a link from another site cannot sign a browser in unnoticed. The
# fragment never reaches the server (nor its logs) and is removed from the address bar at once.
_LOGIN_SCRIPT = """
(() => {
  const found = /^#token=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
  if (!found) return;
  window.history.replaceState(null, "", window.location.pathname);
  const field = document.getElementById("token");
  field.value = found[1];
  document.querySelector("button[type=submit]").focus();
})();
"""


def _hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


LOGIN_CSP = CSP.replace(
    "style-src 'self'", f"style-src 'self' 'sha256-{_hash(_LOGIN_STYLE)}'"
).replace("script-src 'self'", f"script-src 'self' 'sha256-{_hash(_LOGIN_SCRIPT)}'")

_LOGIN_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · pgstask</title>
<link rel="icon" href="data:,">
<style>{style}</style>
</head>
<body>
<main>
<h1>pgstask</h1>
{error}<form method="post" action="login">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password"
       maxlength="{max_length}" required autofocus>
<button type="submit">Sign in</button>
</form>
<p class="hint">A token of <code>PGSTASK_API_TOKENS</code>, or the one <code>pgstask serve</code>
printed when none is set.</p>
</main>
<script>{script}</script>
</body>
</html>
"""


def _login_page(error: str | None = None, status_code: int = 200) -> HTMLResponse:
    block = f'<p class="error" role="alert">{html.escape(error)}</p>\n' if error else ""
    body = _LOGIN_PAGE.format(
        style=_LOGIN_STYLE, script=_LOGIN_SCRIPT, error=block, max_length=MAX_TOKEN_LENGTH
    )
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": LOGIN_CSP,
        "Cache-Control": "no-store",
    }
    return HTMLResponse(body, status_code, headers=headers)


def _cross_site() -> Response:
    return error_response(
        403, "Forbidden", "the form must be posted from this server's own sign-in page"
    )


async def login_form(request: Request) -> Response:
    """The sign-in page, where a browser enters its token."""
    return _login_page()


async def login(request: Request) -> Response:
    """Check the posted token; on success set the session cookie and go to the dashboard."""
    if not same_origin(request.headers):
        return _cross_site()
    async with request.form(max_files=0, max_fields=4) as form:
        token = form.get("token")
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_LENGTH:
        return _login_page("Enter a token.", 401)
    token = token.strip()
    failures, address = state(request).failures, client_address(request.scope)
    found = find_token(state(request).http.tokens, token)
    if not failures.may_pass(address, found):  # a guess gets no answer
        wait = max(failures.wait(address), 1)
        page = _login_page(f"Too many failed sign-ins: try again in {wait} s.", 429)
        page.headers["Retry-After"] = str(wait)
        return page
    if found is None:
        failures.failed(address)
        return _login_page("That token is not valid.", 401)
    failures.accepted(address, found)
    response = RedirectResponse(rooted(request.scope, "/stask/"), status_code=303)
    response.set_cookie(
        state(request).http.cookie,
        token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    """Forget the session cookie (whatever token it holds) and go to the sign-in page."""
    if not same_origin(request.headers):
        return _cross_site()
    response = RedirectResponse(rooted(request.scope, "/stask/login"), status_code=303)
    response.delete_cookie(
        state(request).http.cookie,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def index(request: Request) -> Response:
    """The dashboard page (the ``Access`` middleware has sent browsers without a valid cookie
    to the sign-in page already)."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
    )


async def to_index(request: Request) -> Response:
    """``/stask`` without its slash: a permanent redirect to the dashboard page."""
    return RedirectResponse(rooted(request.scope, "/stask/"), status_code=308)


class WithHeaders:
    """Add fixed headers to every answer of an ASGI app (the static files)."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str]) -> None:
        self.app = app
        self.raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def routes() -> list[BaseRoute]:
    """The dashboard's pages and static files, none of them in the OpenAPI document."""
    return [
        # HTML pages for browsers, not operations of the JSON API: left out of the OpenAPI
        # document (docs/http.md describes them).
        Route("/stask/login", login_form, methods=["GET"], include_in_schema=False),
        Route("/stask/login", login, methods=["POST"], include_in_schema=False),
        Route("/stask/logout", logout, methods=["POST"], include_in_schema=False),
        Route("/stask", to_index, methods=["GET"], include_in_schema=False),
        Route("/stask/", index, methods=["GET"], include_in_schema=False),
        Mount(
            "/stask/static",
            app=WithHeaders(StaticFiles(directory=STATIC_DIR), SECURITY_HEADERS),
            name="static",
        ),
    ]
