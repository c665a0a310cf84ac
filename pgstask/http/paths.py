"""Where the app is mounted. Served alone (``pgstask serve``) its paths are the request's; mounted
inside another ASGI app (``app.mount("/tasks", ...)``, docs/fastapi.md) a request's path
carries the mount's prefix, which ASGI gives as ``root_path``. The app matches, checks and
links its own paths (``/stask/...``) with these two functions, so the same code serves both."""

from __future__ import annotations

from starlette.types import Scope


def route_path(scope: Scope) -> str:
    """The request's path inside the app: without the prefix it is mounted at."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def rooted(scope: Scope, path: str) -> str:
    """``path``, a path of the app (``/stask/...``), as a client must send it: under the prefix
    the app is mounted at (for ``Location`` headers and redirects)."""
    root: str = scope.get("root_path", "")
    return root.rstrip("/") + path
