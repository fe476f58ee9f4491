"""A fake of the AgentKit client's exchange: canned answers and delivery failures in
order, and what was sent (for unit tests of `AgentKitClient` and what wraps it)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from opscore_kube.exchange import Answer, DeliveryError


def answer(status: int, body: object = None, *, text: str | None = None) -> Answer:
    content = (text if text is not None else json.dumps(body if body is not None else {})).encode()
    return Answer(status, "", {}, content)


@dataclass
class Sent:
    method: str
    path: str
    body: bytes | None


@dataclass
class FakeExchange:
    """Answers each request with the next of `answers` (the last one repeats)."""

    answers: tuple[Answer | DeliveryError, ...]
    seen: list[Sent] = field(default_factory=list)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        read_timeout: float | None = None,
    ) -> Answer:
        self.seen.append(Sent(method, path, body))
        reply = self.answers[min(len(self.seen), len(self.answers)) - 1]
        if isinstance(reply, DeliveryError):
            raise reply
        return reply

    async def aclose(self) -> None:
        pass

    def task_ids(self) -> set[str]:
        return {json.loads(sent.body or b"{}")["opscore_task_id"] for sent in self.seen}
