"""Helpers of the HTTP tests: an app on the test database, clients with and without tokens."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from starlette.testclient import TestClient

from pgstask.http import create_app
from pgstask.http.auth import parse_tokens
from pgstask.http.config import HttpSettings
from pgstask.settings import Settings

RW_TOKEN = "rw-token-for-the-test-suite-0123456789"
RO_TOKEN = "ro-token-for-the-test-suite-0123456789"
BASE_URL = "http://127.0.0.1"


def http_settings(**changes: object) -> HttpSettings:
    return HttpSettings(tokens=parse_tokens(f"rw:{RW_TOKEN},ro:{RO_TOKEN}")).replace(**changes)


@contextlib.contextmanager
def api(
    settings: Settings, token: str | None = RW_TOKEN, **changes: object
) -> Iterator[TestClient]:
    """A ``TestClient`` of a fresh app (lifespan run), authenticated with ``token``."""
    app = create_app(settings, http_settings(**changes))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with TestClient(app, base_url=BASE_URL, headers=headers) as client:
        yield client
