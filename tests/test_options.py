"""Typed options (docs/workers.md, "Typed options"): an action's options model, checked at enqueue
(Client, HTTP API, CLI, schedules) and again before the action runs, in a real daemon, for a
task inserted by plain SQL; the action given an instance of its model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic
import pytest

from pgstask import BaseWorker, Client, Status, Task
from pgstask import schedules as schedule_rules
from pgstask._copy import COPY_FROM
from pgstask.errors import (
    ConfigurationError,
    InvalidOptionsError,
    InvalidScheduleError,
    InvalidTaskError,
)
from pgstask.retry import RetryPolicy
from pgstask.runtime.runner import check_worker_settings
from pgstask.settings import Settings
from pgstask.workers.options import model_of, options_for
from tests.daemons import ROOT, running_daemon, wait_for
from tests.http_support import api
from tests.options_workers import ExportOptions, ImportOptions, Source, TypedWorker
from tests.test_cli import base_env

MODULES = ("tests.options_workers",)
IMPORT_DEFAULTS = {
    "count": 100,
    "mode": "append",
    "tags": [],
    "ratio": 1.0,
    "limit": None,
    "source": None,
}


@pydantic.dataclasses.dataclass
class Window:
    """A pydantic dataclass: validated by pydantic too."""

    days: int
    label: str = "last"


@dataclasses.dataclass
class Dated:
    """A dataclass with a field type the dataclass check does not know."""

    when: dt.datetime


class Annotations:
    """Methods (not a worker: async actions are another part's) with options annotations."""

    def task_any(self, task: Task, options: Any) -> None: ...

    def task_mapping(self, task: Task, options: Mapping[str, Any]) -> None: ...

    def task_optional(self, task: Task, options: ImportOptions | None) -> None: ...

    async def task_async(self, task: Task, options: ImportOptions) -> None: ...

    @staticmethod
    def task_static(task: Task, options: ExportOptions) -> None: ...

    def task_dated(self, task: Task, options: Dated) -> None: ...

    def task_window(self, task: Task, options: Window) -> None: ...

    @dataclasses.dataclass
    class Inner:
        """A model defined in the class that uses it."""

        size: int = 1

    def task_inner(self, task: Task, options: Inner) -> None: ...

    def task_hidden(self, task: Task, options: NotDefinedAnywhere) -> None: ...  # noqa: F821


# --- the models, without a database ------------------------------------------------------------


def test_a_dataclass_model_makes_an_instance_with_its_defaults() -> None:
    built = options_for(
        TypedWorker,
        "task_import",
        {"file": "a.csv", "ratio": 2, "tags": ["x"], "source": {"url": "https://h"}},
    )
    assert built == ImportOptions(
        file="a.csv", ratio=2.0, tags=["x"], source=Source("https://h", retries=3)
    )
    assert type(built.ratio) is float  # a JSON integer given for a float field


def test_a_dataclass_model_names_every_field_that_does_not_match() -> None:
    data = {
        "count": True,
        "mode": "merge",
        "tags": ["a", 2],
        "limit": "x",
        "source": {"url": 5},
        "extra": 1,
    }
    with pytest.raises(InvalidOptionsError) as refused:
        options_for(TypedWorker, "task_import", data)
    error = refused.value
    assert error.model == "ImportOptions"
    assert error.problems == (
        ("file", "is required"),
        ("count", "must be a whole number, not True"),
        ("mode", 'must be one of "append", "replace", not \'merge\''),
        ("tags.1", "must be a string, not 2"),
        ("limit", "must be a whole number or null, not 'x'"),
        ("source.url", "must be a string, not 5"),
        ("extra", "is not a field of ImportOptions"),
    )
    assert str(error) == (
        "data.file: is required; data.count: must be a whole number, not True; data.mode: must "
        'be one of "append", "replace", not \'merge\'; data.tags.1: must be a string, not 2; '
        "data.limit: must be a whole number or null, not 'x'; and 2 more"
    )
    assert error.mismatch.startswith(
        "options do not match ImportOptions: file: is required; count: must be a whole number"
    )
    assert isinstance(error, InvalidTaskError)  # an `except InvalidTaskError` catches it


def test_a_pydantic_model_is_validated_by_pydantic_under_its_own_rules() -> None:
    assert options_for(TypedWorker, "task_export", {"rows": "5"}) == ExportOptions(rows=5)
    with pytest.raises(InvalidOptionsError) as refused:
        options_for(TypedWorker, "task_export", {"rows": "many", "format": "xml"})
    assert [field for field, _ in refused.value.problems] == ["rows", "format"]
    assert str(refused.value).startswith("data.rows: Input should be a valid integer")
    assert "data.format: Input should be 'csv' or 'json'" in str(refused.value)


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        (TypedWorker, "task_plain"),
        (TypedWorker, "task_mapping"),
        (Annotations, "task_any"),
        (Annotations, "task_mapping"),
        (Annotations, "task_optional"),
    ],
)
def test_an_action_without_a_model_is_given_a_copy_of_the_data(cls: type, method: str) -> None:
    assert model_of(cls, method) is None
    data = {"anything": [1, {"goes": True}]}
    given = options_for(cls, method, data)
    assert given == data and given is not data and type(given) is dict


