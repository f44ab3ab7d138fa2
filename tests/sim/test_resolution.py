"""Every generated identity resolves in every topology, along the path the model assumes."""

from __future__ import annotations

import pytest

from trustbridge.errors import TrustbridgeError
from trustbridge.sim import Deployment, SimulationResult, Topology, World, WorldSpec, deploy
from trustbridge.sim.measure import Query, Resolved, StoreFetcher, required_hosts, resolve_one
from trustbridge.sim.world import RESOLVE_AT
from trustbridge.trust.resolver import Route, TrustResolver

ROUTES = {
    Topology.GLOBAL_ROOT: Route.OWN_SCHEME,
    Topology.MESH: Route.BRIDGE,
    Topology.HUB: Route.BRIDGE,
    Topology.BRIDGE_OF_BRIDGES: Route.BRIDGE,
    Topology.GROUP: Route.TRUST_LIST,
    Topology.HYBRID: Route.BRIDGE,
}


@pytest.mark.parametrize("topology", list(Topology))
def test_every_identity_resolves_at_every_quick_size(
    quick: SimulationResult, topology: Topology
) -> None:
    for n in quick.options.sizes:
        identities = n * quick.options.orgs_per_country
        assert quick.results.value("", n, "sampled") == 0
        values = quick.results.table()[(topology.value, n)]
        assert values["identities"] == identities
        assert values["identities_checked"] == identities
        assert values["identities_resolved"] == identities
        resolved = quick.resolved_by_size[(topology, n)]
        assert {r.query.organization.label for r in resolved} == {
            o.label for c in quick.deployments[topology].countries[:n] for o in c.organizations
        }
        assert all(r.ok and r.route == ROUTES[topology] for r in resolved), [
            r.error for r in resolved if not r.ok
        ]
        assert all(r.query.relying.code != r.query.organization.country for r in resolved)


@pytest.mark.parametrize("topology", list(Topology))
def test_the_resolver_takes_the_path_the_model_assumes(
    quick: SimulationResult, topology: Topology
) -> None:
    deployment = quick.deployments[topology]
    for n in quick.options.sizes:
        for r in quick.resolved_by_size[(topology, n)]:
            assert r.labels == deployment.path_labels(r.query.relying, r.query.organization)


def test_path_lengths_per_topology(quick: SimulationResult) -> None:
    table = quick.results.table()
    assert table[("global-root", 5)]["path_length_max"] == 4
    assert table[("mesh", 5)]["path_length_max"] == 4
    assert table[("hub", 5)]["path_length_max"] == 5
    assert table[("hybrid", 5)]["path_length_max"] == 5
    assert table[("group", 5)]["path_length_max"] == 3
    # Regions of two: some pairs cross the top bridge (7), some share a region (5).
    assert table[("bridge-of-bridges", 5)]["path_length_max"] == 7
    assert table[("bridge-of-bridges", 5)]["path_length_mean"] < 7


def test_reference_levels_come_from_the_group_but_not_from_a_mesh(quick: SimulationResult) -> None:
    table = quick.results.table()
    assert table[("mesh", 5)]["reference_level_share"] == 0
    for topology in ("global-root", "hub", "bridge-of-bridges", "group", "hybrid"):
        assert table[(topology, 5)]["reference_level_share"] == 1, topology


def test_lists_recognize_services_only_in_group_and_hybrid(quick: SimulationResult) -> None:
    table = quick.results.table()
    for topology in Topology:
        expected = 1.0 if topology.listed else 0.0
        assert table[(topology.value, 5)]["services_recognized"] == expected, topology


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldSpec(seed=11, tsps_per_country=1, orgs_per_country=1))


@pytest.fixture(scope="module")
def three(world: World) -> dict[Topology, Deployment]:
    countries = world.countries(3)
    return {t: deploy(t, world, countries) for t in Topology}


