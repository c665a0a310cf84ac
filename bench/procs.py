"""Worker processes of the benchmark: start, watch, read their memory, stop, read their report.

Every system's worker (a `pgstask daemon`, a procrastinate or PgQueuer worker script) runs as a
real process with stdout and stderr in files. It is stopped with SIGTERM (its own graceful stop)
and reports on stdout, as its last line, a JSON object: how often its no-op action ran, and for
how many distinct tasks.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Proc:
    """One worker process; ``report`` is its JSON answer once stopped (None if it gave none)."""

    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    report: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def status_kb(self, key: str) -> int | None:
        """A ``/proc/<pid>/status`` field in kB (``VmHWM``: peak RSS, ``VmRSS``: current)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return None

    def stop(self, timeout: float = 60.0) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.problems.append(f"did not stop within {timeout:.0f}s of SIGTERM; killed")
                self.popen.kill()
                self.popen.wait()
        code = self.popen.returncode
        if code not in (0, -signal.SIGTERM):
            tail = self.err.read_text(errors="replace")[-1500:]
            self.problems.append(f"exited with {code}; its stderr ends:\n{tail}")
        for line in reversed(self.out.read_text(errors="replace").splitlines()):
            with contextlib.suppress(ValueError):
                got = json.loads(line)
                if isinstance(got, dict):
                    self.report = got
                    break


def start(cmd: list[str], env: dict[str, str], log_dir: Path, name: str) -> Proc:
    out, err = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        popen = subprocess.Popen(cmd, env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    return Proc(name, popen, out, err)


@contextlib.contextmanager
def running(
    cmds: list[list[str]], env: dict[str, str], log_dir: Path, name: str
) -> Iterator[list[Proc]]:
    """Worker processes, stopped (all signalled first, then waited for) on exit."""
    procs = [start(cmd, env, log_dir, f"{name}-{i}") for i, cmd in enumerate(cmds)]
    try:
        yield procs
    finally:
        for p in procs:
            if p.alive():
                p.popen.send_signal(signal.SIGTERM)
        for p in procs:
            p.stop()


def wait_for(
    done: Callable[[], bool], procs: list[Proc], timeout: float, step: float = 0.05
) -> bool:
    """Poll ``done`` until it is true (True), the time is up or a process died (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        if not all(p.alive() for p in procs):
            return done()
        time.sleep(step)
    return done()
