"""Workers of the typed-options tests (tests/test_options.py): actions that declare a dataclass or
a pydantic model for their options, and actions that declare none, in a thread and in a child
process. Each finishes with what it was given: the class of ``options`` and its fields.

The annotations are strings (``from __future__ import annotations``): pgstask resolves them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic

from pgstask import BaseWorker, Task


@dataclass(frozen=True)
class Source:
    """A nested dataclass: given as a JSON object."""

    url: str
    retries: int = 3


@dataclass(frozen=True)
class ImportOptions:
    """A dataclass model: checked by pgstask's own small rules."""

    file: str
    count: int = 100
    mode: Literal["append", "replace"] = "append"
    tags: list[str] = field(default_factory=list)
    ratio: float = 1.0
    limit: int | None = None
    source: Source | None = None


class ExportOptions(pydantic.BaseModel):
    """A pydantic model: validated by pydantic."""

    rows: int = 100
    format: Literal["csv", "json"] = "csv"
    email: str | None = None


def given(options: Any) -> dict[str, Any]:
    """What an action reports it was given (its result)."""
    if isinstance(options, pydantic.BaseModel):
        fields = options.model_dump()
    elif dataclasses.is_dataclass(options) and not isinstance(options, type):
        fields = dataclasses.asdict(options)
    else:
        fields = dict(options)
    return {"type": type(options).__name__, "fields": fields}


class TypedWorker(BaseWorker):
    """Actions with and without an options model, run in threads."""

    identifier = "typed"

    def task_import(self, task: Task, options: ImportOptions) -> None:
        self.mark_finished(task, result=given(options))

    def task_export(self, task: Task, options: ExportOptions) -> None:
        self.mark_finished(task, result=given(options))

    def task_plain(self, task, options):  # type: ignore[no-untyped-def]
        self.mark_finished(task, result=given(options))

    def task_mapping(self, task: Task, options: dict[str, Any]) -> None:
        self.mark_finished(task, result=given(options))


class TypedProcessWorker(TypedWorker):
    """The same actions, each in a child process of its own."""

    identifier = "typed_process"
    settings = {"isolation": "process"}
