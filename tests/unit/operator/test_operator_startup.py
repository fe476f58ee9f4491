"""What the operator's kopf startup handler does once, before the workers run."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Iterator
from typing import cast

import kopf
import pytest
from pytest_mock import MockerFixture

from opscore_operator import handlers


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # give the test process its objects back


async def test_startup_freezes_what_exists_once_the_caches_are_synced(
    unfrozen: None, mocker: MockerFixture
) -> None:
    """A full collection otherwise walks every long-lived object (~45 ms with kopf and
    the clients loaded) while a report waits for its next dispatch: B3's p99."""
    frozen_at_sync: list[int] = []
    runtime = mocker.patch.object(handlers, "Runtime").return_value
    runtime.sync = mocker.AsyncMock(
        side_effect=lambda _: frozen_at_sync.append(gc.get_freeze_count())
    )
    mocker.patch.object(handlers, "configure_logging")
    mocker.patch("sys.argv", ["kopf", "--namespace", "ns"])
    mocker.patch.object(handlers, "_runtime", None)  # put back after the test
    settings = kopf.OperatorSettings()
    start = cast(Callable[..., Awaitable[None]], handlers.start)  # kopf's decorator hides it
    await start(settings=settings)
    assert frozen_at_sync == [0]  # the caches were filled before the freeze
    assert gc.get_freeze_count() > 0
    runtime.start.assert_called_once_with(["ns"])
    assert settings.posting.enabled is False
