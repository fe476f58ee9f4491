"""The `LOG_LEVEL` setting, one rule for the operator's and the sidecar's settings.

The names are the standard library's own levels, listed here rather than asked of
`logging`: the core does no logging of its own (the layer contract in pyproject.toml).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

LEVELS = frozenset({"CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET"})


def known_log_level(value: str) -> str:
    """The level's standard name (`debug ` -> `DEBUG`). A name that is not a standard
    level is a `ValueError`, so the process refuses to start with a clear message rather
    than logging at a level nobody asked for."""
    level = value.strip().upper()
    if level not in LEVELS:
        raise ValueError(f"unknown log level {value!r}")
    return level


LogLevel = Annotated[str, AfterValidator(known_log_level)]
