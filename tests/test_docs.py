"""docs/architecture.md stays true: every module it names exists, and every module of
``pgstask/`` is named in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pgstask"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# `runtime/daemon.py`, `client.py`, `pgstask/files.py`, `tests/test_dashboard.py`
_MODULE = re.compile(r"`((?:[a-z_]+/)*[a-z_]+\.py)`")


def _named() -> set[str]:
    return set(_MODULE.findall(ARCHITECTURE.read_text(encoding="utf-8")))


def _exists(name: str) -> bool:
    return (PACKAGE / name).is_file() or (ROOT / name).is_file()


def test_every_module_the_architecture_names_exists() -> None:
    missing = sorted(name for name in _named() if not _exists(name))
    assert missing == [], f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_module_of_the_package_is_in_the_architecture() -> None:
    named = {name.removeprefix("pgstask/") for name in _named()}
    modules = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent.name == "sql"
    )
    # The CLI's command modules are described together (`cli/`), one row per command group.
    unnamed = [m for m in modules if m not in named and not m.startswith("cli/")]
    assert unnamed == [], f"modules missing from docs/architecture.md: {unnamed}"
