"""`python -m opscore_operator [kopf run options]`: kopf run with this operator's module,
JSON logs and standalone mode (one replica; see docs/architecture.md). `LOG_LEVEL` sets the
log level unless a kopf verbosity flag is given."""

from __future__ import annotations

import os
import sys

import kopf.cli

from opscore_operator.logs import kopf_verbosity

_VERBOSITY_FLAGS = ("--debug", "--verbose", "--quiet", "-d", "-v", "-q")


def main() -> None:
    args = ["run", "-m", "opscore_operator.handlers", "--standalone", "--log-format=json"]
    given = sys.argv[1:]
    if not any(arg in _VERBOSITY_FLAGS for arg in given):
        args += kopf_verbosity(os.environ.get("LOG_LEVEL", "INFO"))
    kopf.cli.main(args=args + given, prog_name="opscore-operator")


if __name__ == "__main__":
    main()
