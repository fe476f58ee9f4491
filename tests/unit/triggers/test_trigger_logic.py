"""The pure rules of a webhook call (`opscore_logic.trigger`): the signature, how the
body maps to inputs, which required inputs are missing, and the name of its run."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from opscore_logic.trigger import (
    api_key_scope,
    lookup,
    map_inputs,
    missing_required,
    name_prefix,
    run_name,
    sign,
    signature_problem,
)
from opscore_logic.trigger_model import WorkflowTriggerSpec
from opscore_logic.workflow_model import TemplateParameter

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
# GitHub's documented test vector for X-Hub-Signature-256 (docs.github.com, "Validating
# webhook deliveries"): the secret and payload above give this signature.
GITHUB_VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_sign_matches_githubs_documented_test_vector() -> None:
    assert sign(SECRET, BODY) == GITHUB_VECTOR


def test_the_right_signature_is_accepted() -> None:
    assert signature_problem(secret=SECRET, header=GITHUB_VECTOR, body=BODY) is None


def test_an_uppercase_hex_signature_is_accepted() -> None:
    upper = "sha256=" + GITHUB_VECTOR.removeprefix("sha256=").upper()
    assert signature_problem(secret=SECRET, header=upper, body=BODY) is None


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (None, "missing X-Hub-Signature-256"),
        ("", "missing X-Hub-Signature-256"),
        ("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "sha256=<hex>"),
        ("sha1=" + hashlib.sha1(BODY).hexdigest(), "sha256=<hex>"),
        ("sha256=deadbeef", "does not match"),
        ("sha256=" + hmac.new(b"another secret", BODY, hashlib.sha256).hexdigest(), "not match"),
        ("sha256=ünïcode", "does not match"),
    ],
)
def test_a_wrong_or_missing_signature_says_why(header: str | None, says: str) -> None:
    problem = signature_problem(secret=SECRET, header=header, body=BODY)
    assert problem is not None
    assert says in problem


def test_a_signature_of_another_body_is_refused() -> None:
    assert signature_problem(secret=SECRET, header=GITHUB_VECTOR, body=BODY + b" ") is not None


def test_lookup_follows_keys_and_list_indexes() -> None:
    body = {"repository": {"full_name": "acme/shop"}, "commits": [{"id": "a"}, {"id": "b"}]}
    assert lookup(body, "repository.full_name") == "acme/shop"
    assert lookup(body, "commits.1.id") == "b"
    assert lookup(body, "commits") == [{"id": "a"}, {"id": "b"}]


@pytest.mark.parametrize("path", ["nope", "repository.nope", "commits.2.id", "commits.x", "n.x"])
def test_lookup_of_an_absent_path_finds_nothing(path: str) -> None:
    body = {"repository": {"full_name": "acme/shop"}, "commits": [{"id": "a"}], "n": 3}
    assert map_inputs(body, fixed={}, from_body={"v": path}).unfound == {"v": path}


def test_mapped_values_override_fixed_inputs_and_keep_their_json_type() -> None:
    body = {"pull_request": {"number": 42, "draft": False, "labels": ["a"]}}
    mapped = map_inputs(
        body,
        fixed={"env": "staging", "number": 0},
        from_body={
            "number": "pull_request.number",
            "draft": "pull_request.draft",
            "labels": "pull_request.labels",
        },
    )
    assert mapped.inputs == {"env": "staging", "number": 42, "draft": False, "labels": ["a"]}
    assert mapped.unfound == {}


def test_a_null_value_counts_as_absent_and_the_fixed_input_stays() -> None:
    mapped = map_inputs({"ref": None}, fixed={"ref": "main"}, from_body={"ref": "ref"})
    assert mapped.inputs == {"ref": "main"}
    assert mapped.unfound == {"ref": "ref"}


def test_a_body_that_is_not_an_object_maps_nothing() -> None:
    mapped = map_inputs(["a"], fixed={}, from_body={"a": "a"})
    assert mapped.inputs == {}


def test_missing_required_names_only_required_inputs_without_a_value_or_default() -> None:
    parameters = [
        TemplateParameter(name="repo", required=True),
        TemplateParameter(name="ref", required=True, default="main"),
        TemplateParameter(name="sha", required=True),
        TemplateParameter(name="note"),
    ]
    assert missing_required(parameters, {"repo": "acme/shop"}) == ["sha"]


def test_a_false_or_zero_value_is_a_value() -> None:
    parameters = [TemplateParameter(name="n", required=True)]
    assert missing_required(parameters, {"n": 0}) == []


def test_the_same_key_on_the_same_trigger_names_the_same_run() -> None:
    assert run_name("on-push", "uid-1", "delivery-7") == run_name("on-push", "uid-1", "delivery-7")


def test_another_key_or_a_recreated_trigger_names_another_run() -> None:
    first = run_name("on-push", "uid-1", "delivery-7")
    assert run_name("on-push", "uid-1", "delivery-8") != first
    assert run_name("on-push", "uid-2", "delivery-7") != first


def test_run_names_are_valid_workflow_names_for_the_longest_trigger_names() -> None:
    longest = "a" * 240 + "-" + "b" * 12
    name = run_name(longest, "uid", "key")
    assert len(name) <= 253
    assert name.startswith("a" * 200)
    assert name[-1].isalnum()
    assert len(name_prefix(longest, room=6)) + 6 <= 253


def test_a_cut_name_never_ends_in_a_dash_or_dot() -> None:
    assert name_prefix("x" * 235 + "-.-" + "y" * 20, room=17).endswith("x")


def test_an_api_key_scope_names_namespace_and_trigger() -> None:
    assert api_key_scope("ci", "on-push") == "trigger:ci/on-push"


def test_a_trigger_gets_the_documented_defaults() -> None:
    spec = WorkflowTriggerSpec.model_validate(
        {"templateRef": {"name": "t"}, "auth": {"apiKey": {}}}
    )
    assert (spec.rate_limit.requests_per_minute, spec.rate_limit.burst) == (60, 10)
    assert spec.max_body_bytes == 64 * 1024
    assert spec.auth.api_key is not None
    assert spec.auth.hmac is None