def _resolve(
    deployments: dict[Topology, Deployment], topology: Topology, down: frozenset[str] = frozenset()
) -> tuple[Resolved, dict[str, bytes]]:
    d = deployments[topology]
    store = d.store()
    lists = d.read_lists() if topology.listed else None
    configs = {c.code: d.relying_party(c, lists).config for c in d.countries}
    query = Query(d.countries[0], d.countries[2].organizations[0])
    resolved = resolve_one(
        d, query, config_for=configs, store=store, labels={}, try_default_limits=False, down=down
    )
    return resolved, store


@pytest.mark.parametrize("topology", list(Topology))
def test_a_required_host_down_fails_a_cold_resolution_and_others_do_not(
    three: dict[Topology, Deployment], topology: Topology
) -> None:
    """The hosts the event model makes a resolution depend on are those the resolver needs."""
    resolved, store = _resolve(three, topology)
    assert resolved.ok
    assert resolved.hosts
    for host in sorted({url.split("/")[2] for url in store}):
        down, _ = _resolve(three, topology, frozenset({host}))
        if host in resolved.hosts:
            assert not down.ok, f"{topology}: resolved without {host}"
        elif not host.startswith(("list.", "lotl.")):
            assert down.ok, f"{topology}: failed without {host}: {down.error}"


# pyhanko-certvalidator 0.33 alone takes a CRL as authoritative when the CRL's issuer holds a
# certificate from the certificate's issuer (no indirectCRL flag, against RFC 5280 6.3.3 (b)(1)):
# in a mesh another root's CRL stood in for the relying party's own root's CRL, until
# trust.validation checked the CRL sources itself.
def test_a_mesh_resolution_fails_without_the_relying_party_roots_crl(
    three: dict[Topology, Deployment],
) -> None:
    resolved, _ = _resolve(three, Topology.MESH, frozenset({"root.de.example"}))
    assert not resolved.ok, f"resolved through {resolved.labels}"


def test_required_hosts_of_a_hub_path(three: dict[Topology, Deployment]) -> None:
    d = three[Topology.HUB]
    countries = d.countries
    config = d.relying_party(countries[0]).config
    leaf = countries[2].organizations[0].certificate
    resolution = TrustResolver(config, fetcher=StoreFetcher(d.store())).resolve(leaf, at=RESOLVE_AT)
    code = countries[2].code
    assert required_hosts(resolution.path) == {
        f"root.{countries[0].code}.example",
        "bridge.example",
        f"root.{code}.example",
        f"tsp1.{code}.example",
    }


def test_an_identity_of_an_unlinked_country_does_not_resolve(
    world: World, three: dict[Topology, Deployment]
) -> None:
    d = three[Topology.HUB]
    stranger = world.country(3)  # made, but never linked
    config = d.relying_party(d.countries[0]).config
    resolver = TrustResolver(config, fetcher=StoreFetcher(d.store()))
    with pytest.raises(TrustbridgeError, match="not trusted"):
        resolver.resolve(stranger.organizations[0].certificate, at=RESOLVE_AT)


@pytest.fixture(scope="module")
def eight(world: World) -> dict[Topology, Deployment]:
    countries = world.countries(8)
    return {t: deploy(t, world, countries) for t in (Topology.MESH, Topology.HUB)}


@pytest.mark.parametrize("topology", [Topology.MESH, Topology.HUB])
def test_a_cold_resolution_fetches_only_from_the_hosts_of_its_path(
    eight: dict[Topology, Deployment], topology: Topology
) -> None:
    """The builder takes the cross-certificate our anchor issued first (a mesh root's bundle
    holds one from every other root), and fetches no CRL of a certificate that only repeats a
    path CA's key (a bridge's cross-certificates from every other root)."""
    d = eight[topology]
    config = d.relying_party(d.countries[0]).config
    fetcher = StoreFetcher(d.store())
    leaf = d.countries[5].organizations[0].certificate
    resolution = TrustResolver(config, fetcher=fetcher).resolve(leaf, at=RESOLVE_AT)
    assert resolution.route == Route.BRIDGE
    fetched = {url.split("/")[2] for url in fetcher.urls}
    assert fetched <= required_hosts(resolution.path), fetched - required_hosts(resolution.path)
    assert len(fetcher.urls) <= 2 * len(resolution.path), fetcher.urls
