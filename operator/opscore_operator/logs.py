"""The operator's log lines: one JSON object per line, shaped like the sidecar's.

kopf's `--log-format=json` already writes JSON, but with `severity` and without the logger's
name. Both processes' lines should read the same way (`timestamp`, `level`, `name`,
`message`, plus the ids a line is about: `namespace`, `workflow`, `step`, `agent`,
`agent_id`, `task_id`), so `configure_logging` swaps the formatter of kopf's handler once
the operator starts, keeping kopf's object reference (`object`) on lines about an object.
Lines kopf writes before the startup handler runs keep kopf's own JSON shape.

`LOG_LEVEL` sets the level: `__main__` maps it onto kopf's `--verbose`/`--quiet` for those
first lines, and `configure_logging` sets it exactly.
"""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# kopf's own record attributes: its object reference is written as `object`, the others
# are internal.
_KOPF_ATTRS = ("k8s_skip", "k8s_ref", "settings")


class OperatorJsonFormatter(JsonFormatter):
    """`timestamp`, `level`, `name`, `message`, extras, and kopf's `object` reference."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level"},
            reserved_attrs=[*RESERVED_ATTRS, *_KOPF_ATTRS, "color_message"],
            timestamp=True,
        )

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        ref = getattr(record, "k8s_ref", None)
        if ref:
            log_record["object"] = ref


def configure_logging(level: str) -> None:
    """Give every handler on the root logger (kopf's) the JSON formatter; set `level`;
    quiet httpx's per-request lines."""
    root = logging.getLogger()
    handlers = root.handlers or [logging.StreamHandler()]
    for handler in handlers:
        handler.setFormatter(OperatorJsonFormatter())
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    # One line per API request would drown the lines about work (the sidecar does the same;
    # opscore_kube_api_requests_total counts them instead).
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    # Likewise kopf's "Handler 'workflow_event' succeeded." for every watch event (20,000
    # lines for a restart at 20,000 objects); its warnings and errors still show.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, root.level))


def kopf_verbosity(level: str) -> list[str]:
    """kopf's flag for `LOG_LEVEL` (kopf knows only DEBUG, INFO and WARNING)."""
    number = logging.getLevelName(level.strip().upper())
    if not isinstance(number, int) or number == logging.INFO:
        return []
    return ["--verbose"] if number < logging.INFO else ["--quiet"]
