"""A process's memory as Linux reports it (``/proc/<pid>/status``): the peak an index
build reports of itself (``gateway.catalog.build_process``), and what the benchmarks
measure of the gateway and of themselves."""

from __future__ import annotations


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """The ``Vm*`` lines of ``pid``'s status, in MB: ``VmRSS`` (resident now), ``VmHWM``
    (its peak), .... Raises ``OSError`` where there is no such file (not Linux, or the
    process is gone): a caller that can do without says so itself."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Vm"):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0]) / 1024
    return out
