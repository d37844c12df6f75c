"""``Prefer`` (RFC 7240) as the orders API honours it: ``wait=N`` and ``respond-async``.

``Prefer: wait=10`` asks the server to answer once the order is final or after 10
seconds, whichever comes first; the wait is capped at ``orders.max_wait_seconds`` and the
answer carries ``Preference-Applied: wait=<seconds honoured>``. ``respond-async`` wins
over ``wait`` (answer at once). Malformed preferences are ignored, as the RFC requires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SECONDS = re.compile(r"[0-9]+")
"""``delta-seconds``: ASCII digits only (``str.isdigit`` also accepts ``²`` and other
digits ``int`` refuses)."""
_DIGITS_ENOUGH = 10
"""More digits than this is longer than any wait honoured: capped without ``int()``,
which refuses more than 4300 digits."""


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
            elif name == "wait" and wait is None and _SECONDS.fullmatch(value):
                digits = value.lstrip("0") or "0"
                wait = int(digits) if len(digits) <= _DIGITS_ENOUGH else 10**_DIGITS_ENOUGH
    if asynchronous:
        return WaitPreference(0.0, "respond-async")
    if wait is None:
        return WaitPreference(0.0, None)
    honoured = min(float(wait), max_wait)
    shown = int(honoured) if honoured == int(honoured) else honoured
    return WaitPreference(honoured, f"wait={shown}")
