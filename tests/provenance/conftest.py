"""One test world (PKI, resolver, actors) for every provenance test module."""

from __future__ import annotations

import pytest

from tests.provenance import World, world


@pytest.fixture(scope="session")
def w() -> World:
    return world()
