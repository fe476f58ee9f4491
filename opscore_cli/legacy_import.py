"""`kubectl opscore import FILE`: an earlier Ops-Core workflow definition as manifests.

    kubectl opscore import FILE [-n NS] [--workflow NAME] [--input KEY=VALUE ...]

Prints multi-document YAML on stdout, so the usual migration is
`kubectl opscore import old.json | kubectl apply --server-side -f -`. FILE may be `-`
(stdin). Server-side apply (or `kubectl create`) because client-side `kubectl apply` drops
null values inside `parameters`; a warning on stderr names each one. The command needs no
cluster (`python -m opscore_cli import` works without kubectl).

Every problem is one `error: <field>: <reason>` line on stderr (a `CliError`, exit 1 like
every `kubectl opscore` error), and nothing goes to stdout then, so a pipe into kubectl
applies all of it or nothing. The conversion rules are `opscore_logic.legacy`'s (pure,
tested without files); this module reads the file and writes the answer.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import yaml

from opscore_cli.cluster import CliError
from opscore_logic.legacy import LEGACY_RETRIES, LegacyImportError, null_parameters, parse_legacy
from opscore_logic.legacy import to_manifests as legacy_manifests

STDIN = "-"


def _error(message: str) -> CliError:
    """One line, whatever the message held (a YAML error spans several)."""
    return CliError(f"error: {' '.join(message.split())}")


def _inputs(pairs: Sequence[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _error(f"--input: expected KEY=VALUE, got {pair!r}")
        if key in inputs:
            raise _error(f"--input: {key!r} is given more than once")
        inputs[key] = value
    return inputs


def _read(file: str) -> str:
    try:
        if file == STDIN:
            return sys.stdin.read()
        return Path(file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _error(f"{file}: no such file") from None
    except UnicodeDecodeError:
        raise _error(f"{file}: not UTF-8 text") from None
    except OSError as exc:
        raise _error(f"{file}: cannot read: {exc.strerror or exc}") from None


def import_legacy(
    file: str,
    *,
    namespace: str | None,
    workflow: str | None,
    inputs: Sequence[str],
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Convert FILE and print the manifests; raises CliError (nothing printed) on a problem.

    `namespace` sets every manifest's metadata.namespace; `workflow` adds a Workflow of that
    name running the template, with `inputs` (KEY=VALUE) as its spec.inputs.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    values = _inputs(inputs)
    if values and workflow is None:
        raise _error("--input needs --workflow (inputs belong to a Workflow)")
    try:
        legacy = parse_legacy(_read(file))
        manifests = legacy_manifests(
            legacy, namespace=namespace, workflow_name=workflow, inputs=values
        )
    except LegacyImportError as exc:
        raise _error(str(exc)) from None
    source = "stdin" if file == STDIN else Path(file).name
    header = (
        f"# Imported from {' '.join(source.split())} (earlier Ops-Core workflow format).\n"
        f"# retries.limit={LEGACY_RETRIES} on every step: the earlier Ops-Core intended a "
        f"fixed {LEGACY_RETRIES} retries per task.\n"
    )
    for path in null_parameters(legacy):
        err.write(
            f"warning: {path} is null; client-side `kubectl apply` drops null values, "
            "use `kubectl apply --server-side` or `kubectl create` to keep it\n"
        )
    out.write(header + yaml.safe_dump_all(manifests, sort_keys=False, allow_unicode=True))
    return 0
