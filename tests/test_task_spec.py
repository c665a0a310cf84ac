"""What a valid task is (``pgstask/task_spec.py``), and the entry points that take its rules:
the client, the HTTP API's body readers and the CLI's flags agree on priority and
max_attempts. (No database: these are the checks made before a row is written.)"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import pytest

from pgstask import task_spec
from pgstask.cli import _options
from pgstask.errors import InvalidTaskError
from pgstask.http import bodies
from pgstask.http.errors import ApiError
from pgstask.task_spec import TaskSpec


def test_check_returns_the_fields_with_the_data_as_json_text() -> None:
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    spec = task_spec.check(
        identifier="w",
        action="a",
        data={"b": 1, "a": [True, None]},
        priority="high",
        start_at=when,
        max_attempts=5,
        user_id=7,
        dedupe_key="k",
        concurrency_key="tenant-1",
    )
    assert spec == TaskSpec(
        "w", "a", '{"b": 1, "a": [true, null]}', "high", when, 5, 7, "k", "tenant-1"
    )
    assert task_spec.check(identifier="w", action="a") == TaskSpec(
        "w", "a", "{}", "normal", None, 3, None, None, None
    )


def test_check_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        task_spec.check("w", "a")  # type: ignore[call-arg]


def test_check_many_names_the_position_of_a_bad_item() -> None:
    items: list[Any] = [{"identifier": "w", "action": "a"}, {"identifier": "w", "actoin": "a"}]
    with pytest.raises(InvalidTaskError, match=r"^task #1: unknown field\(s\) actoin$"):
        list(task_spec.check_many(items))
    with pytest.raises(InvalidTaskError, match=r"^task #0: must be a mapping of create's"):
        list(task_spec.check_many([("w", "a")]))  # type: ignore[list-item]
    checked = task_spec.check_many([{"identifier": "w", "action": "a", "max_attempts": 0}])
    with pytest.raises(InvalidTaskError, match=r"^task #0: max_attempts must be between 1 and"):
        next(checked)


@pytest.mark.parametrize("value", [0, 1, 3, 1000, 1001, -5, 10**30])
def test_every_entry_point_takes_the_same_max_attempts(value: int) -> None:
    accepted = {}
    try:
        accepted["client"] = task_spec.check_max_attempts(value)
    except InvalidTaskError as exc:
        assert str(exc) == f"max_attempts must be between 1 and 1000, not {value}"
    try:
        accepted["http"] = bodies.max_attempts(value)
    except ApiError as exc:
        assert (exc.status_code, exc.detail) == (
            422,
            "max_attempts must be a whole number from 1 to 1000",
        )
    try:
        accepted["cli"] = _options.max_attempts(str(value))
    except argparse.ArgumentTypeError as exc:
        assert str(exc) == f"must be between 1 and 1000, not {value}"
    valid = 1 <= value <= 1000
    assert accepted == ({"client": value, "http": value, "cli": value} if valid else {})


def test_each_entry_point_words_a_bad_max_attempts_its_own_way() -> None:
    with pytest.raises(InvalidTaskError, match=r"^max_attempts must be a whole number, not '3'$"):
        task_spec.check_max_attempts("3")
    with pytest.raises(InvalidTaskError, match="whole number, not True"):
        task_spec.check_max_attempts(True)
    assert bodies.max_attempts("3") == bodies.max_attempts(None) == 3
    with pytest.raises(ApiError, match="max_attempts must be a whole number, not 'x'"):
        bodies.max_attempts("x")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^'x' is not a whole number$"):
        _options.max_attempts("x")


@pytest.mark.parametrize("value", ["high", "normal", "low", "urgent", "HIGH", 1, ["high"]])
def test_every_entry_point_takes_the_same_priority(value: Any) -> None:
    accepted = {}
    try:
        accepted["client"] = task_spec.check_priority(value)
    except InvalidTaskError as exc:
        assert str(exc) == f"unknown priority {value!r}; use high, normal or low"
    try:
        accepted["http"] = bodies.priority(value)
    except ApiError as exc:
        assert (exc.status_code, exc.detail) == (
            422,
            f"unknown priority {bodies.shown(value)}; use high, normal or low",
        )
    valid = value in ("high", "normal", "low")
    assert accepted == ({"client": value, "http": value} if valid else {})
    assert bodies.priority(None) == task_spec.DEFAULT_PRIORITY == "normal"


def test_the_http_message_shortens_a_long_priority() -> None:
    with pytest.raises(ApiError) as info:
        bodies.priority("x" * 1000)
    assert info.value.detail == f"unknown priority '{'x' * 38}…; use high, normal or low"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("tenant-1", None),
        (" a ", None),  # blanks around a key are part of it, as in the column
        ("é" * 255, None),  # characters, not bytes, as length() counts them
        ("", "must not be empty or blank"),
        (" \t\n", "must not be empty or blank"),
        ("k" * 256, "is longer than 255 characters"),
        ("caf\udce9", "contains a lone surrogate"),
    ],
)
def test_every_entry_point_takes_the_same_concurrency_key(value: str, problem: str | None) -> None:
    accepted = {}
    try:
        task_spec.check_concurrency_key(value)
        accepted["client"] = value
    except InvalidTaskError as exc:
        assert str(exc).startswith(f"concurrency_key {problem}")
    try:
        accepted["cli"] = _options.concurrency_key(value)
    except argparse.ArgumentTypeError as exc:
        assert str(exc).startswith(str(problem))  # the flag names the field
    assert accepted == ({} if problem else {"client": value, "cli": value})
    with pytest.raises(InvalidTaskError, match=r"^concurrency_key must be a string, not int$"):
        task_spec.check_concurrency_key(7)
