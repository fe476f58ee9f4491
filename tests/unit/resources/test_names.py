"""AgentKit ids map to valid, stable, collision-free Kubernetes names and label keys."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from opscore_logic.names import (
    AGENT_KEY_LABEL,
    agent_key,
    agent_resource_name,
    is_dns1123_label,
)

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
IDS = st.text(min_size=1, max_size=300)


def test_lowercase_uuid4_is_its_own_name() -> None:
    agent_id = str(uuid.uuid4())
    assert agent_resource_name(agent_id) == agent_id


def test_valid_label_is_its_own_name() -> None:
    assert agent_resource_name("summariser-1") == "summariser-1"


def test_uppercase_id_is_sanitised_with_hash_suffix() -> None:
    name = agent_resource_name("My_Agent")
    assert re.fullmatch(r"my-agent-[0-9a-f]{8}", name)


def test_id_with_nothing_valid_gets_agent_prefix() -> None:
    assert re.fullmatch(r"agent-[0-9a-f]{8}", agent_resource_name("!!!"))


def test_long_id_is_truncated_to_63_chars() -> None:
    name = agent_resource_name("a" * 200)
    assert len(name) == 63
    assert is_dns1123_label(name)


def test_agent_key_label_is_in_the_opscore_group() -> None:
    assert AGENT_KEY_LABEL == "opscore.opspawn.io/agent-key"


@given(IDS)
def test_name_is_always_a_dns1123_label(agent_id: str) -> None:
    name = agent_resource_name(agent_id)
    assert len(name) <= 63
    assert DNS1123_LABEL.match(name)


@given(IDS)
def test_name_is_deterministic(agent_id: str) -> None:
    assert agent_resource_name(agent_id) == agent_resource_name(agent_id)


@given(IDS, IDS)
def test_distinct_sanitised_ids_get_distinct_names(first: str, second: str) -> None:
    if first != second and not is_dns1123_label(first) and not is_dns1123_label(second):
        assert agent_resource_name(first) != agent_resource_name(second)


@given(st.text(alphabet="aA_-.", min_size=1, max_size=12))
def test_ids_differing_only_in_folded_characters_get_distinct_names(agent_id: str) -> None:
    variant = agent_id.swapcase()
    if variant != agent_id:
        assert agent_resource_name(agent_id) != agent_resource_name(variant)


@given(IDS)
def test_agent_key_is_a_valid_label_value(agent_id: str) -> None:
    key = agent_key(agent_id)
    assert len(key) == 32
    assert LABEL_VALUE.match(key)


@given(IDS, IDS)
def test_distinct_ids_get_distinct_agent_keys(first: str, second: str) -> None:
    if first != second:
        assert agent_key(first) != agent_key(second)
