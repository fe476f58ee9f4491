"""Which namespaces the operator watches: the ones kopf's command line names."""

from __future__ import annotations

import os
from collections.abc import Sequence


def watched_namespaces(argv: Sequence[str]) -> list[str | None]:
    """The namespaces kopf serves, from its command line (`-n/--namespace`, repeatable;
    `-A/--all-namespaces`: None, i.e. cluster-wide). With namespace scanning off (see
    handlers.py) kopf serves plain names only, never patterns, and so does this."""
    names: list[str] = []
    clusterwide = False
    args = list(argv)
    for index, arg in enumerate(args):
        value: str | None = None
        if arg in ("-A", "--all-namespaces"):
            clusterwide = True
        elif arg in ("-n", "--namespace") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--namespace="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            value = arg[2:]
        if value is not None:
            names.append(value)
    legacy = os.environ.get("KOPF_RUN_NAMESPACE")
    if legacy:
        names.append(legacy)
    if clusterwide:
        return [None]
    return [n for n in dict.fromkeys(names) if not any(c in n for c in "!*?,")]
