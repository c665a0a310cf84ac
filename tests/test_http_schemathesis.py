"""A property-based run of the HTTP API against its own OpenAPI document (schemathesis).

Every operation of the document is called in-process (the ASGI app, no server) with input that
schemathesis generates from the document, valid and invalid, and a read-write token, on a fresh
database with workers, tasks in every status, log records, a result file, a schedule and a
preset. Each
answer must not be a 5xx, must have a status code the operation documents, must match the
documented media type and JSON schema, and input the document rules out must be refused. Bounded:
30 generated examples per operation, plus the document's own examples and schemathesis's boundary
cases.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from starlette.applications import Starlette

from pgstask import Client, Status
from pgstask.http import create_app, openapi
from pgstask.settings import Settings
from tests.http_support import BASE_URL, RW_TOKEN, http_settings

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)

CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        # The progress stream of a running task never ends by itself: its first event is enough.
        "max-stream-events": 1,
        "phases": {"stateful": {"enabled": False}},
        "operations": [
            {
                # A multipart field is text on the wire: a generated non-string "file" arrives as
                # a valid file, and the chunk fields are read only together. No rejection to see.
                "include-path-regex": "/upload$",
                "checks": {"negative_data_rejection": {"enabled": False}},
            }
        ],
        # Every call carries the suite's read-write token (test_http_security covers the rest).
        "generation": {"with-security-parameters": False},
    }
)


def _document() -> dict[str, object]:
    """The document of the app's routes (building the app opens no connection)."""
    app = create_app(Settings(dsn="postgresql:///pgstask-document-only"), http_settings())
    return openapi.document(app.routes)


SCHEMA = schemathesis.openapi.from_dict(_document(), config=CONFIG)


def _seed(client: Client) -> None:
    """Workers (the installed examples and the suite's ``sample``), a task in every status with
    log records, a stored result file on the completed one (ids 1 to 6), a task waiting for two
    of them (7), a schedule and a preset."""
    client.discover_workers(["tests.sample_workers"])
    for status in (
        Status.PENDING,
        Status.COMPLETED,
        Status.FAILED,
        Status.CANCELLED,
        Status.RUNNING,
        Status.PREPARING,
    ):
        task = client.create("demo", "count", {"to": 3})
        client.log(task, "info", "seeded", status=status.text)
        if status != Status.PENDING:
            with client.connection() as conn:
                conn.execute(
                    "UPDATE s_tasks SET status = %s, started_at = now(), "
                    "finished_at = CASE WHEN %s THEN now() END WHERE id = %s",
                    (int(status), status in (80, 90, 100), task.id),
                )
    client.store_file(2, io.BytesIO(b"name,qty\nwidget,3\n"), filename="result.csv")
    # A waiting task (id 7) with parents that exist, so task 1 has a child and a workflow.
    client.create("demo", "count", {"to": 3}, depends_on=[1, 5])
    # The schedule and the preset the document's examples name.
    client.add_schedule("nightly-count", "demo", {"action": "count", "cron": "0 3 * * *"})
    client.add_preset("count-to-3", "demo", "count", {"to": 3})
    # schemathesis names an uploaded file after its field ("file"): let it through.
    client.update_worker_settings("demo", {"allowed_extensions": ["csv", ""]})


@pytest.fixture
def app(settings: Settings) -> Iterator[Starlette]:
    """The app on a fresh seeded database. The client is this fixture's: schemathesis keeps an
    app's lifespan open until the process ends, so the app must not own the connection pool."""
    with Client(settings=settings) as client:
        _seed(client)
        yield create_app(settings, http_settings(), client=client)


@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=30,
    deadline=None,
    database=None,
    # One database per operation, shared by its examples: what they change, the next ones see.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_every_answer_is_documented_and_none_is_a_server_error(
    case: Case[Any], app: Starlette
) -> None:
    case.call_and_validate(
        app=app, base_url=BASE_URL, headers={"Authorization": f"Bearer {RW_TOKEN}"}
    )
