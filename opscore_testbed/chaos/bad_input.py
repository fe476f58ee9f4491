"""F7: bad and hostile input through every door, while a good workload runs alongside.

Each corpus case (`corpus/*.yaml`) gets the answer the docs promise: the API server's 422
(or 413) for what the CRD schema can tell, `Failed`/`InvalidSpec` with the problem named
(and nothing dispatched) for what only the operator can tell, the sidecar's documented
4xx with a `detail` for bad requests, 401 for every signature that is not AgentKit's, and
for webhook-trigger calls the answers of docs/triggers.md. The
operator and the sidecar log no traceback, keep running, and the good workload finishes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from opscore_kube import AGENTS, WORKFLOW_TEMPLATES, WORKFLOWS, KubeApiError, Resource
from opscore_testbed.chaos import bad_triggers
from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.corpus import dumps, expand, load
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.rawhttp import declared_post
from opscore_testbed.chaos.report import promise
from opscore_testbed.chaos.scenario import Fault, Outcome, Row, make_row
from opscore_testbed.chaos.tally import tally
from opscore_testbed.chaos.workload import mixed_batch

KINDS: dict[str, Resource] = {
    "Workflow": WORKFLOWS,
    "WorkflowTemplate": WORKFLOW_TEMPLATES,
    "Agent": AGENTS,
}
#: How long an accepted manifest may take to reach its expected phase.
SETTLE_S = 60.0
NOTIFY = "/v1/opscore/internal/agent/notify"
#: Bodies bigger than this are announced and only started (rawhttp.declared_post).
RAW_ABOVE_BYTES = 512 * 1024
Case = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    door: str
    case: str
    ok: bool
    got: str


# -- manifests: the API server, then the operator ---------------------------------------------


def manifest(case: Case) -> dict[str, Any]:
    kind = case.get("kind", "Workflow")
    return {
        "apiVersion": KINDS[kind].api_version,
        "kind": kind,
        "metadata": case.get("metadata") or {"name": f"bad-{case['id']}"[:63]},
        "spec": expand(case.get("spec", {})),
    }


async def _create(ch: Chaos, run: Run, body: dict[str, Any]) -> KubeApiError | None:
    try:
        await ch.kube.create(KINDS[body["kind"]], run.namespace, body)
    except KubeApiError as exc:
        return exc
    return None


async def check_manifest(ch: Chaos, run: Run, case: Case) -> Verdict:
    expect = case["expect"]
    for before in case.get("before", []):
        refused = await _create(ch, run, manifest({"id": case["id"], **before}))
        if refused is not None:
            return Verdict("manifest", case["id"], False, f"setup refused: {refused}")
    body = manifest(case)
    refused = await _create(ch, run, body)
    if "api" in expect:
        if refused is None:
            return Verdict("manifest", case["id"], False, "accepted by the API server")
        ok = refused.status == expect["api"] and expect.get("says", "") in refused.message
        return Verdict("manifest", case["id"], ok, f"{refused.status}: {refused.message[:300]}")
    if refused is not None:
        return Verdict("manifest", case["id"], False, f"refused: {refused}")
    return await _settled(ch, run, body["metadata"]["name"], expect)


async def _settled(ch: Chaos, run: Run, name: str, expect: dict[str, Any]) -> Verdict:
    """Wait for the workflow to reach the expected phase and reason; check its message
    and, for InvalidSpec, that nothing was dispatched."""
    deadline = time.monotonic() + SETTLE_S
    got = "never seen"
    while time.monotonic() < deadline:
        status = (await ch.kube.get(WORKFLOWS, run.namespace, name)).get("status") or {}
        reason = next(
            (c.get("reason") for c in status.get("conditions") or [] if c["type"] == "Succeeded"),
            None,
        )
        got = f"{status.get('phase')}/{reason}: {status.get('message')}"
        if (status.get("phase"), reason) == (expect["phase"], expect["reason"]):
            ok = expect.get("says", "") in (status.get("message") or "")
            if ok:
                ok, got = await _delivered(run, name, expect, got)
            return Verdict("manifest", name, ok, got)
        if status.get("phase") in ("Succeeded", "Failed", "Cancelled"):
            break
        await asyncio.sleep(0.25)
    return Verdict("manifest", name, False, got)


async def _delivered(run: Run, name: str, expect: dict[str, Any], got: str) -> tuple[bool, str]:
    """`dispatched`: exactly that many tasks went out for it (0: rejected before any
    dispatch). `delivered`: an agent received that text verbatim."""
    tasks = (await run.sim.tasks())["tasks"]
    sent = [t for t in tasks if t["payload"].get("workflow") == f"{run.namespace}/{name}"]
    if "dispatched" in expect and len(sent) != expect["dispatched"]:
        return False, f"{got}; but {len(sent)} task(s) were dispatched"
    if "delivered" in expect:
        texts = [json.dumps(t["payload"], ensure_ascii=False) for t in sent]
        wanted = json.dumps(expect["delivered"], ensure_ascii=False)[1:-1]
        if not any(wanted in text for text in texts):
            return False, f"{got}; the agent never received {expect['delivered']!r}"
    return True, got


# -- the sidecar's agent API ---------------------------------------------------------------------


def _auth(case: Case, key: str) -> dict[str, str]:
    mode = case.get("auth", "key")
    if mode == "none":
        return {}
    if mode == "empty":
        return {"Authorization": "Bearer"}
    return {"Authorization": f"Bearer {'not-' + key if mode == 'wrong' else key}"}


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 1024):
        yield b" " * 1024


def _request_body(case: Case, agent: str) -> bytes | None:
    if "raw" in case:
        return str(expand(case["raw"])).encode()
    if "json" in case:
        return dumps(expand(case["json"])).encode()
    report: dict[str, Any] = {
        "agentId": agent,
        "timestamp": datetime.now(UTC).isoformat(),
        "state": "idle",
        "details": {},
    }
    report.update(expand(case.get("report", {})))
    for key in case.get("drop", []):
        report.pop(key, None)
    return dumps(report).encode()


def judge_answer(case: Case, status: int, text: str) -> tuple[bool, str]:
    """Whether the status code, text and (for 422) the named field are as documented."""
    expect = case["expect"]
    got = f"{status}: {text[:300]}"
    if status != expect["status"] or expect.get("says", "") not in text:
        return False, got
    if status >= 400:
        try:
            detail = json.loads(text).get("detail")
        except (ValueError, AttributeError):
            return False, f"{got} (no JSON detail)"
        if not detail:
            return False, f"{got} (no detail)"
        if "names" in expect:
            locs = [[str(p) for p in e.get("loc", [])] for e in detail if isinstance(e, dict)]
            if not any(expect["names"] in loc for loc in locs):
                return False, f"{got} (no error names {expect['names']})"
    return True, got


async def send(
    base_url: str, method: str, path: str, headers: dict[str, str], content: Any
) -> tuple[int, str]:
    """One request on a fresh connection (a refusal that closes it cannot spill into the
    next case); bodies of megabytes are announced and only started (see rawhttp)."""
    if isinstance(content, bytes) and len(content) > RAW_ABOVE_BYTES:
        return await declared_post(base_url, path, headers, content)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, trust_env=False) as client:
        response = await client.request(method, path, content=content, headers=headers)
        return response.status_code, response.text


async def check_request(run: Run, case: Case, known: str) -> Verdict:
    agent = str(expand(case.get("agent", f"chaos-{case['id']}")))
    path = case.get("path", "/v1/opscore/agent/{agent}/state")
    path = path.replace("{agent}", quote(agent, safe="")).replace("{known}", quote(known, safe=""))
    headers = {**_auth(case, run.stack.options.api_key), "Content-Type": "application/json"}
    method = case.get("method", "POST")
    content: Any = None
    if method != "GET":
        content = _chunks(case["chunked"]) if "chunked" in case else _request_body(case, agent)
    ok, got = judge_answer(case, *await send(run.stack.sidecar_url, method, path, headers, content))
    return Verdict("sidecar", case["id"], ok, got)


# -- AgentKit's registration webhook ------------------------------------------------------------


def _sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _webhook_body(case: Case) -> bytes:
    if "raw" in case:
        return str(expand(case["raw"])).encode()
    if "json" in case:
        return json.dumps(expand(case["json"])).encode()
    details = {
        "agentId": f"chaos-wh-{case['id']}"[:63],
        "agentName": f"wh-{case['id']}",
        "version": "1.0.0",
        "capabilities": [],
        "contactEndpoint": "http://127.0.0.1:9/never",
        "metadata": {},
    }
    details.update(expand(case.get("details", {})))
    return json.dumps({"event_type": "REGISTER", "agent_details": details}).encode()


def webhook_headers(case: Case, secret: str, body: bytes) -> dict[str, str]:
    sign = case.get("sign", {})
    headers = {"Content-Type": "application/json"}
    if sign == "none":
        return headers
    timestamp = str(sign.get("timestamp_text", int(time.time()) + int(sign.get("timestamp", 0))))
    signed = b'{"captured": "another registration"}' if sign.get("other_body") else body
    signature = sign.get("signature") or _sign(secret, timestamp, signed)
    if "header_shift" in sign:
        timestamp = str(int(timestamp) + int(sign["header_shift"]))
    return {**headers, "X-AgentKit-Timestamp": timestamp, "X-AgentKit-Signature": signature}


async def check_webhook(run: Run, case: Case) -> Verdict:
    body = _webhook_body(case)
    headers = webhook_headers(case, run.stack.options.webhook_secret, body)
    answer = (0, "")
    for _ in range(int(case.get("times", 1))):
        answer = await send(run.stack.sidecar_url, "POST", NOTIFY, headers, body)
    ok, got = judge_answer(case, *answer)
    return Verdict("webhook", case["id"], ok, got)


# -- webhook triggers (the cases' setup and encoding are in bad_triggers) -------------------


async def check_trigger(run: Run, case: Case) -> Verdict:
    body = bad_triggers.body_of(case)
    headers = bad_triggers.headers_of(case, body)
    path = bad_triggers.path_of(case, run.namespace)
    answer = (0, "")
    for _ in range(int(case.get("times", 1))):
        answer = await send(run.stack.sidecar_url, "POST", path, headers, body)
    ok, got = judge_answer(case, *answer)
    return Verdict("trigger", case["id"], ok, got)


# -- the scenario ------------------------------------------------------------------------------


def tracebacks(run: Run) -> dict[str, int]:
    counts = {}
    for process in (run.stack.operator, run.stack.sidecar):
        if process is not None:
            text = process.log_path.read_text(errors="replace")
            counts[process.name] = text.count("Traceback")
    return counts


async def _guarded(door: str, case: Case, check: Awaitable[Verdict]) -> Verdict:
    """A case the harness itself cannot send is a mismatch, not the end of the corpus."""
    try:
        return await check
    except (httpx.HTTPError, KubeApiError, ValueError, OSError) as exc:
        return Verdict(door, case["id"], False, f"harness error: {type(exc).__name__}: {exc}")


async def run_corpus(ch: Chaos, run: Run) -> list[Verdict]:
    known = next(a["agentId"] for a in await run.sim.agents() if a["name"] == "w00")
    manifests = load("manifests")
    verdicts = list(
        await asyncio.gather(
            *(_guarded("manifest", c, check_manifest(ch, run, c)) for c in manifests)
        )
    )
    for case in load("reports"):
        verdicts.append(await _guarded("sidecar", case, check_request(run, case, known)))
    for case in load("webhooks"):
        verdicts.append(await _guarded("webhook", case, check_webhook(run, case)))
    await bad_triggers.install(ch.kube, run.namespace)
    for case in load("triggers"):
        verdicts.append(await _guarded("trigger", case, check_trigger(run, case)))
    return verdicts


async def f7_bad_input(ch: Chaos) -> Row:
    fault = Fault()
    good = mixed_batch("f7good", ch.sizes.alongside, ch.sizes.policy())
    async with ch.running("f7") as run, Batch(ch.kube, run.namespace) as batch:
        assert run.stack.operator is not None
        assert run.stack.sidecar is not None
        pids = (run.stack.operator.pid, run.stack.sidecar.pid)
        submitting = asyncio.create_task(batch.submit(good, ch.sizes.rate))
        fault.begin()
        try:
            verdicts = await run_corpus(ch, run)
        finally:
            await submitting
        fault.end()
        await batch.wait(ch.sizes.deadline_s)
        snapshot = await run.sim.tasks()
        counted = tally(batch.planned, batch.watcher.final, snapshot)
        logged = tracebacks(run)
        alive = run.stack.operator.is_running() and run.stack.sidecar.is_running()
        same = pids == (run.stack.operator.pid, run.stack.sidecar.pid)
    wrong = [v for v in verdicts if not v.ok]
    by_door: dict[str, int] = {}
    for verdict in verdicts:
        by_door[verdict.door] = by_door.get(verdict.door, 0) + 1
    fault.figures = {
        "recover_s": None,
        "inputs": len(verdicts),
        "inputs_by_door": by_door,
        "answered_as_documented": len(verdicts) - len(wrong),
        "mismatched": len(wrong),
        "tracebacks": sum(logged.values()),
        "processes_restarted": not (alive and same),
    }
    outcome = Outcome(counted, fault, batch, snapshot.get("tasks", []))
    row = make_row(
        "F7",
        f"{len(verdicts)} bad inputs next to {len(good)} good workflows",
        outcome,
        promises=(promise("processes_restarted", False),),
    )
    if wrong:
        row["evidence"]["mismatched"] = [f"{v.door} {v.case}: got {v.got}" for v in wrong]
    row["fault_s"] = row["drain_s"] = None  # the good workload runs beside, not after
    row["verdicts"] = [v.__dict__ for v in verdicts]
    return row
