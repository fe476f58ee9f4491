"""Command line for importing an earlier Ops-Core workflow definition (see `legacy`).

    python -m opscore_logic.legacy_cli FILE [--namespace NS] [--workflow NAME]
                                            [--input KEY=VALUE ...]

Prints the manifests as multi-document YAML on stdout, so the usual migration is
`python -m opscore_logic.legacy_cli old.json | kubectl apply --server-side -f -`. FILE may
be `-` (stdin). Server-side apply (or `kubectl create`) because client-side `kubectl apply`
drops null values inside `parameters`; the CLI warns on stderr when there are any.
Every problem is one line `error: <field>: <reason>` on stderr with exit code 2, and nothing
goes to stdout then, so a pipe into kubectl applies all of it or nothing.

Kept thin on purpose: all rules live in `opscore_logic.legacy`, which tests exercise
without files or processes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import yaml

from opscore_logic.legacy import (
    LEGACY_RETRIES,
    LegacyImportError,
    null_parameters,
    parse_legacy,
    to_manifests,
)

EXIT_OK = 0
EXIT_ERROR = 2


class _UsageError(Exception):
    """A bad command line; reported like every other error (one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m opscore_logic.legacy_cli",
        description=(
            "Convert a workflow definition of the earlier Ops-Core (JSON or YAML) into an "
            "Ops-Core WorkflowTemplate manifest, printed as YAML for "
            "`kubectl apply --server-side -f -`."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the legacy definition; - reads stdin")
    parser.add_argument("--namespace", "-n", metavar="NS", help="set metadata.namespace")
    parser.add_argument(
        "--workflow",
        metavar="NAME",
        help="also emit a Workflow of this name that runs the template (templateRef)",
    )
    parser.add_argument(
        "--input",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="inputs",
        help="a spec.inputs entry of the Workflow (string value); repeat for more",
    )
    return parser


def _inputs(pairs: Sequence[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _UsageError(f"--input: expected KEY=VALUE, got {pair!r}")
        if key in inputs:
            raise _UsageError(f"--input: {key!r} is given more than once")
        inputs[key] = value
    return inputs


def _read(file: str) -> str:
    try:
        if file == "-":
            return sys.stdin.read()
        return Path(file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _UsageError(f"{file}: no such file") from None
    except UnicodeDecodeError:
        raise _UsageError(f"{file}: not UTF-8 text") from None
    except OSError as exc:
        raise _UsageError(f"{file}: cannot read: {exc.strerror or exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the importer; returns the exit code (0 ok, 2 on any error)."""
    try:
        args = _parser().parse_args(argv)
        inputs = _inputs(args.inputs)
        if inputs and args.workflow is None:
            raise _UsageError("--input needs --workflow (inputs belong to a Workflow)")
        legacy = parse_legacy(_read(args.file))
        manifests = to_manifests(
            legacy, namespace=args.namespace, workflow_name=args.workflow, inputs=inputs
        )
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except (_UsageError, LegacyImportError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_ERROR
    source = "stdin" if args.file == "-" else Path(args.file).name
    header = (
        f"# Imported from {' '.join(source.split())} (earlier Ops-Core workflow format).\n"
        f"# retries.limit={LEGACY_RETRIES} on every step: the earlier Ops-Core intended a "
        f"fixed {LEGACY_RETRIES} retries per task.\n"
    )
    for path in null_parameters(legacy):
        print(
            f"warning: {path} is null; client-side `kubectl apply` drops null values, "
            "use `kubectl apply --server-side` or `kubectl create` to keep it",
            file=sys.stderr,
        )
    body = yaml.safe_dump_all(manifests, sort_keys=False, allow_unicode=True)
    sys.stdout.write(header + body)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
