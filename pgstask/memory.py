"""Memory figures of a process, in bytes: what ``s_tasks.peak_memory`` is made of.

- ``resident()``: the resident set size of this process now (resident pages of
  ``/proc/self/statm`` times the page size); where there is no ``/proc``, the peak so far
  (``ru_maxrss``), which is never below it.
- ``peak()``: the highest resident set size this process has had (``ru_maxrss``; kilobytes on
  Linux, bytes on macOS).
- ``peak_of(pid)``: the kernel's high-water mark of another process (``VmHWM`` in
  ``/proc/<pid>/status``); None where there is no ``/proc`` or the process is gone.
- ``Gauge``: the latest ``resident()`` reading, refreshed by one sampler (the daemon's
  supervisor, every 0.2 s), so that the path of each task reads a figure without a system call.

Every function returns None rather than raise: a missing figure must never fail a task.
"""

from __future__ import annotations

import os
import sys

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# ru_maxrss is in kilobytes on Linux and the BSDs, in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def peak() -> int | None:
    """The peak resident set size of this process so far."""
    if resource is None:
        return None
    try:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT
    except OSError:
        return None


_statm: tuple[int, int] | None = None  # (pid, fd of /proc/self/statm opened by that pid)


def resident() -> int | None:
    """The resident set size of this process now (the peak so far where /proc is missing).

    Called twice per task, so it keeps ``/proc/self/statm`` open and reads it with one
    ``pread`` (about 2 µs instead of 12 for open/read/close); a forked child reopens it, since
    the inherited descriptor still describes its parent."""
    global _statm
    try:
        pid = os.getpid()
        if _statm is None or _statm[0] != pid:
            _statm = (pid, os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC))
        return int(os.pread(_statm[1], 128, 0).split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return peak()


def peak_of(pid: int) -> int | None:
    """The peak resident set size of process ``pid`` so far, where /proc tells it."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # always in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


class Gauge:
    """The latest resident set size of this process, as its sampler last read it.

    Actions in threads read it at their start and end: one system call there per task lets the
    producer claim with half the slots free, halving throughput. Before the first ``sample``
    (no sampler runs, as in ``pgstask execute``) ``reading`` reads the figure itself."""

    __slots__ = ("_latest", "_sampled")

    def __init__(self) -> None:
        self._latest: int | None = None
        self._sampled = False

    def sample(self) -> int | None:
        """Read the resident set size now and keep it as the latest reading."""
        self._latest = resident()
        self._sampled = True
        return self._latest

    def reading(self) -> int | None:
        """The latest sample, or the figure now when nothing has sampled yet."""
        return self._latest if self._sampled else resident()