def test_async_and_static_methods_declare_a_model_the_same_way() -> None:
    model = model_of(Annotations, "task_async")
    assert model is not None and model.cls is ImportOptions
    model = model_of(Annotations, "task_static")
    assert model is not None and model.cls is ExportOptions


def test_a_pydantic_dataclass_and_a_model_defined_in_the_class_are_models_too() -> None:
    assert options_for(Annotations, "task_window", {"days": "7"}) == Window(days=7)
    with pytest.raises(InvalidOptionsError, match=r"^data\.days: Field required"):
        options_for(Annotations, "task_window", {})
    assert options_for(Annotations, "task_inner", {}) == Annotations.Inner(size=1)


def test_the_error_survives_a_pickle_with_its_fields() -> None:
    with pytest.raises(InvalidOptionsError) as refused:
        options_for(TypedWorker, "task_import", {})
    again = pickle.loads(pickle.dumps(refused.value))
    assert (again.model, again.problems, str(again)) == (
        "ImportOptions",
        (("file", "is required"),),
        "data.file: is required",
    )


def test_a_model_that_cannot_be_resolved_or_checked_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"cannot resolve the annotation 'NotDefined"):
        model_of(Annotations, "task_hidden")
    with pytest.raises(
        ConfigurationError,
        match=r"field Dated\.when: the type datetime is not one the dataclass check knows",
    ):
        model_of(Annotations, "task_dated")


def test_a_daemon_refuses_at_its_start_a_worker_whose_model_cannot_be_checked() -> None:
    class DatedWorker(BaseWorker):
        def task_run(self, task: Task, options: Dated) -> None: ...

    with pytest.raises(ConfigurationError, match=r"action method task_run: options model Dated"):
        check_worker_settings([DatedWorker], RetryPolicy(2.0, 600.0))
    check_worker_settings([TypedWorker], RetryPolicy(2.0, 600.0))


def test_a_declared_schedule_with_data_its_model_refuses_is_an_error() -> None:
    fields = {"action": "import", "cron": "0 3 * * *", "data": {"file": "a", "count": "x"}}
    with pytest.raises(
        InvalidScheduleError, match=r"schedule 'nightly': data\.count: must be a whole number"
    ):
        schedule_rules.check("nightly", "typed", fields, worker=TypedWorker)
    fields["data"] = {"file": "a"}
    assert schedule_rules.check("nightly", "typed", fields, worker=TypedWorker).data == {
        "file": "a"
    }


# --- at enqueue ---------------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    """A client of the test's database with the typed workers registered."""
    with Client(settings=settings) as c:
        c.discover_workers(MODULES)
        yield c


def test_the_client_refuses_data_the_model_refuses_and_creates_nothing(client: Client) -> None:
    with pytest.raises(InvalidOptionsError, match=r"^data\.count: must be a whole number"):
        client.create("typed", "import", {"file": "a.csv", "count": "x"})
    with pytest.raises(InvalidOptionsError, match=r"^data\.rows: Input should be a valid integer"):
        client.create("typed", "export", {"rows": "many"})
    for size in (2, COPY_FROM):  # the INSERT and the COPY forms of create_many
        items = [{"identifier": "typed", "action": "import", "data": {"file": "a"}}] * (size - 1)
        bad = {"identifier": "typed", "action": "import", "data": {"fil": "a"}}
        with pytest.raises(InvalidTaskError, match=rf"^task #{size - 1}: data\.file: is required"):
            client.create_many([*items, bad])
    with pytest.raises(InvalidTaskError, match=r"data\.format: Input should be 'csv' or 'json'"):
        client.create_workflow(
            [
                {"identifier": "typed", "action": "export", "ref": "a"},
                {"identifier": "typed", "action": "export", "data": {"format": "xml"}},
            ]
        )
    with pytest.raises(InvalidOptionsError, match=r"^data\.file: is required"):
        TypedWorker(client=client).create_task("import", {})
    with pytest.raises(InvalidScheduleError, match=r"schedule 's': data\.mode: must be one of"):
        client.add_schedule(
            "s",
            "typed",
            {"action": "import", "cron": "* * * * *", "data": {"file": "a", "mode": "x"}},
        )
    assert client.stats()["total"] == 0


