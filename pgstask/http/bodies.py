"""Reading and checking request input: JSON bodies, ids, query parameters.

Every check answers in the user's terms: what was wrong and what to send instead. A value is
echoed back shortened (``shown``), so a 100 kB parameter does not come back in the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.convertors import IntegerConvertor, PathConvertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request

from pgstask import task_spec, workflow
from pgstask.errors import InvalidTaskError
from pgstask.http.errors import ApiError, client_left
from pgstask.task import Status

#: Ids are PostgreSQL ``bigint`` values; positive ones only.
MAX_ID = 2**63 - 1
#: Python refuses to convert longer digit strings (``sys.get_int_max_str_digits()``).
MAX_DIGITS = 4300


class IdConvertor(IntegerConvertor):
    """``{id:id}`` in a route path: any run of digits, with a leading ``-`` too, so that every
    number reaches the route and gets its answer there (``task_id``): Starlette's ``int``
    converts with ``int()``, which refuses more than 4300 digits with a 500. A value outside
    bigint converts to the nearest value just outside it (0 or ``MAX_ID + 1``)."""

    regex = "-?[0-9]+"

    def convert(self, value: str) -> int:
        """The path segment as an int, clamped just outside bigint (see the class)."""
        negative = value.startswith("-")
        digits = value.lstrip("-").lstrip("0")
        if len(digits) > len(str(MAX_ID)):
            return 0 if negative else MAX_ID + 1
        return -int(digits or "0") if negative else int(digits or "0")


register_url_convertor("id", IdConvertor())


class ScheduleNameConvertor(PathConvertor):
    """``{name:schedule}`` in a route path: a schedule's name, which may hold ``/``. It is
    matched greedily; what cannot be a name (too long, or holding what PostgreSQL cannot store)
    reaches the route, which answers 404. Control characters, which no name has, match
    nothing."""

    regex = r"[^\x00-\x1f\x7f]+"


register_url_convertor("schedule", ScheduleNameConvertor())


class PresetNameConvertor(ScheduleNameConvertor):
    """``{preset:preset}`` in a route path: a preset's name, matched as a schedule's (a preset's
    name follows the same rule)."""


register_url_convertor("preset", PresetNameConvertor())


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 128 else "…"
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def json_object(request: Request, *, empty: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body as a JSON object. An empty body gives ``empty`` (a 400 when None); invalid JSON
    (also ``NaN``, ``Infinity``, a number too large for a float, nesting too deep) is a 400, JSON
    that is not an object or holds text PostgreSQL cannot store a 422, a body that is not JSON
    a 415."""
    try:
        body = await request.body()
    except ClientDisconnect:
        raise client_left(request) from None
    if not body:  # only no body at all: whitespace is not JSON, and is refused as such
        if empty is not None:
            return dict(empty)
        raise ApiError(400, "send a JSON object in the request body", error="Invalid JSON")
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise ApiError(415, f"send application/json, not {content_type}")
    try:
        value = json.loads(
            body, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_whole
        )
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply", error="Invalid JSON") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", error="Invalid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(422, f"the body must be a JSON object, not {type(value).__name__}")
    _storable(value)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _whole(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"a number has more than {MAX_DIGITS} digits")
    return int(text)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large for a number")
    return number


