"""Typed options: the model an action declares for its ``options``, and the check of a task's
data against it.

An action declares a model with the annotation of its options parameter (the one after
``task``)::

    @dataclass
    class ImportOptions:
        file: str
        count: int = 100

    class ProductWorker(BaseWorker):
        identifier = "product"

        def task_import(self, task, options: ImportOptions): ...

The model is a pydantic model (a ``pydantic.BaseModel`` subclass or a pydantic dataclass, of
pydantic 2) or a standard-library dataclass. Any other annotation, or none (``dict``,
``Mapping[str, Any]``, ``Any``, a ``TypedDict``, ``ImportOptions | None``), declares no model:
the action is given a copy of the task's data as a dict, as without typed options.

- A pydantic model is validated by pydantic (``TypeAdapter(model).validate_python``), under the
  model's own configuration (lax or strict, extra keys ignored or forbidden).
- A dataclass is checked here, by a deliberately small set of rules (``_compile``): every key
  of the data must name a field that ``__init__`` takes, every such field without a default
  must be given, and each value must match its field's type, for these types only: ``str``,
  ``int`` (not ``bool``), ``float`` (an ``int`` is accepted and made a ``float``), ``bool``,
  ``None``, ``Any`` or ``object`` (anything), ``list``/``list[T]``, ``dict``/``dict[str, T]``,
  unions (``T | None``, ``Optional[T]``), ``Literal[...]`` and nested dataclasses (from a JSON
  object). A field of any other type (``datetime``, ``tuple``, an enum, a class) makes the model
  refused when it is resolved (``ConfigurationError``): nothing is passed on unchecked. The
  dataclass's ``__post_init__`` runs; an exception it raises is a problem of the whole object.

``model_of`` resolves the annotation once per class and method, with ``typing.get_type_hints``
on that one annotation, in the method's module and its class's namespace: a string annotation
(``from __future__ import annotations``) works when the model is defined at the module level of
the worker, or in its class, by the time the first task is checked. Other annotations of the
method (``task: Task`` imported only for type checkers) are not read; ``def`` and
``async def`` methods are read alike. ``OptionsModel.build`` makes the instance from a task's
data, or raises ``InvalidOptionsError`` naming every field that does not match.

pydantic is not imported here: a model is taken for pydantic's when the ``pydantic`` module that
made it is loaded, so pgstask needs pydantic only where a worker uses it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

from pgstask.errors import ConfigurationError, InvalidOptionsError, shown

Problems = list[tuple[str, str]]
#: A compiled check of one type: the value and its path → the value to pass on; ``_Mismatch``.
Convert = Callable[[Any, str], Any]

KNOWN_TYPES = (
    "str, int, float, bool, None, Any, list[...], dict[str, ...], unions (X | None), "
    "Literal[...] and dataclasses"
)


class OptionsModel:
    """The options model of one action, resolved: ``build`` makes an instance of ``cls``."""

    def __init__(self, cls: type, convert: Callable[[Mapping[str, Any]], Any]) -> None:
        self.cls = cls
        self.name = cls.__qualname__
        self._convert = convert

    def build(self, data: Mapping[str, Any]) -> Any:
        """An instance of the model made from a task's ``data``, its defaults applied;
        ``InvalidOptionsError`` naming every field that does not match (and nothing else)."""
        return self._convert(data)

    def __repr__(self) -> str:
        return f"OptionsModel({self.cls.__module__}.{self.name})"


_models: weakref.WeakKeyDictionary[type, dict[str, OptionsModel | None]]
_models = weakref.WeakKeyDictionary()


def model_of(cls: type, method_name: str) -> OptionsModel | None:
    """The options model that action method ``method_name`` of worker class ``cls`` declares,
    or None. ``ConfigurationError`` when the annotation cannot be resolved, or names a
    dataclass with a field type the dataclass check does not know. Cached per class."""
    per_class = _models.get(cls)
    if per_class is None:
        per_class = _models.setdefault(cls, {})
    if method_name in per_class:
        return per_class[method_name]
    model = _resolve(cls, method_name)
    per_class[method_name] = model
    return model


def options_for(cls: type, method_name: str, data: Mapping[str, Any]) -> Any:
    """What the action is given as ``options``: an instance of its model made from ``data``,
    or a dict copy of ``data`` when it declares none (``InvalidOptionsError``,
    ``ConfigurationError``)."""
    model = model_of(cls, method_name)
    return dict(data) if model is None else model.build(data)


# --- resolving the annotation --------------------------------------------------------------------


def _resolve(cls: type, method_name: str) -> OptionsModel | None:
    ident = getattr(cls, "identifier", "") or "(no identifier)"
    where = f"worker {ident!r} ({cls.__module__}.{cls.__qualname__}), action method {method_name}"
    annotation = _annotation(cls, method_name, where)
    if not isinstance(annotation, type):
        return None
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and _is_pydantic(annotation, pydantic):
        try:
            adapter = pydantic.TypeAdapter(annotation)
        except Exception as exc:  # a model pydantic cannot complete (an undefined reference)
            raise ConfigurationError(
                f"{where}: options model {annotation.__qualname__}: pydantic cannot validate it "
                f"({type(exc).__name__}: {exc})"
            ) from None
        return OptionsModel(annotation, _pydantic(annotation, adapter, pydantic.ValidationError))
    if dataclasses.is_dataclass(annotation):
        try:
            check = _dataclass(annotation, {})
        except _Unsupported as exc:
            raise ConfigurationError(
                f"{where}: options model {annotation.__qualname__}: {exc}"
            ) from None
        return OptionsModel(annotation, _top(annotation, check))
    return None


def _annotation(cls: type, method_name: str, where: str) -> Any:
    """The resolved annotation of the options parameter (the one after ``task``), or None."""
    static = inspect.getattr_static(cls, method_name, None)
    func = static.__func__ if isinstance(static, staticmethod | classmethod) else static
    if not callable(func):
        return None
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a callable without a signature: nothing declared
        return None
    if not isinstance(static, staticmethod):
        params = params[1:]  # self, or the class of a classmethod
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) < 2 or params[1].kind not in positional:
        return None
    param = params[1]
    if param.annotation is inspect.Parameter.empty:
        return None
    target = inspect.unwrap(func)
    owner = next((k for k in cls.__mro__ if method_name in vars(k)), cls)

    def holder() -> None: ...

    holder.__annotations__ = {"options": param.annotation}
    globalns = getattr(target, "__globals__", {})
    try:
        return typing.get_type_hints(holder, globalns, dict(vars(owner)))["options"]
    except Exception as exc:  # NameError, SyntaxError, TypeError of a bad expression
        raise ConfigurationError(
            f"{where}: cannot resolve the annotation {param.annotation!r} of its options "
            f"parameter {param.name!r} ({type(exc).__name__}: {exc}); define or import the "
            "options model at module level (not only under `if TYPE_CHECKING:`)"
        ) from None


# --- pydantic ------------------------------------------------------------------------------------


def _is_pydantic(annotation: type, pydantic: Any) -> bool:
    if not hasattr(pydantic, "TypeAdapter"):  # pydantic 1: its models are not recognised
        return False
    if issubclass(annotation, pydantic.BaseModel):
        return True
    # A pydantic dataclass exists only once pydantic.dataclasses was imported (by its module).
    made = sys.modules.get("pydantic.dataclasses")
    return made is not None and bool(made.is_pydantic_dataclass(annotation))


def _pydantic(cls: type, adapter: Any, invalid: Any) -> Callable[[Mapping[str, Any]], Any]:
    """The build of a pydantic model: ``adapter`` its ``TypeAdapter``, ``invalid`` pydantic's
    ``ValidationError``, whose errors become the problems (``loc`` joined by dots, ``msg``)."""

    def convert(data: Mapping[str, Any]) -> Any:
        try:
            return adapter.validate_python(dict(data))
        except invalid as exc:
            problems = tuple(
                (".".join(str(part) for part in error["loc"]), str(error["msg"]))
                for error in exc.errors(include_url=False)
            )
        except Exception as exc:  # a validator that raised something pydantic does not wrap
            problems = (("", f"{cls.__qualname__} raised {type(exc).__name__}: {exc}"),)
        raise InvalidOptionsError(cls.__qualname__, problems)

    return convert


# --- the dataclass check -------------------------------------------------------------------------


class _Mismatch(Exception):
    """Problems of a value, as ``(path, message)`` pairs (becomes an ``InvalidOptionsError``)."""

    def __init__(self, problems: Problems) -> None:
        super().__init__(problems)
        self.problems = problems


class _Unsupported(Exception):
    """A field type the dataclass check does not know; ``placed`` once it names its field."""

    def __init__(self, text: str, *, placed: bool = False) -> None:
        super().__init__(text)
        self.placed = placed


def _top(cls: type, check: Convert) -> Callable[[Mapping[str, Any]], Any]:
    def convert(data: Mapping[str, Any]) -> Any:
        try:
            return check(data, "")
        except _Mismatch as exc:
            raise InvalidOptionsError(cls.__qualname__, tuple(exc.problems)) from None

    return convert


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _compile(tp: Any, seen: dict[type, Convert]) -> tuple[Convert, str]:
    """The check of type ``tp`` and what it expects, in words; ``_Unsupported`` for a type
    outside the rules of the module docstring."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return (lambda value, path: value), "anything"
    if tp is None or tp is type(None):
        return _exact(lambda v: v is None, "null")
    if tp is bool:
        return _exact(lambda v: isinstance(v, bool), "true or false")
    if tp is int:
        return _exact(lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number")
    if tp is float:
        return _float, "a number"
    if tp is str:
        return _exact(lambda v: isinstance(v, str), "a string")
    if tp is list or origin is list:
        return _list(_compile(args[0], seen)[0] if args else None), "a list"
    if tp is dict or origin is dict:
        if args and args[0] is not str:
            raise _Unsupported(f"dict keys must be str (JSON object keys), not {_name(args[0])}")
        return _dict(_compile(args[1], seen)[0] if args else None), "an object"
    if origin is Union or origin is types.UnionType:
        return _union([_compile(arg, seen) for arg in args])
    if origin is Literal:
        return _literal(args)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, seen), "an object"
    raise _Unsupported(
        f"the type {_name(tp)} is not one the dataclass check knows ({KNOWN_TYPES}); use a "
        "pydantic model for it, or Any to take the value unchecked"
    )


