"""AgentKit ids map to valid, stable, collision-free Kubernetes names and label keys."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opscore_logic.crdgen import GROUP
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


def test_agent_key_label_is_a_valid_label_key_under_the_crd_group() -> None:
    prefix, _, name = AGENT_KEY_LABEL.partition("/")
    assert prefix == GROUP
    assert len(name) <= 63
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name)


@given(IDS)
def test_name_is_always_a_dns1123_label(agent_id: str) -> None:
    name = agent_resource_name(agent_id)
    assert len(name) <= 63
    assert DNS1123_LABEL.match(name)


# Agents already stored were created under these names and keys: a change of the mapping
# would make the sidecar create a second Agent for every existing one.
STORED = [
    ("My_Agent", "my-agent-3aa88293", "3aa8829387b9ea7de15cfc148fa526f3"),
    ("!!!", "agent-e84c538e", "e84c538e7fe250730ef62de220c40dfa"),
    ("Summariser.V2", "summariser-v2-7d48e40a", "7d48e40a1a8c2193ae846491f903a069"),
    ("a" * 200, "a" * 54 + "-c2a908d9", "c2a908d98f5df987ade41b5fce213067"),
]


@pytest.mark.parametrize(("agent_id", "name", "key"), STORED)
def test_names_and_keys_are_those_earlier_versions_gave(agent_id: str, name: str, key: str) -> None:
    assert agent_resource_name(agent_id) == name
    assert agent_key(agent_id) == key


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
