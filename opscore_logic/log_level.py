"""The `LOG_LEVEL` setting, one rule for the operator's and the sidecar's settings."""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import AfterValidator


def known_log_level(value: str) -> str:
    """The level's standard name (`debug ` -> `DEBUG`). A name `logging` does not know is a
    `ValueError`, so the process refuses to start with a clear message rather than
    logging at a level nobody asked for."""
    level = value.strip().upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"unknown log level {value!r}")
    return level


LogLevel = Annotated[str, AfterValidator(known_log_level)]
