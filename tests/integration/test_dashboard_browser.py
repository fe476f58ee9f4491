"""The dashboard in a real headless Chromium (Debian's `chromium`), against the real stack.

The browser logs in with the read-only dashboard key in the URL, opens the example run
before it exists, and then watches it: the DAG appears with its three steps, and each
step turns green (class `phase-Succeeded`, the Succeeded fill) when its agent finishes,
while later steps are still waiting. Agents take ~2 s per task, so each change is seen
live, as a person would see it.

Chromium is required, not optional: without it this test fails and says how to install
it (`.ci/run` installs it on CI machines).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from opscore_testbed import kube_views as kv
from opscore_testbed.chromium import INSTALL_HINT, Chromium, find_chromium
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import REPO, OpsCoreStack, StackOptions

HELLO = REPO / "examples" / "hello-workflow.yaml"
DASHBOARD_KEY = "opscore-test-dashboard-key"
SUCCEEDED_FILL = "rgb(211, 249, 216)"  # --succeeded-fill in dashboard.css


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(
        agents=("researcher:research,analysis", "writer:writing,analysis", "reviewer:review"),
        task_seconds=2.0,
        sidecar_env={"OPSCORE_DASHBOARD_KEY": DASHBOARD_KEY},
        # The events table shows each dispatch only when the operator posts them.
        operator_env={"OPSCORE_PROGRESS_EVENTS": "true"},
    )


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    if find_chromium() is None:
        pytest.fail(
            f"the dashboard test needs Debian's chromium, which is not installed; {INSTALL_HINT}"
        )
    with Chromium(width=1440, height=900, log_dir=tmp_path) as chromium:
        yield chromium


def steps(browser: Chromium) -> dict[str, dict[str, str]]:
    """Each DAG node's phase class and its box's computed fill."""
    result: dict[str, dict[str, str]] = browser.evaluate(
        """Object.fromEntries([...document.querySelectorAll('#dag g.step')].map(g => [
            g.dataset.step,
            {phase: g.dataset.phase, cls: g.getAttribute('class'),
             fill: getComputedStyle(g.querySelector('rect')).fill}]))"""
    )
    return result or {}


def test_the_dashboard_draws_the_running_dag_and_a_step_turns_green(
    stack: OpsCoreStack, browser: Chromium
) -> None:
    def agents_ready() -> bool:
        agents = [
            kv.agent_named(stack.cp, stack.namespace, n)
            for n in ("researcher", "writer", "reviewer")
        ]
        return all(a is not None and kv.is_ready(a) for a in agents)

    wait_until(agents_ready, timeout=60, what="the three agents Ready")
    browser.navigate(f"{stack.sidecar_url}/dashboard?key={DASHBOARD_KEY}#hello")
    browser.wait_for(
        "document.querySelector('#live.ok') !== null", timeout=30, what="the first poll"
    )
    assert browser.evaluate("location.search") == "", "the key left the address bar"
    assert browser.evaluate("document.cookie") == "", "the key cookie is HttpOnly"
    agent_rows = browser.evaluate(
        "[...document.querySelectorAll('#agents tbody tr')].map(r => r.dataset.agent)"
    )
    assert sorted(agent_rows) == ["researcher", "reviewer", "writer"]

    stack.cp.kubectl("apply", "-n", stack.namespace, "-f", str(HELLO))
    browser.wait_for(
        "document.querySelectorAll('#dag g.step').length === 3",
        timeout=30,
        what="the DAG of the running workflow",
    )
    first = steps(browser)
    assert list(first) == ["research", "draft", "review"]
    assert first["review"]["phase"] != "Succeeded", "the run is seen while it runs"
    assert browser.evaluate("document.querySelector('#runs li[data-workflow=hello]') !== null")

    # research finishes after ~2 s: its node turns green while review still waits.
    browser.wait_for(
        "document.querySelector('#dag g.step[data-step=research]').dataset.phase === 'Succeeded'",
        timeout=30,
        what="step research to turn Succeeded",
    )
    seen = steps(browser)
    assert "phase-Succeeded" in seen["research"]["cls"].split()
    assert seen["research"]["fill"] == SUCCEEDED_FILL
    assert seen["review"]["phase"] != "Succeeded"
    assert seen["review"]["fill"] != SUCCEEDED_FILL

    browser.wait_for(
        "document.querySelector('#run-phase').textContent === 'Succeeded'",
        timeout=60,
        what="the run to be shown Succeeded",
    )
    final = steps(browser)
    assert {name: s["fill"] for name, s in final.items()} == dict.fromkeys(final, SUCCEEDED_FILL)
    timings = browser.evaluate(
        "[...document.querySelectorAll('#steps tbody tr')].map(r => r.cells[5].textContent)"
    )
    assert len(timings) == 3
    assert all(re.fullmatch(r"\d+(\.\d)?s", t) for t in timings), timings
    events = browser.evaluate(
        "[...document.querySelectorAll('#events tbody tr')].map(r => r.cells[2].textContent)"
    )
    assert "StepDispatched" in events
