"""pgstask's HTTP API and dashboard (Starlette). ``create_app()`` for your own ASGI server;
``pgstask serve`` runs it with uvicorn."""

from pgstask.http.app import create_app

__all__ = ["create_app"]