#: What PostgreSQL text and jsonb cannot hold: NUL, and UTF-16 surrogates that JSON's \u escapes
#: can make but UTF-8 cannot encode.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _storable(value: Any) -> None:
    """422 for a string or key anywhere in ``value`` that PostgreSQL cannot store (it would fail
    deep in the driver otherwise), naming where it is."""
    stack: list[tuple[str, Any]] = [("the body", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                path = key if where == "the body" else f"{where}.{key}"
                if _UNSTORABLE.search(key):
                    _unstorable(f"a key in {where}")
                stack.append((path, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
        elif isinstance(item, str) and _UNSTORABLE.search(item):
            _unstorable(where)


def _unstorable(where: str) -> None:
    raise ApiError(
        422,
        f"{where} holds a NUL character (\\u0000) or an unpaired UTF-16 surrogate, which "
        "PostgreSQL cannot store; remove it",
    )


def task_id(request: Request) -> int:
    """The ``{id:id}`` path parameter: a positive whole number within bigint. Zero or a
    negative number is a 400 (sTask's answer); a number past bigint a 404 (no task can have
    it)."""
    raw = request.path_params["id"]
    value = int(raw) if isinstance(raw, int) else 0
    if value <= 0:
        raise ApiError(400, "Task ID must be greater than 0", error="Invalid task ID")
    if value > MAX_ID:
        raise ApiError(
            404, f"no task has this id: task ids end at {MAX_ID}", error="Task not found"
        )
    return value


def worker_identifier(request: Request) -> str:
    """The ``{identifier}`` path parameter; a 404 for one no worker can have (longer than
    255 characters, or holding what PostgreSQL cannot store)."""
    value: str = request.path_params["identifier"]
    if len(value) > 255 or _UNSTORABLE.search(value):
        raise ApiError(
            404,
            "no worker has this identifier: identifiers are 1-255 characters without NUL",
            error="Worker not found",
        )
    return value


def status(value: str) -> str:
    """A status filter: a status text (``running``) or code (``50``), as its text."""
    wanted = value.strip().lower()
    for known in Status:
        if wanted in (known.text, str(int(known))):
            return known.text
    choices = ", ".join(f"{s.text} ({int(s)})" for s in Status)
    raise ApiError(422, f"unknown status {shown(value)}; use one of {choices}")


def only_known(given: Iterable[str], known: Iterable[str], where: str) -> None:
    """A 422 naming the names in ``given`` that are not ``known`` (fields of a body, query
    parameters), and the ones to use."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ApiError(
            422,
            f"unknown {where} {', '.join(map(shown, unknown[:5]))}; use {', '.join(sorted(known))}",
        )


def priority(value: Any) -> str:
    """A task's priority (``task_spec``'s rule); the default when absent."""
    if value is None:
        return task_spec.DEFAULT_PRIORITY
    try:
        return task_spec.check_priority(value, shown=shown)
    except InvalidTaskError as exc:
        raise ApiError(422, str(exc)) from None


def max_attempts(value: Any) -> int:
    """A task's ``max_attempts`` from JSON or a query string, within ``task_spec``'s bounds;
    the default when absent."""
    return whole_number(
        value,
        "max_attempts",
        task_spec.DEFAULT_MAX_ATTEMPTS,
        task_spec.MIN_ATTEMPTS,
        task_spec.MAX_ATTEMPTS,
    )


def start_at(value: Any, name: str = "start_at") -> dt.datetime | None:
    """An ISO 8601 time with a UTC offset (``2026-11-22T10:00:00Z``), or None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(422, f"{name} must be an ISO 8601 string, e.g. 2026-11-22T10:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(422, f"{name} {shown(value)} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise ApiError(422, f"{name} needs a UTC offset (e.g. Z or +02:00)")
    return parsed


#: A whole number as text: ASCII digits, a sign, blanks around (the OpenAPI pattern too, so
#: only the blanks that JSON Schema's ``\s`` and Python's agree on).
WHOLE_PATTERN = r"^[ \t\n\r]*[+-]?[0-9]+[ \t\n\r]*$"
_WHOLE = re.compile(WHOLE_PATTERN)


def whole_number(value: Any, name: str, default: int, low: int, high: int) -> int:
    """A whole number from JSON or from a query or form field (ASCII digits), within
    ``low``..``high``; a 422 naming the range otherwise."""
    if value is None or value == "":
        return default
    out_of_range = ApiError(422, f"{name} must be a whole number from {low} to {high}")
    if isinstance(value, bool):
        raise out_of_range
    if isinstance(value, str):
        if not _WHOLE.match(value):
            raise ApiError(422, f"{name} must be a whole number, not {shown(value)}")
        if len(value.strip().lstrip("+-").lstrip("0")) > len(str(max(abs(low), abs(high)))):
            raise out_of_range
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value == int(value):
        number = int(value)
    else:
        raise ApiError(422, f"{name} must be a whole number, not {shown(value)}")
    if not low <= number <= high:
        raise out_of_range
    return number


def text(value: Any, name: str) -> str:
    """A required string field that is not blank (a worker identifier, an action)."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, f"{name} must be a non-empty string")
    return value


def filter_text(value: str | None, name: str) -> str | None:
    """A text filter from a query string (None when empty), which PostgreSQL can compare."""
    if not value:
        return None
    if _UNSTORABLE.search(value):
        _unstorable(name)
    return value


def optional_text(value: Any, name: str) -> str | None:
    """A string field that may be absent or null, but not blank when given."""
    return None if value is None else text(value, name)


def query_params(request: Request, known: Iterable[str]) -> Mapping[str, str]:
    """The request's query parameters, after a 422 for any not in ``known``."""
    params = request.query_params
    only_known(params.keys(), known, "query parameter(s)")
    return params


#: The words a flag may be, true ones first.
FLAG_WORDS = ("1", "true", "yes", "on", "0", "false", "no", "off")


def flag(value: Any, name: str) -> bool:
    """A boolean from JSON or a query string (1/true/yes/on, 0/false/no/off); absent or
    empty is false."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in FLAG_WORDS:
        return value.lower() in FLAG_WORDS[:4]
    raise ApiError(422, f"{name} must be true or false, not {shown(value)}")


#: A number of seconds as text (a query string's): digits, a point, an exponent.
SECONDS_PATTERN = r"^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]{1,3})?$"
_SECONDS = re.compile(SECONDS_PATTERN)


def throttle(value: Any) -> float | None:
    """A create's ``throttle``: seconds from JSON or a query string, or None when absent (its
    range is ``task_spec.check_window``'s)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if _SECONDS.match(value):
            return float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ApiError(422, f"throttle must be a number of seconds, not {shown(value)}")


def days(value: Any, default: float) -> float:
    """The ``days`` of a clean-up: a positive number below a million (a string of one too);
    absent or empty is ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(422, f"days must be a positive number, not {shown(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an int too large for a float
        raise ApiError(422, f"days must be a positive number, not {shown(value)}") from None
    if not 0 < number < 1e6:
        raise ApiError(422, f"days must be a positive number below 1000000, not {shown(value)}")
    return number


#: Task ids in a query string: digits separated by commas (``depends_on=4,7``).
ID_LIST_PATTERN = r"^[0-9]+(,[0-9]+)*$"
_ID_LIST = re.compile(ID_LIST_PATTERN)


def id_list_text(value: str | None, name: str) -> list[int] | None:
    """Task ids from a query string (``4,7``); None when absent or empty."""
    if not value:
        return None
    if not _ID_LIST.match(value):
        raise ApiError(
            422, f"{name} must be task ids separated by commas (e.g. 4,7), not {shown(value)}"
        )
    ids: list[int] = []
    for part in value.split(","):
        digits = part.lstrip("0") or "0"
        number = int(digits) if len(digits) <= len(str(MAX_ID)) else 0
        if not 0 < number <= MAX_ID:
            raise ApiError(422, f"{name}: {shown(part)} is not a task id (1 to {MAX_ID})")
        ids.append(number)
    return ids


def depends_on(value: Any) -> list[int] | None:
    """A task's ``depends_on``: a list of task ids (existing tasks), or None when absent or
    empty. Each id is checked here; that the tasks exist, by the database."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(422, f"depends_on must be a list of task ids, not {type(value).__name__}")
    if len(value) > workflow.MAX_PARENTS:
        raise ApiError(422, f"depends_on may list at most {workflow.MAX_PARENTS} task ids")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item <= MAX_ID:
            raise ApiError(
                422, f"depends_on must list task ids (whole numbers from 1), not {shown(item)}"
            )
    return list(value) or None


def on_parent_failure(value: Any) -> str | None:
    """What a failed parent does to the task (``cancel`` or ``run``); None: the worker's
    setting."""
    try:
        return workflow.check_on_parent_failure(value)
    except InvalidTaskError as exc:
        raise ApiError(422, str(exc)) from None
