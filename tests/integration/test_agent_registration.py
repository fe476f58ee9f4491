"""Registration three ways, one Agent per agent id: AgentKit's webhook, the agent's first
report, and an Agent a user declares with kubectl, in every order. The one Agent is named
as its user declared it, else after its AgentKit name, else (it only ever reported) after
its id.

The sidecar, the operator and the API server are real; the webhooks and reports are sent by
the test exactly as AgentKit and the SDK send them, so the order is the test's to choose.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from functools import partial

import httpx
import pytest
from agent_support import (
    agents,
    declare,
    holders,
    ready,
    registration_body,
    report,
    wait_for,
    webhook,
)

from opscore_logic.names import agent_names_for, agent_resource_name
from opscore_logic.registration import CREATED_BY_ANNOTATION, agent_id_of, created_by
from opscore_testbed.agentkit_sim_state import sign_webhook
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

STEPS = ("webhook", "report", "declare")


@pytest.fixture
def stack_options() -> StackOptions:
    # No simulated agents: the test is AgentKit. Polling is on against an AgentKit without
    # `GET /v1/agents` (like the real one), which must stay quiet.
    return StackOptions(agents=(), operator_env={"OPSCORE_AGENTKIT_POLL_SECONDS": "0.5"})


def _ids(count: int) -> list[str]:
    """Agent ids: uuid4 like AgentKit's, and ids that are not valid Kubernetes names."""
    out = []
    for index in range(count):
        if index == 3:  # characters a field selector must escape
            out.append(f"Agent={index},{uuid.uuid4().hex[:6].upper()}")
        elif index % 2:
            out.append(f"Agent_{index}.{uuid.uuid4().hex[:6].upper()}")
        else:
            out.append(str(uuid.uuid4()))
    return out


def test_every_order_of_the_three_registration_paths_converges_to_one_agent(
    stack: OpsCoreStack,
) -> None:
    orders: list[tuple[str, ...]] = [
        *itertools.permutations(STEPS),
        ("webhook", "report"),
        ("report", "webhook"),
    ]
    ids = _ids(len(orders))
    plan = dict(zip(ids, orders, strict=True))
    user_names = {agent_id: f"declared-{n}" for n, agent_id in enumerate(ids)}
    for agent_id, order in plan.items():
        caps = [f"cap-{user_names[agent_id]}"]
        actions: dict[str, Callable[[], object]] = {
            "webhook": partial(_registered, stack, agent_id, caps),
            "report": partial(report, stack, agent_id, "idle"),
            "declare": partial(
                declare, stack, user_names[agent_id], agent_id, heartbeatTimeoutSeconds=120
            ),
        }
        for step in order:  # back to back: no waiting for the operator in between
            actions[step]()

    def converged() -> list[str]:
        problems = []
        everything = agents(stack)
        for agent_id, order in plan.items():
            mine = [a for a in everything if agent_id_of(a) == agent_id]
            if len(mine) != 1:
                problems.append(f"{order}: {len(mine)} Agents hold {agent_id!r}")
                continue
            body = mine[0]
            expected = expected_name(agent_id, order, user_names[agent_id])
            if body["metadata"]["name"] != expected:
                problems.append(f"{order}: named {body['metadata']['name']}, not {expected}")
            if body["spec"].get("capabilities") != [f"cap-{user_names[agent_id]}"]:
                problems.append(f"{order}: capabilities {body['spec'].get('capabilities')}")
            if ready(body) != ("True", "Ready"):
                problems.append(f"{order}: Ready is {ready(body)}")
        return problems

    wait_until_empty(converged, what="one Ready Agent per id, with everything it was told")

    for agent_id, order in plan.items():
        [body] = holders(stack, agent_id)
        assert body["spec"]["agentId"] == agent_id  # verbatim, even when not a valid name
        assert [r["state"] for r in body["status"]["reports"]] == ["idle"]
        if "declare" in order:
            assert created_by(body) is None, order
            assert body["spec"]["heartbeatTimeoutSeconds"] == 120, order  # the user's own
        else:
            assert body["metadata"]["annotations"][CREATED_BY_ANNOTATION], order

    # Later reports land on the one Agent, whichever name it has.
    for agent_id in plan:
        report(stack, agent_id, "active")
    wait_until_empty(
        lambda: [
            agent_id
            for agent_id in plan
            if [r["state"] for r in holders(stack, agent_id)[0]["status"]["reports"]]
            != ["idle", "active"]
        ],
        what="the next report stored on the surviving Agent",
    )
    assert len(agents(stack)) == len(plan)

    # Polling an AgentKit without GET /v1/agents (the real one) stayed quiet: one line.
    assert stack.operator is not None
    log = stack.operator.log_path.read_text()
    assert log.count("has no GET /v1/agents") == 1


