"""The layers of docs/architecture.md, checked on the source by import-linter (the contracts are in
pyproject.toml). Every import statement counts: at module level, inside a function or under
``TYPE_CHECKING``, so a lazy import cannot hide a dependency on a layer above."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(source: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts, on the ``pgstask`` package in ``source``."""
    command = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(command), "--no-cache", "--no-logo", "--config", str(ROOT / "pyproject.toml")],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_imports_keep_the_layers() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement"),
    [
        ("runtime/producer.py", "from pgstask.client import Client"),
        ("workers/base.py", "from pgstask.runtime.daemon import Daemon"),
        ("queries/tasks.py", "from pgstask.progress import ProgressState"),
    ],
)
def test_an_import_inside_a_function_breaks_the_layers_too(
    tmp_path: Path, module: str, statement: str
) -> None:
    """The check on a copy of the package with one import of a higher layer, made inside a
    function, as the imports that hid the cycle between the client and the runtime were."""
    shutil.copytree(
        ROOT / "pgstask", tmp_path / "pgstask", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = tmp_path / "pgstask" / module
    path.write_text(path.read_text() + f"\n\ndef _late() -> object:\n    {statement}\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    importer = "pgstask." + module.removesuffix(".py").replace("/", ".")
    imported = statement.split()[1]
    assert f"{importer} -> {imported}" in result.stdout


def test_no_module_is_in_an_import_cycle() -> None:
    """Stricter than the contracts where a package's ``__init__`` is on the way: ``pgstask``'s
    imports the client, so a module below the client importing ``pgstask`` would close a cycle."""
    graph = grimp.build_graph("pgstask", cache_dir=None)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycles.append(f"{importer} -> {' -> '.join(back)}")
    assert cycles == []
