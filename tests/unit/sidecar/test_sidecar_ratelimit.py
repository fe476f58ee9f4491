"""Rate limits: token buckets per key and per agent, answered 429 with Retry-After."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sidecar_fakes import (
    AGENT_ID,
    API_KEY,
    FakeKube,
    auth,
    client_for,
    report_body,
    state_url,
)

from opscore_sidecar.quota import retry_after
from opscore_sidecar.ratelimit import Buckets, RateLimits
from opscore_sidecar.settings import SidecarSettings

pytestmark = pytest.mark.timeout(30)

# Rates so slow that nothing refills while a test runs: the outcome is exact.
SLOW = 0.001


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def refusal(answer: tuple[str, float] | None) -> tuple[str, float]:
    """A refusal's bucket and its wait in whole milliseconds (the clock is fake)."""
    assert answer is not None, "the request was admitted"
    bucket, wait = answer
    return bucket, round(wait, 3)


# -- the buckets ----------------------------------------------------------------------------


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    buckets = Buckets(rate=2.0, burst=3)
    for _ in range(3):
        assert buckets.wait("a", 0.0) == 0.0
        buckets.take("a", 0.0)
    assert buckets.wait("a", 0.0) == pytest.approx(0.5)
    assert buckets.wait("b", 0.0) == 0.0, "buckets are independent"


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    buckets = Buckets(rate=2.0, burst=3)
    for _ in range(3):
        buckets.take("a", 0.0)
    assert buckets.wait("a", 0.5) == 0.0
    buckets.take("a", 0.5)
    assert buckets.wait("a", 0.5) == pytest.approx(0.5)
    for _ in range(3):  # an hour later: full again, never more than the burst
        buckets.take("a", 3600.0)
    assert buckets.wait("a", 3600.0) > 0


def test_invalid_bucket_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        Buckets(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        Buckets(rate=1, burst=0)


def test_full_buckets_are_forgotten_when_many_exist() -> None:
    buckets = Buckets(rate=1.0, burst=1)
    for i in range(10_000):
        buckets.take(i, 0.0)
    assert len(buckets) == 10_000
    buckets.take("busy", 100.0)  # 100 s later every old bucket is full: all forgotten
    assert len(buckets) == 1
    assert buckets.wait("busy", 100.0) > 0, "the busy bucket keeps its debt"


def test_a_refused_request_takes_nothing_from_either_bucket() -> None:
    clock = Clock()
    limits = RateLimits(
        per_key=Buckets(rate=1.0, burst=10), per_agent=Buckets(rate=1.0, burst=1), clock=clock
    )
    assert limits.admit(b"k", "a") is None
    assert refusal(limits.admit(b"k", "a")) == ("agent", 1.0)
    for agent in "bcdefghij":  # the refusal cost the key nothing: 9 more fit its burst
        assert limits.admit(b"k", agent) is None
    assert refusal(limits.admit(b"k", "z")) == ("key", 1.0)


def test_limits_with_rate_zero_are_off() -> None:
    limits = RateLimits.configured(key_rate=0, key_burst=1, agent_rate=0, agent_burst=1)
    assert all(limits.admit(b"k", "a") is None for _ in range(1000))


@pytest.mark.parametrize(("seconds", "header"), [(0.001, "1"), (1.0, "1"), (1.2, "2"), (30, "30")])
def test_retry_after_is_whole_seconds_and_never_zero(seconds: float, header: str) -> None:
    assert retry_after(seconds) == header


def test_defaults_leave_room_for_the_heaviest_benchmark() -> None:
    """B4 offers up to 800 reports/s over 100 agents with one key (8/s per agent)."""
    defaults = SidecarSettings(namespace="ns", api_key="k")
    assert defaults.rate_limit_per_key >= 2 * 800
    assert defaults.rate_limit_per_agent >= 5 * 8
    assert defaults.rate_limit_per_agent_burst >= 2 * defaults.rate_limit_per_agent


# -- on the API -----------------------------------------------------------------------------


def _limited(name: str) -> float:
    return REGISTRY.get_sample_value("opscore_sidecar_rate_limited_total", {"limit": name}) or 0


async def test_an_agent_over_its_limit_gets_429_with_retry_after_and_nothing_is_stored() -> None:
    kube = FakeKube()
    before = _limited("agent")
    async with client_for(kube, rate_limit_per_agent=SLOW, rate_limit_per_agent_burst=2) as (
        client,
        _,
    ):
        for second in (1, 2):
            body = report_body(timestamp=f"2026-11-25T08:34:0{second}+00:00")
            resp = await client.post(state_url(), json=body, headers=auth())
            assert resp.status_code == 202
        third = report_body(state="error", timestamp="2026-11-25T08:34:03+00:00")
        resp = await client.post(state_url(), json=third, headers=auth())
        assert resp.status_code == 429
        assert int(resp.headers["Retry-After"]) >= 1
        assert "agent" in resp.json()["detail"]
        other = await client.post(
            state_url("other-agent"), json=report_body("other-agent"), headers=auth()
        )
        assert other.status_code == 202, "another agent has its own bucket"
    [agent] = [a for a in kube.agents() if a["spec"]["agentId"] == AGENT_ID]
    stored = [r["state"] for r in agent["status"]["reports"]]
    assert stored == ["idle", "idle"], "the refused error report was not stored"
    assert _limited("agent") == before + 1


async def test_a_key_over_its_limit_gets_429_for_every_agent(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("busy-key\nquiet-key\n")
    async with client_for(
        FakeKube(), api_keys_file=keys, rate_limit_per_key=SLOW, rate_limit_per_key_burst=3
    ) as (client, _):
        for i in range(3):
            agent = f"agent-{i}"
            resp = await client.post(
                state_url(agent), json=report_body(agent), headers=auth("busy-key")
            )
            assert resp.status_code == 202
        resp = await client.post(
            state_url("agent-9"), json=report_body("agent-9"), headers=auth("busy-key")
        )
        assert resp.status_code == 429
        assert "API key" in resp.json()["detail"]
        assert int(resp.headers["Retry-After"]) >= 1
        quiet = await client.post(
            state_url("agent-9"), json=report_body("agent-9"), headers=auth("quiet-key")
        )
        assert quiet.status_code == 202, "another key has its own bucket"


async def test_refused_credentials_spend_no_tokens(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{API_KEY}\nscoped-key someone-else\n")
    async with client_for(
        FakeKube(),
        api_keys_file=keys,
        rate_limit_per_agent=SLOW,
        rate_limit_per_agent_burst=1,
    ) as (client, _):
        for _ in range(5):
            assert (await client.post(state_url(), json=report_body())).status_code == 401
            forbidden = await client.post(
                state_url(), json=report_body(), headers=auth("scoped-key")
            )
            assert forbidden.status_code == 403
        resp = await client.post(state_url(), json=report_body(), headers=auth())
        assert resp.status_code == 202, "a stranger cannot spend an agent's budget"


async def test_reads_and_workflow_triggers_count_against_the_same_limits() -> None:
    async with client_for(FakeKube(), rate_limit_per_agent=SLOW, rate_limit_per_agent_burst=2) as (
        client,
        _,
    ):
        assert (await client.post(state_url(), json=report_body(), headers=auth())).is_success
        assert (await client.get(state_url(), headers=auth())).status_code == 200
        trigger = await client.post(
            f"/v1/opscore/agent/{AGENT_ID}/workflow",
            json={"workflowDefinitionId": "nothing"},
            headers=auth(),
        )
        assert trigger.status_code == 429
