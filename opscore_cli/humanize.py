"""Durations and ages as kubectl prints them (`45s`, `3m20s`, `5h`, `12d`).

kubectl users read ages in this form every day, so the plugin uses it too. Step durations
below ten seconds keep one decimal: agent tasks are often that short, and "1s" for both
0.6 s and 1.4 s hides what a person comparing steps wants to see.
"""

from __future__ import annotations

from datetime import datetime


def duration(seconds: float | None, *, precise: bool = False) -> str:
    """`seconds` the kubectl way (`precise`: one decimal under ten seconds); `-` for None."""
    if seconds is None:
        return "-"
    if seconds < 0:
        seconds = 0.0
    if precise and seconds < 10:
        return f"{seconds:.1f}s"
    total = int(seconds)
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 120:
        return f"{total}s"
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago `moment` was (`-` when unknown)."""
    if moment is None:
        return "-"
    return duration((now - moment).total_seconds())
