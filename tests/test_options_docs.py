"""docs/workers.md, "Typed options": its example, run as written. The first block is a worker
module that a real daemon runs; the second is refused with the error its comment shows."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgstask import Client, InvalidOptionsError, Status
from pgstask.settings import Settings
from tests.daemons import ROOT, running_daemon, wait_for

MODULE = "typed_options_example"


def _blocks() -> list[str]:
    text = (ROOT / "docs" / "workers.md").read_text(encoding="utf-8")
    section = text.split("\n## Typed options\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture
def example(tmp_path: Path) -> Iterator[str]:
    """The first block, as the module ``MODULE`` on ``sys.path``."""
    (tmp_path / f"{MODULE}.py").write_text(_blocks()[0], encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        yield MODULE
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(MODULE, None)


@pytest.fixture
def client(settings: Settings, example: str) -> Iterator[Client]:
    """A client of the test's database with the example's worker registered."""
    with Client(settings=settings) as c:
        c.discover_workers([example])
        yield c


def test_the_typed_options_example_runs_as_written(
    settings: Settings, client: Client, example: str, tmp_path: Path
) -> None:
    first, second = _blocks()[:2]
    with running_daemon(settings, modules=(example,)):
        # The second block: refused at enqueue with the message its comment shows.
        shown = re.search(r"# pgstask\.InvalidOptionsError: (.*)", second)
        assert shown is not None
        with pytest.raises(InvalidOptionsError) as refused:
            exec(second, {"client": client})
        assert str(refused.value) == shown.group(1)
        # Data the model takes: the action is given an ImportOptions, defaults applied.
        rows = tmp_path / "a.csv"
        rows.write_text("x\ny\nz\n", encoding="utf-8")
        task = client.create("product", "import", {"file": str(rows), "count": 2})
        wait_for(lambda: client.get(task).is_finished)
    done = client.get(task)
    assert done.status == Status.COMPLETED, done.last_error
    assert done.result == {"rows": 2, "mode": "append"}
    assert "class ImportOptions" in first
