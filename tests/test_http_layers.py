"""The HTTP package's two layer rules, read from its source (docs/architecture.md, "HTTP API").

1. One read path: no module of ``pgstask/http`` imports ``pgstask.queries`` or ``pgstask.db``,
   and no route module imports psycopg or opens a connection; routes read through ``Client`` and
   ``pgstask.figures``.
2. The event loop never blocks: an ``async def`` of a route module calls neither the client, the
   worker cache's ``get`` (it may read the database), ``figures`` nor ``migrate``; it hands such
   work to one ``run_in_threadpool`` call, or the handler is a plain ``def`` (Starlette runs
   those in its thread pool). The check looks at calls written in the ``async def`` itself, not
   into the functions it calls.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import pgstask.http

HTTP = Path(pgstask.http.__file__).parent
ROUTES = sorted((HTTP / "routes").glob("*.py"))

#: Modules that reach the database underneath ``Client`` and ``figures``.
DATABASE_MODULES = ("pgstask.queries", "pgstask.db")
DRIVER_MODULES = ("psycopg", "psycopg_pool")
#: Names whose methods read the database: never called in an ``async def``.
BLOCKING_RECEIVERS = frozenset({"client", "figures", "migrate"})


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module an import names, with the names ``from pgstask import x`` brings in."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def forbidden_imports(source: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"line {line}: imports {name}"
        for line, name in imported(ast.parse(source))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def connections_opened(source: str) -> list[str]:
    return [
        f"line {node.lineno}: opens a connection"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "connection"
    ]


def _own_nodes(function: ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    """The nodes of ``function``'s body that run when it runs: not those of the functions and
    lambdas it defines (a nested ``async def`` is checked on its own)."""
    nested = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    stack: list[ast.AST] = [n for n in function.body if not isinstance(n, nested)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, nested))


def _receivers(func: ast.expr) -> Iterator[str]:
    """The names along a call's receiver: ``state(request).client.get`` → client, state."""
    node = func.value if isinstance(func, ast.Attribute) else None
    while node is not None:
        if isinstance(node, ast.Attribute):
            yield node.attr
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            yield node.id
            node = None
        else:
            node = None


def _blocks(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    if set(_receivers(func)) & BLOCKING_RECEIVERS:
        return True
    owner = func.value  # the worker cache: ``app.workers.get(identifier)``
    return func.attr == "get" and isinstance(owner, ast.Attribute) and owner.attr == "workers"


def blocking_in_async(source: str) -> list[str]:
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.AsyncFunctionDef):
            continue
        for node in _own_nodes(function):
            if isinstance(node, ast.Call) and _blocks(node):
                found.append(
                    f"line {node.lineno}: async def {function.name} calls "
                    f"{ast.unparse(node.func)} on the event loop"
                )
    return found


def _name(path: Path) -> str:
    return str(path.relative_to(HTTP.parent.parent))


@pytest.mark.parametrize("path", sorted(HTTP.rglob("*.py")), ids=_name)
def test_no_http_module_reaches_under_the_client(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8"), DATABASE_MODULES) == []


@pytest.mark.parametrize("path", ROUTES, ids=_name)
def test_routes_read_only_through_the_client_and_figures(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert forbidden_imports(source, DRIVER_MODULES) == []
    assert connections_opened(source) == []


@pytest.mark.parametrize("path", ROUTES, ids=_name)
def test_no_async_route_blocks_the_event_loop(path: Path) -> None:
    assert blocking_in_async(path.read_text(encoding="utf-8")) == []


def test_the_checks_find_what_they_look_for() -> None:
    """Each rule fails on a module that breaks it, and lets through what it must."""
    assert forbidden_imports("from pgstask import queries\n", DATABASE_MODULES)
    assert forbidden_imports("import pgstask.db as db\n", DATABASE_MODULES)
    assert forbidden_imports("from pgstask.queries import task_get\n", DATABASE_MODULES)
    assert forbidden_imports("from psycopg import sql\n", DRIVER_MODULES)
    assert not forbidden_imports("from pgstask import figures, files\n", DATABASE_MODULES)
    assert connections_opened("def f(c):\n    with c.connection() as conn:\n        pass\n")

    blocking = (
        "async def a(request):\n    return state(request).client.get(1)\n",
        "async def b(request):\n    app = state(request)\n    app.workers.get('x')\n",
        "async def c(request):\n    figures.summary(client, hours=1)\n",
        "async def d(request):\n    await run_in_threadpool(f, client.get(1))\n",
        "async def e(request):\n    async def inner():\n        client.progress(1)\n",
        "async def f(request):\n    migrate.current_revision(dsn)\n",
    )
    for source in blocking:
        assert blocking_in_async(source), source
    allowed = (
        "async def a(request):\n    await run_in_threadpool(state(request).client.get, 1)\n",
        "async def b(request):\n    def read():\n        return client.get(1)\n"
        "    return await run_in_threadpool(read)\n",
        "async def c(request):\n    state(request).workers.clear('x')\n",
        "def d(request):\n    return state(request).client.get(1)\n",
    )
    for source in allowed:
        assert not blocking_in_async(source), source