def _exact(test: Callable[[Any], bool], expects: str) -> tuple[Convert, str]:
    def convert(value: Any, path: str) -> Any:
        if test(value):
            return value
        raise _Mismatch([(path, f"must be {expects}, not {shown(value)}")])

    return convert, expects


def _float(value: Any, path: str) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _Mismatch([(path, f"must be a number, not {shown(value)}")])


def _list(item: Convert | None) -> Convert:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise _Mismatch([(path, f"must be a list, not {shown(value)}")])
        if item is None:
            return list(value)
        out, problems = [], []
        for i, element in enumerate(value):
            try:
                out.append(item(element, _join(path, i)))
            except _Mismatch as exc:
                problems.extend(exc.problems)
        if problems:
            raise _Mismatch(problems)
        return out

    return convert


def _dict(item: Convert | None) -> Convert:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _Mismatch([(path, f"must be an object, not {shown(value)}")])
        if item is None:
            return dict(value)
        out, problems = {}, []
        for key, element in value.items():
            try:
                out[key] = item(element, _join(path, key))
            except _Mismatch as exc:
                problems.extend(exc.problems)
        if problems:
            raise _Mismatch(problems)
        return out

    return convert


def _union(options: list[tuple[Convert, str]]) -> tuple[Convert, str]:
    expects = " or ".join(dict.fromkeys(words for _, words in options))

    def convert(value: Any, path: str) -> Any:
        deeper: Problems | None = None
        for check, _ in options:
            try:
                return check(value, path)
            except _Mismatch as exc:
                # An object of the right shape whose fields are wrong: those fields say more.
                if deeper is None and any(p != path for p, _ in exc.problems):
                    deeper = exc.problems
        raise _Mismatch(deeper or [(path, f"must be {expects}, not {shown(value)}")])

    return convert, expects


