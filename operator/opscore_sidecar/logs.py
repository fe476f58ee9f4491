"""Logging: one JSON object per line on stdout, as the earlier Ops-Core wrote them.

Every line has `timestamp`, `level`, `name`, `message`; lines written while handling a
request also carry its `request_id` (taken from `X-Request-ID` or generated), and the
sidecar's own lines name the `agent_id` they concern. API keys and secrets are never logged.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("opscore_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged while handling it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        return True


def json_handler() -> logging.Handler:
    """A stdout handler writing one JSON object per record."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level"},
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI duplicate
            timestamp=True,
        )
    )
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(level: str) -> None:
    """Route every logger (ours, uvicorn's) through one JSON handler at `level`."""
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
