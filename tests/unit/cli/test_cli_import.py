"""`kubectl opscore import`: an earlier Ops-Core definition as YAML for `kubectl apply`,
warnings and errors on stderr, and nothing on stdout when anything is wrong (so a pipe into
kubectl applies all of it or nothing). The conversion rules are specified in
tests/unit/resources/test_legacy_import.py; these tests specify the command around them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from opscore_cli import __main__ as cli
from opscore_cli.cluster import Cluster, Target
from opscore_logic.legacy import convert

DATA = Path(__file__).parents[1] / "data" / "legacy"
SAMPLE_JSON = DATA / "sample_workflow.json"
SAMPLE_YAML = DATA / "sample_workflow.yaml"
OUT_OF_ORDER = DATA / "listed_out_of_order.yaml"


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing reads a file, never the cluster: connecting fails every test here."""

    def connect(cls: type[Cluster], target: Target) -> Cluster:
        raise AssertionError("import connected to a cluster")

    monkeypatch.setattr(Cluster, "connect", classmethod(connect))


def test_prints_the_template_and_a_workflow_as_yaml_for_kubectl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["import", str(SAMPLE_JSON), "-n", "team-a", "--workflow", "load-test-1"]
    code = cli.main([*argv, "--input", "size=10", "--input", "note=a=b"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.startswith("# Imported from sample_workflow.json")
    template, workflow = yaml.safe_load_all(out)
    assert template == convert(SAMPLE_JSON.read_text(), namespace="team-a")[0]
    assert workflow["spec"]["inputs"] == {"size": "10", "note": "a=b"}
    assert workflow["spec"]["templateRef"] == {"name": "sample-workflow-id"}
    assert workflow["metadata"] == {"name": "load-test-1", "namespace": "team-a"}


def test_without_workflow_prints_only_the_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["import", str(SAMPLE_YAML)]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["WorkflowTemplate"]
    assert "namespace" not in docs[0]["metadata"]


def test_warns_about_null_parameters_but_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["import", str(OUT_OF_ORDER)]) == 0
    out, err = capsys.readouterr()
    assert err == (
        "warning: tasks[2].parameters.extra is null; client-side `kubectl apply` drops null "
        "values, use `kubectl apply --server-side` or `kubectl create` to keep it\n"
    )
    [template] = yaml.safe_load_all(out)
    assert template["spec"]["steps"][1]["parameters"]["extra"] is None


def test_dash_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SAMPLE_JSON.read_text()))
    assert cli.main(["import", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Imported from stdin")
    assert next(yaml.safe_load_all(out))["metadata"]["name"] == "sample-workflow-id"


def test_an_invalid_definition_is_one_line_on_stderr_exit_1_and_nothing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(SAMPLE_JSON.read_text())
    data["tasks"][1]["nextTaskId"] = "step_9"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert cli.main(["import", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: tasks[1].nextTaskId: 'step_9' is not a taskId in this workflow\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/wf.json"], "error: /nonexistent/wf.json: no such file"),
        ([str(SAMPLE_JSON), "--input", "a=1"], "error: --input needs --workflow"),
        ([str(SAMPLE_JSON), "--workflow", "w", "--input", "novalue"], "error: --input: expected"),
        (
            [str(SAMPLE_JSON), "--workflow", "w", "--input", "a=1", "--input", "a=2"],
            "error: --input: 'a' is given more than once",
        ),
        ([str(SAMPLE_JSON), "--workflow", "Bad_Name"], "error: workflow name: 'Bad_Name'"),
        ([str(SAMPLE_JSON), "--namespace", "x.y"], "error: namespace: 'x.y'"),
    ],
)
def test_bad_arguments_are_one_line_on_stderr_and_exit_1(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["import", *args]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: the following arguments are required: FILE"),
        ([str(SAMPLE_JSON), "--bogus"], "error: unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_read_like_kubectl_and_exit_1(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["import", *args])
    assert exc.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(message)


def test_a_file_that_is_not_utf8_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"id": "caf\xe9"}')
    assert cli.main(["import", str(bad)]) == 1
    assert capsys.readouterr().err == f"error: {bad}: not UTF-8 text\n"


def test_help_names_the_file_argument_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["import", "--help"])
    assert exc.value.code == 0
    assert "FILE" in capsys.readouterr().out
