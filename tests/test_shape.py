"""The shape rules of docs/architecture.md: no module of ``pgstask/`` over 500 lines, no function
over 80, and a docstring on every public class and function (methods of public classes included;
``_private`` names, nested functions and ``@overload`` stubs aside)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pgstask"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def definitions(
    node: ast.AST, *, public: bool = True, depth: int = 0
) -> Iterator[tuple[Definition, bool]]:
    """Every function and class of ``node`` (into classes, not into functions), each with
    whether it is public: its own name and every enclosing class's name without ``_``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            is_public = public and not child.name.startswith("_") and depth < 2
            yield child, is_public
            if isinstance(child, ast.ClassDef):
                yield from definitions(child, public=is_public, depth=depth + 1)


def _is_stub(node: Definition) -> bool:
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Name) and decorator.id == "overload":
            return True
        if isinstance(decorator, ast.Attribute) and decorator.attr in ("setter", "deleter"):
            return True
    return False


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"


def test_no_module_is_over_500_lines() -> None:
    over = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}


def test_no_function_is_over_80_lines() -> None:
    over = []
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    over.append(f"{_where(path, node)} {node.name}: {length} lines")
    assert over == []


def test_every_public_class_and_function_has_a_docstring() -> None:
    missing = []
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, public in definitions(tree):
            if public and not _is_stub(node) and ast.get_docstring(node) is None:
                missing.append(f"{_where(path, node)} {node.name}")
    assert missing == []


def test_the_rules_see_what_they_should() -> None:
    """The checks above find a long function, a public definition without a docstring, and
    leave private and nested ones alone."""
    source = (
        "def public():\n    def nested():\n        pass\n"
        "def _private():\n    pass\n"
        "class Open:\n    '''Doc.'''\n    def method(self):\n        pass\n"
        "    def _hidden(self):\n        pass\n"
        "def long():\n    '''Doc.'''\n" + "    x = 1\n" * 80
    )
    tree = ast.parse(source)
    undocumented = [
        n.name for n, public in definitions(tree) if public and ast.get_docstring(n) is None
    ]
    assert undocumented == ["public", "method"]
    [long] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "long"]
    assert long.end_lineno is not None and long.end_lineno - long.lineno + 1 > MAX_FUNCTION_LINES