def test_the_client_stores_the_data_as_it_was_sent(client: Client) -> None:
    task = client.create("typed", "export", {"rows": "5"})  # pydantic's lax mode takes "5"
    assert client.get(task).meta == {"rows": "5"}  # the model instance is only for the action
    assert client.create("typed", "plain", {"count": "x"}).meta == {"count": "x"}
    assert client.create("elsewhere", "import", {"count": "x"}).meta == {"count": "x"}


def test_the_http_api_answers_422_naming_the_field(settings: Settings, client: Client) -> None:
    with api(settings) as http:
        answer = http.post(
            "/stask/task",
            json={"identifier": "typed", "action": "import", "data": {"file": 1}},
        )
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["error"] == "Invalid options"
        assert body["message"] == "data.file: must be a string, not 1"
        answer = http.post("/stask/worker/typed/run/export", json={"rows": [1]})
        assert answer.status_code == 422, answer.text
        assert answer.json()["message"].startswith("data.rows: Input should be a valid integer")
        answer = http.post("/stask/worker/typed/run/export", json={"rows": 7})
        assert answer.status_code == 201, answer.text
    assert client.stats()["total"] == 1


def test_the_cli_exits_2_naming_the_field(settings: Settings) -> None:
    env = {
        **base_env(),
        "PGSTASK_DSN": str(settings.dsn),
        "PGSTASK_STORAGE": str(settings.storage),
        "PGSTASK_WORKERS": "tests.options_workers",
        "PYTHONPATH": str(ROOT),
    }
    args = ["create", "typed", "import", "--data", json.dumps({"file": "a", "count": 1.5})]
    result = subprocess.run(
        [sys.executable, "-m", "pgstask", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "data.count: must be a whole number, not 1.5" in result.stderr


# --- before the action runs ----------------------------------------------------------------------


def _insert(client: Client, identifier: str, action: str, meta: dict[str, Any]) -> int:
    """A task inserted by plain SQL, which no check of pgstask's sees."""
    with client.connection() as conn:
        row = conn.execute(
            "INSERT INTO s_tasks (identifier, action, meta) VALUES (%s, %s, %s::jsonb) "
            "RETURNING id",
            (identifier, action, json.dumps(meta)),
        ).fetchone()
    assert row is not None
    return int(row["id"])


@pytest.mark.parametrize("worker", ["typed", "typed_process"])
def test_a_daemon_fails_at_once_a_task_whose_options_the_model_refuses(
    settings: Settings, client: Client, worker: str
) -> None:
    bad_import = _insert(client, worker, "import", {"file": "a.csv", "count": "x"})
    bad_export = _insert(client, worker, "export", {"rows": "many"})
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: all(client.get(t).is_finished for t in (bad_import, bad_export)))
    for task, message in [
        (bad_import, "count: must be a whole number, not 'x'"),
        (bad_export, "rows: Input should be a valid integer"),
    ]:
        final = client.get(task)
        assert (final.status, final.attempts, final.max_attempts) == (Status.FAILED, 1, 3)
        model = "ImportOptions" if task == bad_import else "ExportOptions"
        assert (final.message or "").startswith(f"Failed: options do not match {model}: {message}")
        assert final.peak_memory is None  # the action never started


@pytest.mark.parametrize("worker", ["typed", "typed_process"])
def test_the_action_is_given_an_instance_of_its_model_with_defaults_applied(
    settings: Settings, client: Client, worker: str
) -> None:
    imported = client.create(worker, "import", {"file": "a.csv", "source": {"url": "u"}})
    exported = client.create(worker, "export", {"rows": "5"})
    plain = client.create(worker, "plain", {"count": "x"})
    with running_daemon(settings, modules=MODULES):
        wait_for(lambda: all(client.get(t).is_finished for t in (imported, exported, plain)))
    assert client.get(imported).result == {
        "type": "ImportOptions",
        "fields": {
            **IMPORT_DEFAULTS,
            "file": "a.csv",
            "source": {"url": "u", "retries": 3},
        },
    }
    assert client.get(exported).result == {
        "type": "ExportOptions",
        "fields": {"rows": 5, "format": "csv", "email": None},
    }
    assert client.get(plain).result == {"type": "dict", "fields": {"count": "x"}}
    assert all(client.get(t).status == Status.COMPLETED for t in (imported, exported, plain))
