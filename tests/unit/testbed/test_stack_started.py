"""A process the stack starts and that never gets ready is stopped before the error goes
up: a failed readiness wait must not leave a stray process behind."""

from __future__ import annotations

import pytest
from pytest_mock import MockerFixture

from opscore_testbed.processes import ManagedProcess
from opscore_testbed.stack import _started


def test_a_process_that_never_gets_ready_is_stopped(mocker: MockerFixture) -> None:
    process = mocker.create_autospec(ManagedProcess, instance=True)
    process.wait_for_http.side_effect = TimeoutError("never ready")
    with pytest.raises(TimeoutError):
        _started(process, "http://127.0.0.1:1/readyz")
    process.start.assert_called_once_with()
    process.stop.assert_called_once_with()


def test_a_ready_process_is_handed_back_running(mocker: MockerFixture) -> None:
    process = mocker.create_autospec(ManagedProcess, instance=True)
    assert _started(process, "http://127.0.0.1:1/readyz") is process
    process.stop.assert_not_called()
