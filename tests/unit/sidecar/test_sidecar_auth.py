"""API keys: the single env key, the keys file with scopes, and live rotation."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sidecar_fakes import AGENT_ID, API_KEY, FakeKube, auth, client_for, report_body, state_url

from opscore_sidecar.auth import KeyStore, parse_keys_file

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "api-keys"
    path.write_text("# rotated monthly\nfile-key-1\n\nscoped-key agent-a, agent-b\n")
    return path


@pytest.fixture
async def client(keys_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(FakeKube(), api_keys_file=keys_file) as (client, _):
        yield client


def rewrite(path: Path, text: str) -> None:
    """Replace the file the way a Secret update does, with a new mtime for sure."""
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def remove(path: Path) -> None:
    path.unlink()


def test_keys_file_skips_comments_and_blank_lines() -> None:
    keys = parse_keys_file("# c\n\n  key-1  \n   # indented comment\n")
    assert len(keys) == 1
    assert keys[0].scope is None


def test_keys_file_scope_lists_agent_ids() -> None:
    [key] = parse_keys_file("key-1 agent-a, agent-b ,agent-c\n")
    assert key.scope == frozenset({"agent-a", "agent-b", "agent-c"})


def test_keys_file_empty_scope_allows_no_agent() -> None:
    [key] = parse_keys_file("key-1 ,\n")
    assert key.scope == frozenset()


def test_unknown_key_authenticates_as_nobody() -> None:
    assert KeyStore(single_key="right").authenticate("wrong") is None


def test_key_listed_scoped_and_unscoped_acts_for_everyone(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("k agent-a\n")
    principal = KeyStore(single_key="k", keys_file=path).authenticate("k")
    assert principal is not None
    assert principal.may_act_for("anyone")


def test_missing_keys_file_loads_no_keys(tmp_path: Path) -> None:
    assert not KeyStore(keys_file=tmp_path / "absent").loaded


async def test_env_key_is_accepted_next_to_the_file(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url(), json=report_body(), headers=auth(API_KEY))
    assert response.status_code == 202


async def test_file_key_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url(), json=report_body(), headers=auth("file-key-1"))
    assert response.status_code == 202


async def test_comment_line_is_not_a_key(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url(), json=report_body(), headers=auth("# rotated monthly"))
    assert response.status_code == 401


async def test_scoped_key_for_another_agent_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url(), json=report_body(), headers=auth("scoped-key"))
    assert response.status_code == 403
    assert AGENT_ID in response.json()["detail"]


async def test_scoped_key_for_its_agent_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        state_url("agent-a"), json=report_body("agent-a"), headers=auth("scoped-key")
    )
    assert response.status_code == 202


async def test_scoped_key_cannot_read_another_agents_state(client: httpx.AsyncClient) -> None:
    response = await client.get(state_url(), headers=auth("scoped-key"))
    assert response.status_code == 403


async def test_key_file_rotation_is_picked_up_live(
    client: httpx.AsyncClient, keys_file: Path
) -> None:
    before = await client.post(state_url(), json=report_body(), headers=auth("file-key-1"))
    rewrite(keys_file, "file-key-2\n")
    old = await client.post(state_url(), json=report_body(), headers=auth("file-key-1"))
    new = await client.post(state_url(), json=report_body(), headers=auth("file-key-2"))
    assert (before.status_code, old.status_code, new.status_code) == (202, 401, 202)


async def test_deleting_the_keys_file_revokes_its_keys(
    client: httpx.AsyncClient, keys_file: Path
) -> None:
    remove(keys_file)
    response = await client.post(state_url(), json=report_body(), headers=auth("file-key-1"))
    assert response.status_code == 401


async def test_keys_are_never_logged(keys_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with client_for(FakeKube(), api_keys_file=keys_file) as (client, _):
        rewrite(keys_file, "file-key-3 agent-a\n")
        await client.post(state_url(), json=report_body(), headers=auth("file-key-3"))
        await client.post(state_url(), json=report_body(), headers=auth("wrong-key"))
        await client.post(state_url(), json=report_body(), headers=auth(API_KEY))
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    for secret in ("file-key-1", "file-key-3", "scoped-key", "wrong-key", API_KEY):
        assert secret not in logged