def test_a_declared_agent_is_found_even_before_the_operator_labels_it(
    stack: OpsCoreStack,
) -> None:
    assert stack.operator is not None
    stack.operator.stop()  # nobody labels the declared Agent now
    agent_id = str(uuid.uuid4())
    declare(stack, "labelled-later", agent_id)
    report(stack, agent_id, "idle")
    _registered(stack, agent_id, ["late-label"])
    [body] = holders(stack, agent_id)
    assert body["metadata"]["name"] == "labelled-later"
    assert body["spec"]["capabilities"] == ["late-label"]
    assert [r["state"] for r in body["status"]["reports"]] == ["idle"]
    stack.start_operator()
    wait_for(
        lambda: ready(holders(stack, agent_id)[0]) == ("True", "Ready"),
        what="the declared Agent Ready once the operator runs",
    )


def test_a_webhook_with_a_bad_or_stale_signature_changes_nothing(stack: OpsCoreStack) -> None:
    known = str(uuid.uuid4())
    assert _registered(stack, known, ["good"]).status_code == 200

    def settled() -> bool:  # the operator has derived its status: it has nothing to write
        [body] = holders(stack, known)
        status = body.get("status") or {}
        return bool(status.get("observedGeneration") == body["metadata"]["generation"])

    wait_for(settled, what="the operator's first status of the registered Agent")
    before = holders(stack, known)[0]
    stranger = str(uuid.uuid4())
    forged = registration_body(known, "evil", ["evil"])
    attempts = {
        "wrong secret": webhook(stack, forged, secret="guessed"),
        "garbled signature": webhook(stack, forged, signature="0" * 64),
        "stale timestamp": webhook(stack, forged, timestamp=int(time.time()) - 3600),
        "future timestamp": webhook(stack, forged, timestamp=int(time.time()) + 3600),
        "new agent, wrong secret": webhook(
            stack, registration_body(stranger, "new", ["x"]), secret="guessed"
        ),
    }
    # A body changed after signing (the signature covers the raw bytes).
    stamp = int(time.time())
    signed = registration_body(known, "good", ["good"])
    signature = sign_webhook(secret=stack.options.webhook_secret, timestamp=str(stamp), body=signed)
    attempts["tampered body"] = webhook(stack, forged, timestamp=stamp, signature=signature)
    for what, response in attempts.items():
        assert response.status_code == 401, what
        assert response.headers.get("www-authenticate", "").startswith("HMAC"), what
    after = holders(stack, known)[0]
    assert after["spec"] == before["spec"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert holders(stack, stranger) == []


def expected_name(agent_id: str, order: tuple[str, ...], declared_as: str) -> str:
    """The user's name wins; else the one derived from agentName (the webhook's); else, for
    an agent that only ever reported, the one derived from its id."""
    if "declare" in order:
        return declared_as
    if "webhook" in order:
        return agent_names_for(_agent_name(agent_id), agent_id)[0]
    return agent_resource_name(agent_id)


def _agent_name(agent_id: str) -> str:
    return f"name-{agent_id}"


def _registered(stack: OpsCoreStack, agent_id: str, capabilities: list[str]) -> httpx.Response:
    response = webhook(stack, registration_body(agent_id, _agent_name(agent_id), capabilities))
    assert response.status_code == 200, response.text
    return response


def wait_until_empty(probe: Callable[[], list[str]], *, what: str, timeout: float = 45) -> None:
    """Wait until `probe` reports no problems (failing with the last ones it found)."""
    last: list[list[str]] = [[]]

    def check() -> bool:
        last[0] = probe()
        return not last[0]

    try:
        wait_until(check, timeout=timeout, interval=0.3, what=what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: {last[0]}") from None
