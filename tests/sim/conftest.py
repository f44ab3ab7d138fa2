"""One quick simulation for the whole session (2, 3 and 5 countries, every identity resolved)."""

from __future__ import annotations

import pytest

from trustbridge.sim import SimulationOptions, SimulationResult, run_simulation


@pytest.fixture(scope="session")
def quick() -> SimulationResult:
    return run_simulation(SimulationOptions.quick(seed=7))
