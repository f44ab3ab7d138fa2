"""The deployments against their closed forms, and what their certificates say."""

from __future__ import annotations

import math

import pytest

from trustbridge.pki.cross import policy_mappings_of
from trustbridge.sim import SimulationResult, Topology, World, WorldSpec, closed_form, deploy
from trustbridge.sim.topologies import LOTL_URL
from trustbridge.trust.reference import ITG

SIZES = (2, 3, 5)


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldSpec(seed=3, tsps_per_country=1, orgs_per_country=1))


@pytest.mark.parametrize("n", SIZES)
def test_every_topology_matches_its_closed_form_in_the_run(quick: SimulationResult, n: int) -> None:
    table = quick.results.table()
    for topology in Topology:
        values = table[(topology.value, n)]
        form = closed_form(topology, n, region_size=quick.options.region_size)
        assert values["cross_certificates"] == form.cross_certificates, topology
        assert values["agreements"] == form.agreements, topology
        assert values["trust_lists"] == form.trust_lists, topology
        assert values["lotls"] == form.lotls, topology
        assert values["bridges"] == form.bridges, topology


@pytest.mark.parametrize("n", SIZES)
def test_the_closed_forms_themselves(n: int) -> None:
    assert closed_form(Topology.MESH, n, region_size=10).cross_certificates == n * (n - 1)
    assert closed_form(Topology.MESH, n, region_size=10).agreements == n * (n - 1) // 2
    assert closed_form(Topology.HUB, n, region_size=10).cross_certificates == 2 * n
    assert closed_form(Topology.GLOBAL_ROOT, n, region_size=10).cross_certificates == 0
    group = closed_form(Topology.GROUP, n, region_size=10)
    assert (group.cross_certificates, group.trust_lists, group.lotls) == (0, n, 1)
    hybrid = closed_form(Topology.HYBRID, n, region_size=10)
    assert (hybrid.cross_certificates, hybrid.trust_lists, hybrid.lotls) == (2 * n, n, 1)
    for s in (1, 2, 3, 10):
        regions = math.ceil(n / s)
        bob = closed_form(Topology.BRIDGE_OF_BRIDGES, n, region_size=s)
        assert bob.cross_certificates == 2 * n + 2 * regions
        assert bob.agreements == n + regions


@pytest.mark.parametrize("region_size", [1, 2, 3, 10])
def test_bridge_of_bridges_counts_for_several_region_sizes(world: World, region_size: int) -> None:
    countries = world.countries(5)
    d = deploy(Topology.BRIDGE_OF_BRIDGES, world, countries, region_size=region_size)
    form = closed_form(Topology.BRIDGE_OF_BRIDGES, 5, region_size=region_size)
    assert len(d.links) == form.cross_certificates
    assert len(d.agreements) == form.agreements
    regions = {label for label in d.cas if label.startswith("region/")}
    assert len(regions) == math.ceil(5 / region_size)


def test_mesh_cross_certificates_map_each_pair_of_schemes(world: World) -> None:
    countries = world.countries(3)
    d = deploy(Topology.MESH, world, countries)
    pairs = {(link.issuer, link.subject) for link in d.links}
    roots = [c.root.label for c in countries]
    assert pairs == {(a, b) for a in roots for b in roots if a != b}
    de, jp = countries[0], countries[1]
    link = next(x for x in d.links if (x.issuer, x.subject) == (de.root.label, jp.root.label))
    mappings = {(m.issuer_domain, m.subject_domain) for m in policy_mappings_of(link.certificate)}
    assert mappings == {
        (a.oid, b.oid) for a, b in zip(de.scheme.levels, jp.scheme.levels, strict=True)
    }


def test_the_hub_maps_onto_the_reference_levels_both_ways(world: World) -> None:
    countries = world.countries(2)
    d = deploy(Topology.HUB, world, countries)
    de = countries[0]
    up = next(x for x in d.links if (x.issuer, x.subject) == (de.root.label, "bridge"))
    down = next(x for x in d.links if (x.issuer, x.subject) == ("bridge", de.root.label))
    assert {m.subject_domain for m in policy_mappings_of(up.certificate)} == {
        lv.oid for lv in ITG.levels
    }
    assert {m.issuer_domain for m in policy_mappings_of(down.certificate)} == {
        lv.oid for lv in ITG.levels
    }


def test_group_publishes_a_list_per_country_and_one_lotl(world: World) -> None:
    countries = world.countries(3)
    d = deploy(Topology.GROUP, world, countries)
    store = d.store()
    assert LOTL_URL in store
    assert sorted(url for url in store if url.endswith(".jws") and url != LOTL_URL) == sorted(
        f"http://list.{c.code}.example/trust/{c.code}.jws" for c in countries
    )
    lotl, lists = d.read_lists()
    assert [p.scheme for p in lotl.pointers] == [c.code for c in countries]
    assert lotl.sequence == 3
    assert len(lists) == 3


def test_global_root_has_no_cross_certificates_but_one_subordinate_per_country(
    world: World,
) -> None:
    countries = world.countries(3)
    d = deploy(Topology.GLOBAL_ROOT, world, countries)
    assert d.links == []
    assert len(d.children_of("global-root")) == 3
    assert all(d.parent_of(c.global_ca.label) == "global-root" for c in countries)


def test_countries_join_in_order(world: World) -> None:
    from trustbridge.errors import InputError

    d = deploy(Topology.HUB, world, world.countries(1))
    with pytest.raises(InputError, match="countries join in order"):
        d.add(world.country(2))
