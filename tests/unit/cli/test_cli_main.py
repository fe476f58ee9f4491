"""`kubectl opscore`'s command line: flags, errors worded like kubectl's, exit codes,
and `watch` against a scripted cluster (`import`: test_cli_import.py)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from opscore_cli import __main__ as cli
from opscore_cli.cluster import CliError, Cluster, Target, server_error
from opscore_cli.style import style_for
from opscore_cli.watching import watch


def test_connection_flags_work_before_and_after_the_subcommand() -> None:
    parser = cli.build_parser()
    before = parser.parse_args(["-n", "ops", "--context", "kind", "get", "hello"])
    after = parser.parse_args(["get", "hello", "-n", "ops", "--kubeconfig", "/k"])
    assert (before.namespace, before.context, before.workflow) == ("ops", "kind", "hello")
    assert (after.namespace, after.kubeconfig) == ("ops", "/k")
    assert not hasattr(parser.parse_args(["agents"]), "namespace")


def test_usage_errors_read_like_kubectl_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["get"])
    assert exc.value.code == 1
    assert capsys.readouterr().err.startswith("error: the following arguments are required")


def test_server_errors_are_worded_like_kubectl() -> None:
    body = (
        '{"kind":"Status","status":"Failure","reason":"NotFound",'
        '"message":"workflows.opscore.opspawn.io \\"x\\" not found","code":404}'
    )
    assert server_error(404, "Not Found", body) == (
        'Error from server (NotFound): workflows.opscore.opspawn.io "x" not found'
    )
    assert server_error(502, "Bad Gateway", b"upstream") == (
        "Error from server (Bad Gateway): 502 upstream"
    )


class FakeCluster(Cluster):
    """Answers `workflow()` from a script of objects, then keeps the last one.

    A subclass so it stands where a Cluster is expected; it never connects (no
    `super().__init__`), so a method it does not override fails loudly.
    """

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.namespace = "ns"
        self._objects: Iterator[dict[str, Any]] = iter(objects)
        self._last: dict[str, Any] = {}
        self.patches: list[dict[str, Any]] = []

    def workflow(self, name: str) -> dict[str, Any]:
        self._last = next(self._objects, self._last)
        if not self._last:
            raise CliError(
                f'Error from server (NotFound): workflows.opscore.opspawn.io "{name}" not found'
            )
        return self._last

    def template(self, name: str) -> None:
        return None

    def agents(self) -> list[dict[str, Any]]:
        return []

    def patch_workflow(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        return self._last


def run(phase: str, step_phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "hello", "namespace": "ns", "resourceVersion": "1"},
        "spec": {"steps": [{"name": "research", "agent": "researcher"}]},
        "status": {
            "phase": phase,
            "steps": [
                {"name": "research", "phase": step_phase, "agent": "researcher", "attempt": 1}
            ],
            **status,
        },
    }


def test_watch_prints_a_frame_per_change_when_piped_and_exits_0_on_success() -> None:
    cluster = FakeCluster(
        run("Running", "Running"),
        run("Running", "Running"),  # nothing changed: no new frame
        run("Succeeded", "Succeeded", progress="1/1"),
    )
    out = io.StringIO()
    code = watch(cluster, "hello", interval=0, out=out, sleep=lambda _: None)
    frames = out.getvalue().split("\n\nName:")
    assert code == 0
    assert len(frames) == 2
    assert "Running" in frames[0]
    assert "researcher" in frames[0]
    assert "Phase:     Succeeded" in frames[1]
    assert "\x1b[" not in out.getvalue()


def test_watch_follows_a_requested_retry_instead_of_the_failure_it_replaces() -> None:
    pending = run("Failed", "Failed")
    pending["spec"]["retryGeneration"] = 1
    cluster = FakeCluster(pending, run("Succeeded", "Succeeded", retryGeneration=1))
    assert watch(cluster, "hello", interval=0, out=io.StringIO(), sleep=lambda _: None) == 0


@pytest.mark.parametrize("phase", ["Failed", "Cancelled"])
def test_watch_exits_1_when_the_run_did_not_succeed(phase: str) -> None:
    cluster = FakeCluster(run(phase, "Failed"))
    code = watch(cluster, "hello", interval=0, out=io.StringIO(), sleep=lambda _: None)
    assert code == 1


def test_a_verb_that_does_not_apply_is_an_error_and_patches_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = FakeCluster(run("Succeeded", "Succeeded"))
    monkeypatch.setattr(Cluster, "connect", classmethod(lambda cls, target: cluster))
    assert cli.main(["cancel", "hello"]) == 1
    assert capsys.readouterr().err == (
        'error: workflow "hello" already finished (Succeeded); nothing to cancel\n'
    )
    assert cluster.patches == []


def test_a_verb_that_applies_patches_the_spec_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = FakeCluster(run("Running", "Running"))
    seen: list[Target] = []

    def connect(cls: Any, target: Target) -> FakeCluster:
        seen.append(target)
        return cluster

    monkeypatch.setattr(Cluster, "connect", classmethod(connect))
    assert cli.main(["-n", "ops", "suspend", "hello"]) == 0
    assert seen == [Target(None, None, "ops")]
    assert cluster.patches == [{"spec": {"suspend": True}}]
    assert capsys.readouterr().out == "workflow.opscore.opspawn.io/hello suspended\n"


def test_not_found_is_kubectls_message_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Cluster, "connect", classmethod(lambda cls, target: FakeCluster()))
    assert cli.main(["get", "x"]) == 1
    assert capsys.readouterr().err == (
        'Error from server (NotFound): workflows.opscore.opspawn.io "x" not found\n'
    )


class Tty(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert style_for(Tty(), {}).color
    assert not style_for(Tty(), {"NO_COLOR": "1"}).color
    assert style_for(Tty(), {"NO_COLOR": ""}).color  # no-color.org: empty means unset
    assert not style_for(io.StringIO(), {}).color
