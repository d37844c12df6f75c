"""``Prefer`` (RFC 7240) as the orders API honours it: ``wait=N`` and ``respond-async``.

``Prefer: wait=10`` asks the server to answer once the order is final or after 10
seconds, whichever comes first; the wait is capped at ``orders.max_wait_seconds`` and the
answer carries ``Preference-Applied: wait=<seconds honoured>``. ``respond-async`` wins
over ``wait`` (answer at once). Malformed preferences are ignored, as the RFC requires.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WaitPreference:
    seconds: float
    applied: str | None


def parse_prefer(values: list[str], max_wait: float) -> WaitPreference:
    wait: int | None = None
    asynchronous = False
    for header in values:
        for preference in header.split(","):
            head = preference.split(";", 1)[0].strip()
            if not head:
                continue
            name, _, value = head.partition("=")
            name = name.strip().lower()
            value = value.strip().strip('"')
            if name == "respond-async":
                asynchronous = True
            elif name == "wait" and value.isdigit() and wait is None:
                wait = int(value)
    if asynchronous:
        return WaitPreference(0.0, "respond-async")
    if wait is None:
        return WaitPreference(0.0, None)
    honoured = min(float(wait), max_wait)
    shown = int(honoured) if honoured == int(honoured) else honoured
    return WaitPreference(honoured, f"wait={shown}")
