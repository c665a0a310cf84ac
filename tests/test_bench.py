"""The benchmark scripts still load against the package: every module of ``bench/`` imports and
each script answers ``--help`` (a rename in ``pgstask`` that a script uses fails here, not on the
next benchmark run). The figures themselves are the scripts' business, never a test's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


@pytest.mark.parametrize("script", ["run.py", "chaos.py"])
def test_a_benchmark_script_loads_and_answers_help(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_every_benchmark_module_imports() -> None:
    modules = sorted(p.stem for p in BENCH.glob("*.py"))
    code = f"import sys; sys.path[:0] = [{str(BENCH)!r}, {str(BENCH / 'workers')!r}]; " + "; ".join(
        f"import {name}" for name in modules
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pgstask_only" in modules and "run" in modules
