"""pgstask's ``AsyncClient`` in FastAPI handlers (docs/fastapi.md): ``get_client``, a dependency,
and ``TaskClient``, the annotated type that asks for it::

    @app.post("/signup")
    async def signup(tasks: TaskClient) -> dict[str, int]:
        task = await tasks.create("mail", "welcome", {"to": "a@example.com"})
        return {"task": task.id}

The client is the one of the pgstask that ``pgstask.contrib.asgi.mount`` mounted on the app; the
app's lifespan opened its pool. Needs the ``fastapi`` extra (``pip install pgstask[fastapi]``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pgstask.async_client import AsyncClient
from pgstask.contrib.asgi import client_of


def get_client(request: Request) -> AsyncClient:
    """The dependency: the ``AsyncClient`` of the pgstask mounted on the request's app."""
    return client_of(request)


#: A handler's parameter of this type is given the ``AsyncClient`` (``Depends(get_client)``).
TaskClient = Annotated[AsyncClient, Depends(get_client)]
