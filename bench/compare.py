"""Two commits of pgstask through the same benchmark, runs alternated in one sitting.

    python bench/compare.py REF [--runs N] [--logs DIR] -- [run.py options]

REF (a commit, branch or tag) is exported with ``git archive`` into a temporary directory; then
``bench/run.py`` of REF and ``bench/run.py`` of this tree run one after the other, REF first,
``--runs`` times (default 3), each in its own tree as the working directory and with its own
``pgstask`` first on PYTHONPATH (the daemons it spawns inherit both), with the run.py options
given after ``--``. Each system's figures are read
from the pgstask column of each run's closing table; the end prints, per figure, every run of
both sides, their medians and the change. Each run's whole output is kept in ``--logs`` (default:
a temporary directory, named at the end). Exit code 1 if any run exited non-zero.

Both sides run their own benchmark scripts, so a scenario only one of them has (``--only
limits`` on a commit before it) fails that side's runs: give options both understand.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"-?[\d,]*\.?\d+")


def export(ref: str, into: Path) -> str:
    """The tree of ``ref`` written into ``into``; returns its commit's short hash."""
    commit = git("rev-parse", "--short", f"{ref}^{{commit}}").strip()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True)
    return done.stdout.decode()


def run_once(tree: Path, args: list[str], log: Path) -> int:
    """``bench/run.py`` of ``tree`` with ``args``, its pgstask first on PYTHONPATH and ``tree``
    the working directory (``python -m pgstask daemon`` puts the working directory first on its
    path); the output goes to ``log`` and to stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))
    cmd = [sys.executable, str(tree / "bench" / "run.py"), *args]
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            cmd, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            out.write(line)
            sys.stdout.write(line)
        return proc.wait()


def figures(output: str) -> dict[str, tuple[str, str]]:
    """The closing table's pgstask column: figure name -> (unit, cell)."""
    lines = output.splitlines()
    starts = [
        i
        for i, line in enumerate(lines[:-1])
        if line.split()[:2] == ["figure", "unit"] and lines[i + 1].startswith("---")
    ]
    if not starts:
        return {}
    head = lines[starts[-1]]
    unit_at = head.index("unit")
    end = head.index("pgstask") + len("pgstask")  # the numeric columns are right-aligned
    found: dict[str, tuple[str, str]] = {}
    for line in lines[starts[-1] + 2 :]:
        if not line.strip():
            break
        parts = line[unit_at:end].split(None, 1)
        if len(parts) == 2:
            found[line[:unit_at].strip()] = (parts[0], parts[1].strip())
    return found


def value(cell: str) -> float | None:
    match = NUMBER.match(cell)
    return float(match.group().replace(",", "")) if match else None


def summary(ref: str, this: str, runs: dict[str, list[dict[str, tuple[str, str]]]]) -> str:
    names: dict[str, str] = {}
    for side in runs.values():
        for got in side:
            for name, (unit, _) in got.items():
                names.setdefault(name, unit)
    head = ["figure", "unit", f"{ref} (runs)", f"{this} (runs)", "median", "median", "change"]
    body = []
    for name, unit in names.items():
        cells = {s: [got.get(name, ("", "-"))[1] for got in runs[s]] for s in runs}
        medians = {}
        for side, texts in cells.items():
            values = [v for v in map(value, texts) if v is not None]
            medians[side] = statistics.median(values) if values else None
        before, after = medians[ref], medians[this]
        change = f"{100 * (after - before) / before:+.0f} %" if before and after else ""
        body.append(
            [
                name,
                unit,
                " / ".join(cells[ref]),
                " / ".join(cells[this]),
                f"{before:,.1f}" if before is not None else "-",
                f"{after:,.1f}" if after is not None else "-",
                change,
            ]
        )
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *body]
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, bench_args = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    parser = argparse.ArgumentParser(
        description="bench/run.py of REF and of this tree, alternated (see its docstring)"
    )
    parser.add_argument("ref", help="the commit to compare with (the 'before')")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--logs", type=Path, help="directory for each run's output")
    args = parser.parse_args(ours)
    tmp = Path(tempfile.mkdtemp(prefix="pgstask-compare-"))
    logs = args.logs or tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    failed = False
    try:
        ref = export(args.ref, tmp / "ref")
        this = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain", "--untracked-files=no").strip()
        this += "+changes" if dirty else ""
        runs: dict[str, list[dict[str, tuple[str, str]]]] = {ref: [], this: []}
        for i in range(1, args.runs + 1):
            for side, tree in ((ref, tmp / "ref"), (this, ROOT)):
                log = logs / f"run{i}-{side}.txt"
                print(f"\n=== run {i} of {args.runs}: {side} ({tree}) -> {log}", flush=True)
                code = run_once(tree, bench_args, log)
                failed = failed or code != 0
                runs[side].append(figures(log.read_text(encoding="utf-8")))
        print(f"\n{ref} before, {this} after; {args.runs} runs each, alternated; pgstask figures")
        print(summary(ref, this, runs))
        print(f"each run's output: {logs}")
    finally:
        shutil.rmtree(tmp / "ref", ignore_errors=True)
        if args.logs is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
