"""One seed, one world: the same keys, certificates, lists, counts and figures."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from trustbridge.sim import (
    SimulationOptions,
    SimulationResult,
    Topology,
    World,
    WorldSpec,
    deploy,
    run_simulation,
)

#: Units of figures that are wall-clock times (they vary with the machine).
TIMES = {"ms", "us", "s"}


def _digest(seed: int, topology: Topology) -> str:
    world = World(WorldSpec(seed=seed, tsps_per_country=1, orgs_per_country=2))
    store = deploy(topology, world, world.countries(3)).store()
    digest = hashlib.sha256()
    for url in sorted(store):
        digest.update(url.encode() + b"\0" + store[url])
    return digest.hexdigest()


def test_the_same_seed_gives_byte_identical_artifacts() -> None:
    for topology in Topology:
        assert _digest(5, topology) == _digest(5, topology), topology


def test_another_seed_gives_other_keys() -> None:
    one = World(WorldSpec(seed=1)).country(0).root.ca.certificate
    two = World(WorldSpec(seed=2)).country(0).root.ca.certificate
    assert one.public_key() != two.public_key()
    assert one.subject == two.subject
    assert _digest(1, Topology.HUB) != _digest(2, Topology.HUB)


def test_a_country_does_not_change_when_more_join() -> None:
    small = World(WorldSpec(seed=4)).country(1)
    large = World(WorldSpec(seed=4))
    large.countries(6)
    assert large.country(1).root.ca.certificate == small.root.ca.certificate
    assert [o.certificate for o in large.country(1).organizations] == [
        o.certificate for o in small.organizations
    ]


def test_a_rerun_gives_the_same_figures_but_times(quick: SimulationResult) -> None:
    """Sizes are measured one after the other on one growing world: a run of the first two
    sizes must give the very figures the full run gave for them."""
    again = run_simulation(replace(SimulationOptions.quick(seed=quick.options.seed), sizes=(2, 3)))

    def figures(result: SimulationResult) -> list[tuple[str, int, str, float]]:
        return [
            (m.topology, m.countries, m.metric, m.value)
            for m in result.results.measurements
            if m.unit not in TIMES and m.countries in (2, 3) and m.metric != "run_seconds"
        ]

    assert figures(again) == figures(quick)
    assert [r.topology for r in again.recommendations] == [
        r.topology for r in quick.recommendations[:2]
    ]
