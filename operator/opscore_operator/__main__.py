"""`python -m opscore_operator [kopf run options]`: kopf run with this operator's module,
JSON logs and standalone mode (one replica; see docs/architecture.md)."""

from __future__ import annotations

import sys

import kopf.cli


def main() -> None:
    args = ["run", "-m", "opscore_operator.handlers", "--standalone", "--log-format=json"]
    kopf.cli.main(args=args + sys.argv[1:], prog_name="opscore-operator")


if __name__ == "__main__":
    main()
