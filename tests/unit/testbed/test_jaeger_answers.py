"""Reading Jaeger's `/api/traces/{id}` answer: parents from CHILD_OF references in the same
trace only, the emitting process's resource tags, the names of span events; and the
config the test bed starts Jaeger with binds only the ports it was given."""

from __future__ import annotations

import re

from opscore_testbed.jaeger import config, trace_spans

TRACE = "6f1c2a4e9b7d4c3e8a210d5e6f7a8b9c"


def test_parents_come_from_child_of_references_within_the_trace() -> None:
    answer = {
        "processes": {
            "p1": {
                "serviceName": "opscore-operator",
                "tags": [{"key": "service.instance.id", "value": "a"}],
            }
        },
        "spans": [
            {"traceID": TRACE, "spanID": "01", "operationName": "root", "processID": "p1"},
            {
                "traceID": TRACE,
                "spanID": "02",
                "operationName": "child",
                "processID": "p1",
                "references": [
                    {"refType": "FOLLOWS_FROM", "traceID": TRACE, "spanID": "09"},
                    {"refType": "CHILD_OF", "traceID": "another", "spanID": "08"},
                    {"refType": "CHILD_OF", "traceID": TRACE, "spanID": "01"},
                ],
                "tags": [{"key": "opscore.step", "value": "collect"}],
                "logs": [{"fields": [{"key": "event", "value": "state_report"}]}],
            },
        ],
    }
    root, child = trace_spans(answer)
    assert root.parent_span_id is None
    assert child.parent_span_id == "01"
    assert child.tags == {"opscore.step": "collect"}
    assert child.process_tags == {"service.instance.id": "a"}
    assert child.events == ["state_report"]


def test_the_config_listens_on_the_given_ports_only() -> None:
    text = config(otlp_port=4001, query_port=4002, query_grpc_port=4003)
    assert sorted(re.findall(r"endpoint: 127\.0\.0\.1:(\d+)", text)) == ["4001", "4002", "4003"]
    assert "level: none" in text  # no metrics port, no self-tracing to localhost:4317
