"""A host FastAPI app with pgstask mounted at ``/admin/tasks`` (pgstask's tokens), served by a
real uvicorn in ``tests/test_dashboard_mounted.py``: ``uvicorn tests.fastapi_app:app``. Its own
route enqueues with the ``AsyncClient`` dependency; the settings come from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from pgstask.contrib.asgi import mount
from pgstask.contrib.fastapi import TaskClient

app = FastAPI()
mount(app, "/admin/tasks")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """The host's own health check (the mounted one is ``/admin/tasks/healthz``)."""
    return {"status": "ok"}


@app.post("/reports")
async def order_report(tasks: TaskClient) -> dict[str, int]:
    """Enqueue a report task through the host's dependency."""
    task = await tasks.create("report", "export", {"rows": 10})
    return {"task": task.id}
