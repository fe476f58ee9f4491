"""AgentKit names and ids map to valid, stable, collision-free Kubernetes names, and ids to
label keys."""

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
    agent_names_for,
    agent_resource_name,
    is_dns1123_label,
    normalised_agent_name,
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


# -- names after AgentKit's agentName ------------------------------------------------------

AGENT_NAMES = st.text(min_size=1, max_size=300)
UUID = "3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a"


def test_a_plain_agent_name_is_the_resource_name() -> None:
    assert agent_names_for("researcher", UUID)[0] == "researcher"


def test_an_agent_name_is_lower_cased_and_its_other_characters_become_dashes() -> None:
    assert agent_names_for("Research Agent_v2.1", UUID)[0] == "research-agent-v2-1"


def test_the_collision_name_adds_a_hash_of_the_agent_name() -> None:
    first, second = agent_names_for("Researcher", UUID)
    assert first == "researcher"
    assert re.fullmatch(r"researcher-[0-9a-f]{8}", second)


def test_no_agent_name_falls_back_to_the_id() -> None:
    assert agent_names_for(None, UUID) == (UUID,)
    assert agent_names_for("", UUID) == (UUID,)


def test_an_agent_name_with_nothing_valid_falls_back_to_the_id() -> None:
    assert normalised_agent_name("!!! ...") is None
    assert agent_names_for("!!! ...", "Odd_Id") == (agent_resource_name("Odd_Id"),)


def test_a_long_agent_name_is_cut_to_63_characters() -> None:
    names = agent_names_for("r" * 300, UUID)
    assert [len(n) for n in names] == [63, 63]


@given(AGENT_NAMES, IDS)
def test_every_candidate_is_a_dns1123_label(agent_name: str, agent_id: str) -> None:
    for name in agent_names_for(agent_name, agent_id):
        assert DNS1123_LABEL.match(name), name
        assert len(name) <= 63, name


@given(AGENT_NAMES, IDS, IDS)
def test_the_names_depend_on_the_agent_name_only(agent_name: str, old: str, new: str) -> None:
    # What makes identity survive an AgentKit restart: a new id, the same names.
    if normalised_agent_name(agent_name) is not None:
        assert agent_names_for(agent_name, old) == agent_names_for(agent_name, new)


@given(AGENT_NAMES, AGENT_NAMES)
def test_agent_names_that_normalise_alike_still_get_distinct_names(first: str, second: str) -> None:
    # Each takes the first candidate nobody holds: the second of two that normalise alike
    # gets its collision name, which no other agent name shares.
    a, b = agent_names_for(first, UUID), agent_names_for(second, UUID)
    if first != second and normalised_agent_name(first) is not None and a[0] == b[0]:
        assert a[1] != b[1]
        assert b[1] != a[0]


@given(st.text(alphabet="aA _-.", min_size=1, max_size=12))
def test_names_differing_only_in_case_or_punctuation_collide_then_separate(name: str) -> None:
    variant = name.swapcase()
    if variant != name and normalised_agent_name(name) is not None:
        assert agent_names_for(name, UUID)[0] == agent_names_for(variant, UUID)[0]
        assert agent_names_for(name, UUID)[1] != agent_names_for(variant, UUID)[1]
