"""What the sidecar does once at startup, before it serves."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from sidecar_fakes import FakeKube, settings

from opscore_sidecar.app import create_app


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # give the test process its objects back


async def test_startup_freezes_what_it_built_out_of_the_collectors_sight(
    unfrozen: None,
) -> None:
    """A full collection otherwise walks ~90k long-lived objects (~25 ms) while every
    request in flight waits: a p99 spike at any report rate."""
    app = create_app(settings(), FakeKube())
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