def _literal(values: tuple[Any, ...]) -> tuple[Convert, str]:
    expects = "one of " + ", ".join(_json(v) for v in values)
    return _exact(lambda v: any(type(v) is type(a) and v == a for a in values), expects)


def _dataclass(cls: type, seen: dict[type, Convert]) -> Convert:
    """The check of a dataclass: an object whose keys are its ``__init__`` fields."""
    if cls in seen:  # a dataclass that contains itself, at some depth
        return seen[cls]
    fields: dict[str, tuple[Convert, bool]] = {}

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            raise _Mismatch([(path, f"must be an object, not {shown(value)}")])
        problems: Problems = []
        given: dict[str, Any] = {}
        for name, (check, required) in fields.items():
            if name in value:
                try:
                    given[name] = check(value[name], _join(path, name))
                except _Mismatch as exc:
                    problems.extend(exc.problems)
            elif required:
                problems.append((_join(path, name), "is required"))
        for key in value:
            if key not in fields:
                problems.append((_join(path, key), f"is not a field of {cls.__qualname__}"))
        if problems:
            raise _Mismatch(problems)
        try:
            return cls(**given)
        except Exception as exc:  # __post_init__'s own checks
            raise _Mismatch([(path, f"{type(exc).__name__}: {exc}")]) from None

    seen[cls] = convert
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:
        raise _Unsupported(
            f"cannot resolve the field types of {cls.__qualname__} ({type(exc).__name__}: {exc})"
        ) from None
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        try:
            check, _ = _compile(hints.get(field.name, Any), seen)
        except _Unsupported as exc:
            if exc.placed:
                raise
            raise _Unsupported(
                f"field {cls.__qualname__}.{field.name}: {exc}", placed=True
            ) from None
        required = (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        fields[field.name] = (check, required)
    return convert


def _name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp)


def _json(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
