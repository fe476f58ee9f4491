"""Command line of `kubectl opscore` (console script `kubectl-opscore`).

    kubectl opscore get WORKFLOW [-o json|yaml]
    kubectl opscore watch WORKFLOW [--interval SECONDS]
    kubectl opscore agents [-o json|yaml]
    kubectl opscore suspend|resume|cancel|retry WORKFLOW
    kubectl opscore approve|reject WORKFLOW STEP [--reason TEXT]
    kubectl opscore graph WORKFLOW [--format mermaid|dot]
    kubectl opscore import FILE [--workflow NAME] [--input KEY=VALUE ...]

Connection flags (`--kubeconfig`, `--context`, `-n/--namespace`) work before or after the
subcommand, as kubectl's do. Errors are one `error: ...` or `Error from server (...)`
line on stderr with exit code 1, as in kubectl; `watch` exits 1 when the run did not
succeed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from opscore_cli import commands, deciding, graphs, watching
from opscore_cli.cluster import CliError, Cluster, Target
from opscore_cli.legacy_import import import_legacy
from opscore_cli.verbs import VERBS

PROG = "kubectl opscore"
VERB_HELP = {
    "suspend": "stop dispatching new steps (spec.suspend=true)",
    "resume": "undo suspend (spec.suspend=false)",
    "cancel": "stop the run: running attempts are abandoned (spec.cancel=true)",
    "retry": "retry a Failed run from its failed steps (spec.retryGeneration+1)",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors read like kubectl's and exit 1, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"error: {message}\nSee '{PROG} --help' for usage.\n")


def _connection_flags() -> _Parser:
    # SUPPRESS: a subcommand's defaults must not overwrite what was given before it.
    flags = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    flags.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    flags.add_argument("--context", help="kubeconfig context to use")
    flags.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    return flags


def build_parser() -> argparse.ArgumentParser:
    flags = _connection_flags()
    parser = _Parser(
        prog=PROG,
        parents=[flags],
        description="Ops-Core workflows and agents, as people read them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    get = sub.add_parser("get", parents=[flags], help="a workflow as a tree of steps")
    get.add_argument("workflow")
    get.add_argument("-o", "--output", choices=commands.OUTPUTS, help="print the object")

    watch = sub.add_parser("watch", parents=[flags], help="follow a workflow until it ends")
    watch.add_argument("workflow")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")

    agents = sub.add_parser("agents", parents=[flags], help="every agent and its state")
    agents.add_argument("-o", "--output", choices=commands.OUTPUTS, help="print the objects")

    for verb in VERBS:
        verb_parser = sub.add_parser(verb, parents=[flags], help=VERB_HELP[verb])
        verb_parser.add_argument("workflow")

    for decision in deciding.DECISIONS:
        decide = sub.add_parser(
            decision,
            parents=[flags],
            help=f"{decision} a step waiting for approval (an Approval, as yourself)",
        )
        decide.add_argument("workflow")
        decide.add_argument("step")
        decide.add_argument("--reason", default="", help="why, for the record")

    graph = sub.add_parser("graph", parents=[flags], help="the step DAG as text")
    graph.add_argument("workflow")
    graph.add_argument("--format", choices=graphs.FORMATS, default="mermaid")

    imp = sub.add_parser(
        "import",
        parents=[flags],
        help="convert an earlier Ops-Core definition into manifests (YAML on stdout)",
        description=(
            "Convert a workflow definition of the earlier Ops-Core (JSON or YAML) into a "
            "WorkflowTemplate manifest (and, with --workflow, a Workflow running it): "
            "-n sets metadata.namespace; pipe into `kubectl apply --server-side -f -`. "
            "Needs no cluster."
        ),
    )
    imp.add_argument("file", metavar="FILE", help="the legacy definition; - reads stdin")
    imp.add_argument("--workflow", metavar="NAME", help="also emit a Workflow running it")
    imp.add_argument(
        "--input",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="inputs",
        help="a spec.inputs entry of the Workflow; repeat for more",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    namespace = getattr(args, "namespace", None)
    if args.command == "import":
        return import_legacy(
            args.file, namespace=namespace or None, workflow=args.workflow, inputs=args.inputs
        )
    cluster = Cluster.connect(
        Target(getattr(args, "kubeconfig", None), getattr(args, "context", None), namespace)
    )
    if args.command == "get":
        return commands.get(cluster, args.workflow, args.output)
    if args.command == "watch":
        return watching.watch(cluster, args.workflow, interval=max(args.interval, 0.2))
    if args.command == "agents":
        return commands.agents(cluster, args.output)
    if args.command in deciding.DECISIONS:
        return deciding.decide(
            cluster, args.workflow, args.step, verb=args.command, reason=args.reason
        )
    if args.command == "graph":
        return commands.graph(cluster, args.workflow, args.format)
    return commands.verb(cluster, args.workflow, args.command)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except CliError as exc:
        sys.stdout.flush()
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `| head`: the reader left, nothing more to say
        return 0


if __name__ == "__main__":
    sys.exit(main())
