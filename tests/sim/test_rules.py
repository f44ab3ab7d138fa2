"""The rules the event model takes from the resolver hold for the resolver itself."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trustbridge.pki.revocation import CertStatus, CrlSpec, Reason, StatusEntry, build_crl
from trustbridge.sim import Deployment, Topology, World, WorldSpec, deploy
from trustbridge.sim.measure import StoreFetcher
from trustbridge.sim.world import RESOLVE_AT, SIM_EPOCH
from trustbridge.trust.resolver import TrustResolver, UntrustedError


@pytest.fixture(scope="module")
def hub() -> Deployment:
    world = World(WorldSpec(seed=21, tsps_per_country=1, orgs_per_country=1))
    return deploy(Topology.HUB, world, world.countries(2))


def test_a_cached_answer_holds_until_the_crls_next_update_then_the_revocation_shows(
    hub: Deployment,
) -> None:
    d = hub
    de, jp = d.countries
    store = dict(d.store())
    identity = jp.organizations[0].certificate
    resolver = TrustResolver(d.relying_party(de).config, fetcher=StoreFetcher(store))
    first = resolver.resolve(identity, at=RESOLVE_AT)
    assert first.valid_until == SIM_EPOCH + timedelta(hours=24)  # the CRLs' nextUpdate
    # The TSP revokes the identity; every CA publishes a new CRL (the TSP's lists it).
    tsp = jp.tsps[0].national
    revoked_at = RESOLVE_AT + timedelta(hours=1)
    for label, published in d.cas.items():
        entries = []
        if label == tsp.label:
            entries = [
                StatusEntry(
                    identity.serial_number, CertStatus.REVOKED, revoked_at, Reason.KEY_COMPROMISE
                )
            ]
        store[published.ca.endpoints.crl_url] = build_crl(
            issuer=published.ca.certificate,
            signer=published.ca.signer,
            entries=entries,
            spec=CrlSpec(
                number=2, this_update=revoked_at, next_update=revoked_at + timedelta(hours=48)
            ),
        )
    # Until the cached answer's valid_until, the relying party is told it is trusted ...
    later = RESOLVE_AT + timedelta(hours=20)
    assert resolver.resolve(identity, at=later) is first
    # ... from then on it validates again, fetches the new CRL and refuses.
    with pytest.raises(UntrustedError, match="revoked"):
        resolver.resolve(identity, at=first.valid_until + timedelta(minutes=1))
    # A cold resolution sees the new CRL at once.
    fresh = TrustResolver(d.relying_party(de).config, fetcher=StoreFetcher(store))
    with pytest.raises(UntrustedError, match="revoked"):
        fresh.resolve(identity, at=later)


def test_revocation_is_checked_by_crl_and_an_unreachable_crl_fails_closed(
    hub: Deployment,
) -> None:
    d = hub
    de, jp = d.countries
    store = d.store()
    fetcher = StoreFetcher(store)
    TrustResolver(d.relying_party(de).config, fetcher=fetcher).resolve(
        jp.organizations[0].certificate, at=RESOLVE_AT
    )
    assert not [u for u in fetcher.urls if u.endswith("/ocsp")]
    assert any(u.endswith("/crl") for u in fetcher.urls)
    down = StoreFetcher(store, frozenset({jp.tsps[0].national.host}))
    with pytest.raises(UntrustedError):
        TrustResolver(d.relying_party(de).config, fetcher=down).resolve(
            jp.organizations[0].certificate, at=RESOLVE_AT
        )
