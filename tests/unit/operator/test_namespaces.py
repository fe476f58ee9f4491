"""Which namespaces the operator lists and watches: those its kopf command line names."""

from __future__ import annotations

import pytest

from opscore_operator.namespaces import watched_namespaces


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--namespace", "team-a"], ["team-a"]),
        (["--namespace=team-a", "-n", "team-b", "-nteam-c"], ["team-a", "team-b", "team-c"]),
        (["--standalone", "-n", "team-a", "-n", "team-a"], ["team-a"]),
        (["-A"], [None]),
        (["--all-namespaces"], [None]),
        (["-n", "team-*", "-n", "plain"], ["plain"]),  # kopf serves no patterns unscanned
    ],
)
def test_the_namespaces_kopf_serves_come_from_its_command_line(
    argv: list[str], expected: list[str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOPF_RUN_NAMESPACE", raising=False)
    assert watched_namespaces(argv) == expected
